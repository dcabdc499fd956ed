/**
 * The guard of a spawned daemon (daemon.ts): however the process that spawned the daemon ends, the daemon goes too,
 * also where a kernel death signal cannot help (a binary with file capabilities); when the daemon ends first, its guard
 * goes with it and signals nothing. A shell script that only sleeps stands in for Yggdrasil.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnDaemon, stopDaemon } from "../../src/yggdrasil/daemon.ts";
import { RotatingLog } from "../../src/yggdrasil/logfile.ts";
import { processAlive, waitFor } from "../helpers/ygg-harness.ts";

const DAEMON_TS = fileURLToPath(new URL("../../src/yggdrasil/daemon.ts", import.meta.url));
const LOGFILE_TS = fileURLToPath(new URL("../../src/yggdrasil/logfile.ts", import.meta.url));

function fakeDaemon(t: { after: (fn: () => void) => void }, body: string): { dir: string; binary: string } {
  const dir = mkdtempSync(join(tmpdir(), "declaw-guard-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const binary = join(dir, "fake-yggdrasil");
  writeFileSync(binary, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return { dir, binary };
}

/** A node process that spawns the fake daemon as the supervisor does and prints its pid; the caller kills it. */
function spawner(t: { after: (fn: () => void) => void }, binary: string, dir: string, exitHow: "wait" | "exit") {
  const code = `
    const { spawnDaemon } = await import(${JSON.stringify(DAEMON_TS)});
    const { RotatingLog } = await import(${JSON.stringify(LOGFILE_TS)});
    const d = spawnDaemon(${JSON.stringify(binary)}, "conf", new RotatingLog(${JSON.stringify(join(dir, "log"))}));
    console.log(JSON.stringify({ pid: d.pid, guard: d.guard?.pid }));
    ${exitHow === "exit" ? "setTimeout(() => process.exit(3), 200);" : "setInterval(() => {}, 1000);"}`;
  const p = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  t.after(() => { p.kill("SIGKILL"); });
  return p;
}

async function firstLine(child: ReturnType<typeof spawn>): Promise<{ pid: number; guard?: number }> {
  let out = "";
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes("\n")) return JSON.parse(out.slice(0, out.indexOf("\n")));
  }
  throw new Error(`the spawner printed nothing: ${out}`);
}

test("the spawning process SIGKILLed: its guard stops the daemon", { timeout: 30_000 }, async (t) => {
  const { dir, binary } = fakeDaemon(t, "exec sleep 300");
  const p = spawner(t, binary, dir, "wait");
  const { pid, guard } = await firstLine(p);
  t.after(() => { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } });
  assert.ok(guard && processAlive(guard), "a guard runs next to the daemon");
  assert.ok(processAlive(pid));
  p.kill("SIGKILL");
  await waitFor("the daemon to be stopped by its guard", () => !processAlive(pid), 10_000);
  await waitFor("the guard to end", () => !processAlive(guard), 5_000);
});

test("the spawning process exiting without stopping the daemon (a crash): the daemon goes too", { timeout: 30_000 }, async (t) => {
  const { dir, binary } = fakeDaemon(t, "exec sleep 300");
  const p = spawner(t, binary, dir, "exit");
  const { pid } = await firstLine(p);
  t.after(() => { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } });
  await new Promise((r) => p.once("exit", r));
  await waitFor("the daemon to be stopped by its guard", () => !processAlive(pid), 10_000);
});

test("a daemon that ignores SIGTERM is SIGKILLed by its guard 5 s later", { timeout: 30_000 }, async (t) => {
  const { dir, binary } = fakeDaemon(t, `trap "" TERM\nwhile :; do sleep 1; done`);
  const p = spawner(t, binary, dir, "wait");
  const { pid } = await firstLine(p);
  t.after(() => { try { process.kill(pid, "SIGKILL"); } catch { /* gone */ } });
  p.kill("SIGKILL");
  await new Promise((r) => setTimeout(r, 2_000));
  assert.ok(processAlive(pid), "SIGTERM alone does not stop this one");
  await waitFor("the SIGKILL after the grace", () => !processAlive(pid), 10_000);
});

test("a daemon stopped normally takes its guard with it; the guard signals nothing", { timeout: 30_000 }, async (t) => {
  const { dir, binary } = fakeDaemon(t, "exec sleep 300");
  const d = spawnDaemon(binary, "conf", new RotatingLog(join(dir, "log")));
  t.after(() => { try { process.kill(d.pid, "SIGKILL"); } catch { /* gone */ } });
  const guard = d.guard!.pid!;
  assert.ok(processAlive(guard));
  const guardExit = new Promise<NodeJS.Signals | null>((r) => d.guard!.once("exit", (_code, signal) => r(signal)));
  await stopDaemon(d);
  assert.equal(d.exit?.signal, "SIGTERM", "stopped by stopDaemon's SIGTERM");
  assert.equal(await guardExit, "SIGKILL", "the guard is killed, it does not run its own stop");
  await waitFor("the guard to be gone", () => !processAlive(guard), 5_000);
});
