/**
 * Parent side of ygg-supervisor-child.ts: start a supervisor in a child process (optionally inside a testnet
 * namespace and/or as another user), talk to it, and check processes by pid. The child is tracked by the Testnet
 * (or killed by `kill()`), so it never outlives the test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { Namespace } from "./netns.ts";
import type { YggMode, YggStatus } from "../../src/yggdrasil/types.ts";

export const CHILD_SCRIPT = fileURLToPath(new URL("./ygg-supervisor-child.ts", import.meta.url));
export const NODE = process.execPath;

export interface ChildOptions { dataDir: string; mode: YggMode; peers?: string[]; listen?: string[]; multicast?: boolean; adminSocket?: string; binary?: string }
export interface StartEvent {
  event: "started" | "error";
  identity: { address: string; subnet?: string };
  status: YggStatus;
  error?: { code?: string; message?: string; hint?: string };
}

export class SupervisorChild {
  readonly child: ChildProcess;
  readonly started: Promise<StartEvent>;
  stderr = "";
  #next = 1;
  readonly #pending = new Map<number, (v: { result?: unknown; error?: { code?: string; message?: string } }) => void>();

  constructor(o: ChildOptions, where: { ns?: Namespace; asUser?: string; env?: NodeJS.ProcessEnv } = {}) {
    const prefix = where.asUser ? ["setpriv", `--reuid=${where.asUser}`, "--regid=nogroup", "--clear-groups", "--"] : [];
    const argv = [...prefix, NODE, CHILD_SCRIPT, JSON.stringify(o)];
    const opts = { stdio: ["pipe", "pipe", "pipe"] as ("pipe")[], ...(where.env ? { env: where.env } : {}) };
    this.child = where.ns ? where.ns.spawn(argv[0]!, argv.slice(1), opts) : spawn(argv[0]!, argv.slice(1), opts);
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => { this.stderr = (this.stderr + d).slice(-20_000); });
    const lines = createInterface({ input: this.child.stdout! });
    let onStart: (e: StartEvent) => void;
    let onStartErr: (e: Error) => void;
    this.started = new Promise((res, rej) => { onStart = res; onStartErr = rej; });
    this.child.once("exit", (code, sig) => {
      onStartErr(new Error(`supervisor child exited (${String(code)}/${String(sig)}) before starting; stderr: ${this.stderr}`));
      for (const r of this.#pending.values()) r({ error: { code: "CHILD_EXITED", message: "child exited" } });
      this.#pending.clear();
    });
    lines.on("line", (line) => {
      let msg: { event?: string; id?: number; result?: unknown; error?: { code?: string; message?: string } };
      try { msg = JSON.parse(line); } catch { return; }
      if (msg.event) onStart(msg as StartEvent);
      else if (typeof msg.id === "number") {
        this.#pending.get(msg.id)?.(msg);
        this.#pending.delete(msg.id);
      }
    });
  }

  call(cmd: "status" | "setPeers" | "stop" | "exit", extra: { peers?: string[] } = {}, timeoutMs = 60_000): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd} timed out; stderr: ${this.stderr}`)), timeoutMs);
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        if (m.error) reject(Object.assign(new Error(m.error.message ?? "error"), { code: m.error.code }));
        else resolve(m.result);
      });
      this.child.stdin!.write(`${JSON.stringify({ id, cmd, ...extra })}\n`);
    });
  }

  status(): Promise<YggStatus> {
    return this.call("status") as Promise<YggStatus>;
  }

  kill(): void {
    try { this.child.kill("SIGKILL"); } catch { /* gone */ }
  }

  exited(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((r) => this.child.once("exit", () => r()));
  }
}

/** Live and not a zombie. */
export function processAlive(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return false;
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/** Every yggdrasil process whose command line mentions `needle` (e.g. a data dir). */
export function yggdrasilPidsMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSafe("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, "utf8");
      if (cmd.includes("yggdrasil") && cmd.includes(needle) && processAlive(Number(name))) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

function readdirSafe(d: string): string[] {
  try { return readdirSync(d); } catch { return []; }
}
