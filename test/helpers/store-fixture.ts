/** Shared setup for the store tests: temp data dirs that are always removed, message factories, tmpfs mounts. */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { Store, type InboundItem, type OutboundItem, type StoreOptions } from "../../src/core/store.ts";

export const HELPERS_DIR = import.meta.dirname;
export const PEER_A = "200:1111:2222:3333:4444:5555:6666:7777";
export const PEER_B = "201:abcd::1";
export const KEY_A = Buffer.alloc(32, 1).toString("base64");
export const KEY_B = Buffer.alloc(32, 2).toString("base64");

/** A fresh directory under the system temp dir, removed after the test (also when it fails). */
export function tempDir(t: TestContext, prefix = "declaw-store-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A store in a fresh temp data dir; closed and removed after the test. */
export function openTemp(t: TestContext, options?: StoreOptions): { dir: string; store: Store } {
  const dir = mkdtempSync(join(tmpdir(), "declaw-store-"));
  const store = Store.open(dir, options);
  t.after(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, store };
}

export function inbound(id: string, over: Partial<InboundItem> = {}): InboundItem {
  return { id, peer: PEER_A, kind: "chat", content: `content of ${id}`, ts: 1_000, protocol: 2, storedAt: 2_000, ...over };
}

export function outbound(id: string, over: Partial<OutboundItem> = {}): OutboundItem {
  return { id, peer: PEER_A, kind: "chat", content: `content of ${id}`, ts: 1_000, protocol: 2, expiresAt: 1_000_000, ...over };
}

/** Why a test that must switch to user "nobody" cannot run here, or undefined when it can. */
export function rootSkipReason(): string | undefined {
  if (process.platform === "win32") return "needs POSIX users";
  if (process.getuid?.() !== 0) return "needs root to run a child as user nobody";
  return undefined;
}

/** Why a test needing mount(2) cannot run here, or undefined when it can. */
export function mountSkipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux tmpfs";
  if (process.getuid?.() !== 0) return "needs root to mount a tmpfs (root ignores permission bits, so a mount is the honest read-only/full disk)";
  return undefined;
}

/**
 * Mounts a tmpfs of `sizeKb` on a fresh dir, runs `fn`, always unmounts and removes the dir. `remount(ro)` flips
 * the mount between read-only and read-write.
 */
export async function withTmpfs(
  sizeKb: number,
  fn: (dir: string, remount: (readOnly: boolean) => void) => unknown,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "declaw-tmpfs-"));
  let mounted = false;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeKb}k,mode=0700`, "declaw-test", dir], { stdio: "pipe" });
    mounted = true;
    await fn(dir, (readOnly) => {
      execFileSync("mount", ["-o", readOnly ? "remount,ro" : "remount,rw", dir], { stdio: "pipe" });
    });
  } finally {
    if (mounted) execFileSync("umount", ["-l", dir], { stdio: "pipe" });
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface HelperOptions {
  /** SIGKILL the child once this many stdout lines arrived. */
  killAfterLines?: number;
  uid?: number;
  gid?: number;
  timeoutMs?: number;
}

export interface HelperHandle {
  /** Resolves when the child wrote "ready" to stderr (helpers that wait for `go()` do so after opening the store). */
  ready: Promise<void>;
  /** Releases a child waiting on stdin. */
  go(): void;
  done: Promise<ChildResult>;
}

/**
 * Starts a helper script in a child Node (type stripping, the same binary as the test). The child is always
 * SIGKILLed at teardown if it is still running.
 */
export function startHelper(t: TestContext, script: string, args: string[], o: HelperOptions = {}): HelperHandle {
  const child = spawn(process.execPath, [join(HELPERS_DIR, script), ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    ...(o.uid === undefined ? {} : { uid: o.uid }),
    ...(o.gid === undefined ? {} : { gid: o.gid }),
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  let lines = 0;
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (o.killAfterLines !== undefined) {
      lines += chunk.split("\n").length - 1;
      if (lines >= o.killAfterLines) child.kill("SIGKILL");
    }
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
    if (/^ready$/m.test(stderr)) onReady();
  });
  child.stdin.on("error", () => {}); // a child that exits early closes its stdin
  const done = new Promise<ChildResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} timed out; stderr: ${stderr}`));
    }, o.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return { ready, go: () => child.stdin.end("go\n"), done };
}

/** Runs a helper to completion (its stdin is closed at once: helpers that wait for `go()` start immediately). */
export function runHelper(t: TestContext, script: string, args: string[], o: HelperOptions = {}): Promise<ChildResult> {
  const h = startHelper(t, script, args, o);
  h.go();
  return h.done;
}

/** Only complete lines: a SIGKILLed child may leave half a line behind. */
export function completeLines(stdout: string): string[] {
  const parts = stdout.split("\n");
  parts.pop();
  return parts.filter((l) => l.length > 0);
}

export function makeDir(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
