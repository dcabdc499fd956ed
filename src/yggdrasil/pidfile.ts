/**
 * The pid file of a daemon we spawned, so the next start can kill one left behind (e.g. when setpriv is missing and
 * the parent was SIGKILLed). A pid is only ours if its command line names our config file: pids are reused.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, unlinkSync } from "node:fs";
import { writeFileAtomic } from "../core/fsutil.ts";

function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    if (process.platform === "linux") return undefined;
  }
  try {
    return execFileSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8", timeout: 3000 }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function isZombie(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Whether `pid` is a live (non-zombie) process whose command line contains `confPath`. */
export function isOurDaemon(pid: number, confPath: string): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  const cmd = commandLine(pid);
  return cmd !== undefined && cmd.includes(confPath) && !isZombie(pid);
}

export function readPid(pidPath: string): number | undefined {
  try {
    const n = Number(readFileSync(pidPath, "utf8").trim());
    return Number.isSafeInteger(n) && n > 1 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** The pid recorded in `pidPath` if it is still our daemon, else undefined. No side effects. */
export function ownDaemonPid(pidPath: string, confPath: string): number | undefined {
  const pid = readPid(pidPath);
  return pid !== undefined && isOurDaemon(pid, confPath) ? pid : undefined;
}

export function writePid(pidPath: string, pid: number): void {
  writeFileAtomic(pidPath, `${pid}\n`, 0o600);
}

export function removePid(pidPath: string): void {
  try { unlinkSync(pidPath); } catch { /* already gone */ }
}

/** Kills a daemon of ours left from an earlier run (SIGKILL: it holds our TUN name and admin socket). */
export async function killStaleDaemon(pidPath: string, confPath: string, log: (msg: string) => void): Promise<void> {
  const pid = ownDaemonPid(pidPath, confPath);
  if (pid !== undefined) {
    log(`killing stale yggdrasil daemon pid ${pid} left by an earlier run`);
    try { process.kill(pid, "SIGKILL"); } catch { /* gone meanwhile */ }
    for (let i = 0; i < 50 && isOurDaemon(pid, confPath); i++) await new Promise((r) => setTimeout(r, 100));
  }
  removePid(pidPath);
}
