/**
 * One spawned daemon process: start it with its guard (below), wait until its admin socket answers and its TUN is up,
 * classify why it died, and stop it (SIGTERM, then SIGKILL). Never SIGHUP: both 0.4 and 0.5 exit on it instead of
 * reloading.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { P2PError, type ErrorCode } from "../core/errors.ts";
import { getSelf, getTun, AdminCallError, type AdminSelf } from "./admin.ts";
import type { RotatingLog } from "./logfile.ts";

export const READY_TIMEOUT_MS = 20_000;
export const STOP_GRACE_MS = 5000;
const READY_POLL_MS = 150;

export interface DaemonExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DaemonHandle {
  child: ChildProcess;
  /** Stops the daemon if this process dies without doing so (startGuard); gone once the daemon has exited. */
  guard: ChildProcess | undefined;
  pid: number;
  startedAt: number;
  /** Settles once the process has exited (never rejects). */
  exited: Promise<DaemonExit>;
  exit: DaemonExit | undefined;
}

/** The daemon's arguments after the binary; the pid file check (pidfile.ts) wants exactly these. */
export function daemonArgs(confPath: string): string[] {
  return ["-useconffile", confPath];
}

/**
 * The guard of a daemon: `sh`, started next to it, blocked reading a pipe from this process. However this process
 * ends (SIGKILL, a crash, an exit that skipped stop()), the kernel closes our end of the pipe, `read` returns, and the
 * guard stops the daemon: SIGTERM, then SIGKILL if it is still there 5 s later. A kernel death signal
 * (`setpriv --pdeathsig`, used before) cannot do this in the usual non-root setup: the kernel drops it when it execs a
 * binary with file capabilities, and `declaw setup` gives yggdrasil cap_net_admin. The guard runs in its own session
 * (a Ctrl-C in the terminal does not reach it), does not keep our event loop alive, and is SIGKILLed as soon as the
 * daemon exits: it must never signal a pid the kernel may since have given to another process. `$1` is the pid.
 */
const GUARD_SCRIPT = 'read _; kill -TERM "$1" 2>/dev/null || exit 0; for _ in 1 2 3 4 5; do sleep 1; kill -0 "$1" 2>/dev/null || exit 0; done; kill -KILL "$1" 2>/dev/null; exit 0';

/** Starts the guard of `pid` (see GUARD_SCRIPT); undefined if it cannot start (the pid file is then the only backstop). */
export function startGuard(pid: number, log: RotatingLog): ChildProcess | undefined {
  let guard: ChildProcess;
  try {
    guard = spawn("/bin/sh", ["-c", GUARD_SCRIPT, "declaw-daemon-guard", String(pid)], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  } catch (err) {
    log.note(`cannot start the guard of pid ${pid}: ${(err as Error).message}`);
    return undefined;
  }
  guard.once("error", (err) => log.note(`cannot start the guard of pid ${pid}: ${err.message}`));
  guard.stdin!.on("error", () => {}); // the guard gone: nothing to write anyway
  guard.unref();
  (guard.stdin as unknown as { unref?: () => void }).unref?.();
  return guard;
}

export function spawnDaemon(binary: string, confPath: string, log: RotatingLog): DaemonHandle {
  const args = daemonArgs(confPath);
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  const guard = child.pid === undefined ? undefined : startGuard(child.pid, log);
  const handle: DaemonHandle = {
    child,
    guard,
    pid: child.pid ?? -1,
    startedAt: Date.now(),
    exit: undefined,
    exited: new Promise((resolve) => {
      let done = false;
      const settle = (e: DaemonExit): void => {
        if (done) return;
        done = true;
        handle.exit = e;
        try { guard?.kill("SIGKILL"); } catch { /* already gone */ }
        resolve(e);
      };
      // 'close' (not 'exit'): the pipes are drained, so the log tail holds the daemon's last words (the panic).
      child.once("close", (code, signal) => settle({ code, signal }));
      child.once("error", (err) => {
        log.note(`cannot start ${binary}: ${err.message}`);
        settle({ code: null, signal: null });
      });
    }),
  };
  child.stdout!.on("data", (d: Buffer) => log.write(d));
  child.stderr!.on("data", (d: Buffer) => log.write(d));
  log.note(`started pid ${String(child.pid)}: ${binary} ${args.join(" ")}${guard ? ` (guard pid ${String(guard.pid)})` : ""}`);
  return handle;
}

/**
 * Pure: what an exit during start means. Only the panic line counts: Go's stack trace under any TUN panic names
 * src/tun/tun_linux.go, so matching the whole tail would call every TUN failure a privilege problem.
 * "panic:" + status 2 on a permission error = no privilege (fatal); EBUSY = the interface name `ifName` is taken
 * (e.g. by a daemon left running): a start failure, retried, since it goes away once that daemon is gone.
 */
export function classifyExit(e: DaemonExit, tail: string, ifName?: string): { code: ErrorCode; message: string } {
  const panic = /^panic: (.*)$/m.exec(tail)?.[1]?.trim();
  const how = e.signal ? `was killed by ${e.signal}` : `exited with status ${String(e.code)}`;
  if (panic !== undefined && e.code === 2 && /permission denied|operation not permitted|\/dev\/net\/tun/i.test(panic)) {
    return { code: "P2P_ERR_YGG_NO_PRIVILEGE", message: `panic: ${panic}` };
  }
  if (panic !== undefined && /device or resource busy/i.test(panic)) {
    const dev = ifName ? `the network interface ${ifName}` : "its network interface";
    return {
      code: "P2P_ERR_YGG_START_FAILED",
      message: `yggdrasil ${how}: ${dev} is busy (another Yggdrasil daemon for this identity, or another program, holds it; \`ip link show\` lists it): panic: ${panic}`,
    };
  }
  const last = tail.trim().split("\n").filter((l) => !l.includes("[declaw]")).slice(-3).join(" | ");
  return { code: "P2P_ERR_YGG_START_FAILED", message: `yggdrasil ${how}${panic !== undefined ? `: panic: ${panic}` : last ? `; last output: ${last}` : ""}` };
}

/**
 * Polls getSelf until the daemon answers, then getTUN until the interface is up (getSelf answers before the TUN has
 * its address). Rejects with a classified P2PError if the process exits first or the deadline passes.
 */
export async function waitReady(d: DaemonHandle, socketPath: string, log: RotatingLog, ifName?: string, timeoutMs = READY_TIMEOUT_MS): Promise<AdminSelf> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = "no answer yet";
  while (Date.now() < deadline) {
    if (d.exit) {
      const c = classifyExit(d.exit, log.tail(), ifName);
      throw new P2PError(c.code, c.message);
    }
    try {
      const self = await getSelf(socketPath, 1000);
      try {
        const tun = await getTun(socketPath, 1000);
        if (tun.enabled) return self;
        lastErr = "TUN not up yet";
      } catch (err) {
        if (err instanceof AdminCallError) return self; // no getTUN in this build: getSelf is all we can wait for
        throw err;
      }
    } catch (err) {
      lastErr = (err as Error).message;
    }
    await Promise.race([new Promise((r) => setTimeout(r, READY_POLL_MS)), d.exited]);
  }
  throw new P2PError("P2P_ERR_YGG_START_FAILED", `yggdrasil did not become ready within ${timeoutMs} ms (${lastErr})`);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. Safe to call twice. */
export async function stopDaemon(d: DaemonHandle, graceMs = STOP_GRACE_MS): Promise<void> {
  if (d.exit) return;
  try { d.child.kill("SIGTERM"); } catch { /* already gone */ }
  let timer: NodeJS.Timeout | undefined;
  const killed = await Promise.race([
    d.exited.then(() => false),
    new Promise<boolean>((r) => { timer = setTimeout(() => r(true), graceMs); }),
  ]);
  clearTimeout(timer);
  if (killed) {
    try { d.child.kill("SIGKILL"); } catch { /* already gone */ }
    await d.exited;
  }
}
