/**
 * The pid file of a daemon we spawned, so the next start can kill one left behind: the daemon's guard (daemon.ts)
 * stops it when its node dies, and this is the backstop for when the guard went too (killed with the whole process
 * tree, say). Pids are reused, and the next start SIGKILLs what the file names, so a pid is only ours
 * if that process's argv is exactly the daemon's (`<binary> -useconffile <conf>`: a `tail -f <conf>` is not) and,
 * when the file records it, the process started when ours did (the pid file holds `<pid> <start time>`; files from
 * before the start time was recorded hold the pid alone and are checked on the argv only).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, unlinkSync } from "node:fs";
import { writeFileAtomic } from "../core/fsutil.ts";
import { daemonArgs } from "./daemon.ts";

export interface PidRecord {
  pid: number;
  /** /proc/<pid>/stat field 22 (clock ticks after boot), when known. */
  startTime?: string;
}

/** The argv of `pid`; on systems without /proc, its command line from ps as one element (spaces unrecoverable). */
function argvOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1);
  } catch {
    if (process.platform === "linux") return undefined;
  }
  try {
    const cmd = execFileSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8", timeout: 3000 }).trim();
    return cmd ? [cmd] : undefined;
  } catch {
    return undefined;
  }
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses), from field 3 on. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** When `pid` started (/proc/<pid>/stat field 22), or undefined where there is no /proc. */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[22 - 3];
}

function isZombie(pid: number): boolean {
  return statFields(pid)?.[0] === "Z";
}

/** Whether `pid` is a live (non-zombie) daemon run on `confPath` and, if `startTime` is given, the one started then. */
export function isOurDaemon(pid: number, confPath: string, startTime?: string): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  const argv = argvOf(pid);
  if (!argv) return false;
  const args = daemonArgs(confPath);
  const exact = argv.length === 1 + args.length
    ? args.every((a, i) => argv[i + 1] === a)
    : argv.length === 1 && argv[0]!.endsWith(` ${args.join(" ")}`); // ps: one string
  if (!exact || isZombie(pid)) return false;
  return startTime === undefined || processStartTime(pid) === startTime;
}

export function readPid(pidPath: string): PidRecord | undefined {
  let text: string;
  try {
    text = readFileSync(pidPath, "utf8");
  } catch {
    return undefined;
  }
  const [pidText, startTime] = text.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isSafeInteger(pid) || pid <= 1) return undefined;
  return startTime && /^\d+$/.test(startTime) ? { pid, startTime } : { pid };
}

/** The pid recorded in `pidPath` if it is still our daemon, else undefined. No side effects. */
export function ownDaemonPid(pidPath: string, confPath: string): number | undefined {
  const r = readPid(pidPath);
  return r !== undefined && isOurDaemon(r.pid, confPath, r.startTime) ? r.pid : undefined;
}

/** Records `pid` with its start time: called right after the spawn, so a daemon orphaned while starting is known. */
export function writePid(pidPath: string, pid: number): void {
  const startTime = processStartTime(pid);
  writeFileAtomic(pidPath, `${pid}${startTime ? ` ${startTime}` : ""}\n`, 0o600);
}

export function removePid(pidPath: string): void {
  try { unlinkSync(pidPath); } catch { /* already gone */ }
}

/** Kills a daemon of ours left from an earlier run (SIGKILL: it holds our TUN name and admin socket). */
export async function killStaleDaemon(pidPath: string, confPath: string, log: (msg: string) => void): Promise<void> {
  const r = readPid(pidPath);
  if (r !== undefined && isOurDaemon(r.pid, confPath, r.startTime)) {
    log(`killing stale yggdrasil daemon pid ${r.pid} left by an earlier run`);
    try { process.kill(r.pid, "SIGKILL"); } catch { /* gone meanwhile */ }
    for (let i = 0; i < 50 && isOurDaemon(r.pid, confPath, r.startTime); i++) await new Promise((res) => setTimeout(res, 100));
  }
  removePid(pidPath);
}
