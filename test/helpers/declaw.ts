/**
 * Drives the real `declaw` CLI (Node 24, sources run directly) inside test namespaces: one-shot commands with
 * `--json`, and `declaw run` processes that are SIGKILLed with the testnet.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Store } from "../../src/core/store.ts";
import type { Namespace } from "./netns.ts";

export const CLI = fileURLToPath(new URL("../../src/hosts/cli/main.ts", import.meta.url));

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `declaw-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult {
  code: number | null;
  json: any;
  stdout: string;
  stderr: string;
}

/** Runs `declaw --data-dir D --json <args>` in a namespace and parses its JSON output. */
export async function cli(ns: Namespace, dataDir: string, args: string[], o: { json?: boolean; timeoutMs?: number } = {}): Promise<CliResult> {
  const full = [CLI, "--data-dir", dataDir, ...(o.json === false ? [] : ["--json"]), ...args];
  const r = await ns.run(process.execPath, full, { timeoutMs: o.timeoutMs ?? 60_000 });
  let json: any;
  if (o.json !== false) {
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
  }
  return { ...r, json };
}

export interface RunningNode {
  child: ChildProcess;
  log: () => string;
  stop: () => Promise<number | null>;
}

/**
 * Starts `declaw run` in a namespace and resolves once its peer server listens. `wrap` runs it under another
 * command (e.g. setpriv to drop to user nobody) with `env`.
 */
export function startNode(
  ns: Namespace,
  dataDir: string,
  args: string[] = [],
  o: { timeoutMs?: number; wrap?: (cmd: string, args: string[]) => [string, string[]]; env?: NodeJS.ProcessEnv } = {},
): Promise<RunningNode> {
  const argv = [CLI, "--data-dir", dataDir, "run", ...args];
  const [cmd, cmdArgs] = o.wrap ? o.wrap(process.execPath, argv) : [process.execPath, argv];
  const child = ns.spawn(cmd, cmdArgs, o.env ? { env: o.env } : {});
  let log = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (log += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (log += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const node: RunningNode = {
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  const timeoutMs = o.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`declaw run did not start within ${timeoutMs} ms:\n${log}`)), timeoutMs);
    const check = () => {
      if (/node running as/.test(log)) {
        clearTimeout(timer);
        child.stderr!.off("data", check);
        resolve(node);
      }
    };
    child.stderr!.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`declaw run exited with ${code} before it was ready:\n${log}`));
    });
  });
}

/** Polls `fn` until it returns a truthy value or the time runs out (then throws with the last value). */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 250): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: T | undefined;
  while (Date.now() < until) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)}`);
}

/** Marks `addresses` as peers the user accepted, in `dataDir`'s store (storms come from known peers: a stranger is
 * held to its pending quota). Usable before or while a node runs on the directory. */
export function trustPeers(dataDir: string, addresses: string[]): void {
  const st = Store.open(dataDir);
  try {
    for (const address of addresses) st.upsertPeer({ address, trust: "trusted" });
  } finally {
    st.close();
  }
}

/** A TCP port nothing listens on right now on `host` (for a server that takes no port 0, or never gets to listen). */
export async function freePort(host = "::1"): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, host, r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}
