/**
 * One running node per data directory (src/core/run-lock.ts), and the address a started node answers for. The lock
 * alone with pids of real processes (`sleep` children); then Node.start() against a node running in a child process
 * (test/helpers/node-runner.mjs, Yggdrasil off, an ephemeral port: no traffic). Last, which address a node answers for.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { addressFor, Node } from "../../src/core/node.ts";
import { LOCK_FILE, RunLock } from "../../src/core/run-lock.ts";
import { tempDir } from "../helpers/store-fixture.ts";

const STALE_MS = 45_000;
const RUNNER = fileURLToPath(new URL("../helpers/node-runner.mjs", import.meta.url));

function lock(dir: string, beating: (pid: number) => boolean = () => false): RunLock {
  return new RunLock({ dataDir: dir, host: "declaw", beating, staleMs: STALE_MS });
}
function writeLock(dir: string, pid: number, since: number, host = hostname()): void {
  writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ pid, hostname: host, since, host: "openclaw" })}\n`);
}
/** A live process that is not a node (killed when the test ends). */
function sleeper(t: TestContext): number {
  const c = spawn("sleep", ["60"], { stdio: "ignore" });
  t.after(() => c.kill());
  return c.pid!;
}
async function deadPid(): Promise<number> {
  const c = spawn("true", { stdio: "ignore" });
  await new Promise((r) => c.once("exit", r));
  return c.pid!;
}

test("the lock file holds this process while it runs and is gone after release", (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const l = lock(dir);
  l.acquire();
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid, process.pid);
  l.release();
  assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  l.release(); // twice is harmless
  lock(dir).acquire();
});

test("a live process's lock refuses another node, naming that process and what to do", (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const pid = sleeper(t);
  writeLock(dir, pid, Date.now()); // still starting: no heartbeat needed yet
  assert.throws(() => lock(dir).acquire(), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, "P2P_ERR_PORT_IN_USE");
    assert.match(err.message, new RegExp(`openclaw, pid ${pid} on .*already running on the data directory`));
    assert.match(err.hint ?? "", /stop that one first/);
    return true;
  });
  writeLock(dir, pid, Date.now() - 10 * STALE_MS);
  assert.throws(() => lock(dir, (p) => p === pid).acquire(), { code: "P2P_ERR_PORT_IN_USE" }, "an old lock whose node keeps its heartbeat");
});

test("a lock left by a dead process, or by a reused pid with no heartbeat, is taken over", async (t) => {
  const dir = tempDir(t, "declaw-lock-");
  writeLock(dir, await deadPid(), Date.now());
  lock(dir).acquire();
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid, process.pid);

  const dir2 = tempDir(t, "declaw-lock-");
  writeLock(dir2, sleeper(t), Date.now() - 10 * STALE_MS); // alive, but not a node: its heartbeat is not fresh
  lock(dir2).acquire();
  assert.equal(JSON.parse(readFileSync(join(dir2, LOCK_FILE), "utf8")).pid, process.pid);
});

test("a lock that cannot be written is a coded data-directory error with a next step, not a raw exception", (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const notADir = join(dir, "a-file");
  writeFileSync(notADir, "");
  // A data directory that cannot hold files (here a path through a file: ENOTDIR; read-only or full ones alike).
  assert.throws(() => lock(join(notADir, "data")).acquire(), (err: unknown) => {
    const e = err as { code?: string; message?: string; hint?: string };
    assert.equal(e.code, "P2P_ERR_DATA_DIR");
    assert.match(e.message ?? "", /run lock .*node\.lock/);
    assert.match(e.hint ?? "", /writable|disk space/);
    return true;
  });
});

test("release leaves a lock that another process has taken since", (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const l = lock(dir);
  l.acquire();
  const other = sleeper(t);
  writeLock(dir, other, Date.now());
  l.release();
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid, other);
});

test("in one process, a second node is refused while the first holds the lock, even from another copy of the module", async (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const first = lock(dir);
  first.acquire();
  t.after(() => first.release());
  // OpenClaw can load the plugin twice in one process (a reload starts the new copy before the old one stopped).
  const copy = (await import(`../../src/core/run-lock.ts?copy=${Date.now()}`)) as typeof import("../../src/core/run-lock.ts");
  assert.notEqual(copy.RunLock, RunLock, "a separate module instance");
  for (const second of [lock(dir), new copy.RunLock({ dataDir: dir, host: "openclaw", beating: () => false, staleMs: STALE_MS })]) {
    assert.throws(() => second.acquire(), { code: "P2P_ERR_PORT_IN_USE", message: /this same process/ });
  }
  // Even once the lock is old and no heartbeat is fresh: a live lock in this process never goes stale.
  assert.throws(() => lock(dir).acquire(Date.now() + 10 * STALE_MS), { code: "P2P_ERR_PORT_IN_USE" });
  first.release();
  lock(dir).acquire();
});

test("a lock with this process's pid that no node in it holds any more (never released) is taken over", (t) => {
  const dir = tempDir(t, "declaw-lock-");
  writeLock(dir, process.pid, Date.now()); // e.g. written before this version, or by a node that was never stopped
  lock(dir).acquire();
  const held = JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8"));
  assert.equal(held.host, "declaw");
  const abandoned = lock(dir);
  writeFileSync(join(dir, LOCK_FILE), `${JSON.stringify({ ...held, token: "not-held-by-anyone" })}\n`);
  abandoned.acquire();
  abandoned.release();
});

test("Node.start refuses a data directory another node in this same process runs on", async (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const log = { debug() {}, info() {}, warn() {}, error() {} };
  const a = Node.open({ dataDir: dir, config: { yggdrasil: "off", peerPort: 0 }, log });
  await a.start();
  t.after(() => a.stop());
  const b = Node.open({ dataDir: dir, config: { yggdrasil: "off", peerPort: 0 }, log });
  await assert.rejects(b.start().then(() => b.stop()), { code: "P2P_ERR_PORT_IN_USE", message: /this same process/ });
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), "utf8")).pid, process.pid, "the first node keeps its lock");
  await a.stop();
});

test("stop() during start() cuts the start short: start rejects as shutting down, and nothing it began stays (lock, server)", async (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const log = { debug() {}, info() {}, warn() {}, error() {} };
  const a = Node.open({ dataDir: dir, config: { yggdrasil: "off", peerPort: 0 }, log });
  const started = a.start();
  await a.stop(); // while start() waits (the first await is Yggdrasil's start, even when off)
  await assert.rejects(started, { code: "P2P_ERR_SHUTTING_DOWN" });
  assert.equal(a.processInfo().running, false);
  assert.throws(() => readFileSync(join(dir, LOCK_FILE)), { code: "ENOENT" }, "the run lock is released");
  const b = Node.open({ dataDir: dir, config: { yggdrasil: "off", peerPort: 0 }, log });
  await b.start();
  await b.stop();
});

/** A node running in a child process on `dir` (Yggdrasil off, an ephemeral port); stopped when the test ends. */
async function childNode(t: TestContext, dir: string): Promise<ChildProcess> {
  const c = spawn(process.execPath, [RUNNER, JSON.stringify({ dataDir: dir, quiet: true, config: { yggdrasil: "off", peerPort: 0 } })], { stdio: ["pipe", "pipe", "inherit"] });
  t.after(() => c.kill());
  const first = await new Promise<any>((r) => createInterface({ input: c.stdout! }).once("line", (l) => r(JSON.parse(l))));
  assert.equal(first.ready, true, JSON.stringify(first));
  return c;
}

test("Node.start refuses a data directory another process runs a node on, and starts once that one stopped", async (t) => {
  const dir = tempDir(t, "declaw-lock-");
  const child = await childNode(t, dir);
  const second = Node.open({ dataDir: dir, config: { yggdrasil: "off", peerPort: 0 } });
  // (Were it to start, it is stopped again, so that the failure is reported rather than the test left hanging.)
  await assert.rejects(second.start().then(() => second.stop()), { code: "P2P_ERR_PORT_IN_USE", message: new RegExp(`pid ${child.pid} `) });
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  const third = Node.open({ dataDir: dir, config: { yggdrasil: "off", peerPort: 0 } });
  await third.start();
  await third.stop();
});

test("yggdrasil off, and our address on no interface of this machine: start warns that peers cannot reach the node", async (t) => {
  const dir = tempDir(t, "declaw-off-");
  const warnings: string[] = [];
  const log = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
  const n = Node.open({ dataDir: dir, config: { yggdrasil: "off", peerPort: 0 }, log });
  await n.start();
  await n.stop();
  // This test runs outside any namespace of ours: nothing here holds the fresh identity's 200::/7 address.
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0]!, new RegExp(`yggdrasil is off and ${n.identity.address} is on no network interface`));
});

test("the address a node answers for: the system daemon's, the derived one with its own daemon, else the recorded one", () => {
  const derived = "200:aaaa::1";
  const recorded = "200:1111:2222:3333:4444:5555:6666:7777"; // e.g. what a system-mode run recorded
  assert.equal(addressFor({ effectiveMode: "system", address: "200:bbbb::2" }, recorded, derived), "200:bbbb::2");
  assert.equal(addressFor({ effectiveMode: "spawn", address: derived }, recorded, derived), derived, "a spawned daemon has our key");
  assert.equal(addressFor({ effectiveMode: "off" }, "300:1:2:3::1", derived), "300:1:2:3::1", "off: the host's word");
  assert.equal(addressFor(undefined, recorded, derived), recorded, "a CLI process: what the running node recorded");
  assert.equal(addressFor(undefined, undefined, derived), derived);
});
