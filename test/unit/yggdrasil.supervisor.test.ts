/**
 * Supervisor and diagnosis paths that need no daemon: off mode, a missing binary (auto reports, spawn throws),
 * diagnoseYggdrasil writes nothing, stop() is idempotent; and the rotating daemon log.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { YggdrasilSupervisor, diagnoseYggdrasil, RESTART_BACKOFF_MS } from "../../src/yggdrasil/supervisor.ts";
import { RotatingLog } from "../../src/yggdrasil/logfile.ts";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { P2PError } from "../../src/core/errors.ts";
import { findYggdrasilBinary } from "../../src/yggdrasil/binary.ts";
import { canSpawnTun, checkPrivileges } from "../../src/yggdrasil/privileges.ts";

const root = mkdtempSync(join(tmpdir(), "dcl-ygg-unit-"));
after(() => rmSync(root, { recursive: true, force: true }));
const identity = loadOrCreateIdentity(join(root, "id"));
const NO_BINARY = join(root, "no-such-yggdrasil");
const NO_SOCKET = join(root, "no.sock");

test("off: nothing runs, status says so, stop is idempotent", async () => {
  const s = new YggdrasilSupervisor({ dataDir: join(root, "off"), identity, mode: "off", peers: [], listen: [], multicast: false });
  const st = await s.start();
  assert.deepEqual(st, { mode: "off", effectiveMode: "off", state: "stopped", keyBinding: "n/a" });
  await s.stop();
  await s.stop();
  assert.ok(!existsSync(join(root, "off")));
});

test("auto with no binary and no daemon: unavailable with the install fix, never throws", async () => {
  const logs: string[] = [];
  const s = new YggdrasilSupervisor({ dataDir: join(root, "auto"), identity, mode: "auto", peers: [], listen: [], multicast: false, binary: NO_BINARY, adminSocket: NO_SOCKET, log: (_l, m) => logs.push(m) });
  const st = await s.start();
  assert.equal(st.state, "unavailable");
  assert.equal(st.effectiveMode, "none");
  assert.equal(st.problem?.code, "P2P_ERR_YGG_BINARY_MISSING");
  assert.ok(st.problem!.message.includes(NO_BINARY));
  assert.ok(st.problem!.fix.length > 0);
  assert.ok(logs.some((m) => m.includes("P2P_ERR_YGG_BINARY_MISSING")));
  await s.setPeers(["tcp://[fd00::1]:1"]); // harmless when nothing runs
  await s.stop();
  await s.stop();
});

test("spawn with no binary: throws P2P_ERR_YGG_BINARY_MISSING with a hint; status keeps the problem", async () => {
  const s = new YggdrasilSupervisor({ dataDir: join(root, "spawn"), identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: NO_BINARY });
  await assert.rejects(s.start(), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_BINARY_MISSING" && typeof e.hint === "string");
  const st = await s.status();
  assert.equal(st.state, "failed");
  assert.equal(st.problem?.code, "P2P_ERR_YGG_BINARY_MISSING");
  await s.stop();
});

test("system with no daemon: throws P2P_ERR_YGG_ADMIN_UNREACHABLE naming the socket", async () => {
  const s = new YggdrasilSupervisor({ dataDir: join(root, "sys"), identity, mode: "system", peers: [], listen: [], multicast: false, adminSocket: NO_SOCKET });
  await assert.rejects(s.start(), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_ADMIN_UNREACHABLE" && e.message.includes(NO_SOCKET));
  await s.stop();
});

test("diagnoseYggdrasil has no side effects and reports the same problems", async () => {
  const dataDir = join(root, "diag");
  const off = await diagnoseYggdrasil({ dataDir, mode: "off" });
  assert.equal(off.effectiveMode, "off");
  const auto = await diagnoseYggdrasil({ dataDir, mode: "auto", binary: NO_BINARY, adminSocket: NO_SOCKET });
  assert.equal(auto.state, "unavailable");
  assert.equal(auto.problem?.code, "P2P_ERR_YGG_BINARY_MISSING");
  const sys = await diagnoseYggdrasil({ dataDir, mode: "system", adminSocket: NO_SOCKET });
  assert.equal(sys.problem?.code, "P2P_ERR_YGG_ADMIN_UNREACHABLE");
  assert.ok(!existsSync(dataDir), "nothing created");
});

// The socket-path check matters only once spawning is otherwise possible: a yggdrasil binary and the right to a TUN.
const spawnable = await (async () => {
  const binary = findYggdrasilBinary();
  if (!binary) return { skip: "yggdrasil binary not installed" };
  return canSpawnTun(await checkPrivileges(binary)) ? { skip: false as const } : { skip: "this user cannot give a spawned daemon a TUN" };
})();

test("diagnoseYggdrasil: a data dir too long for the admin socket is reported, not 'would spawn' (auto and spawn)", spawnable, async () => {
  const dataDir = join(root, "d".repeat(100));
  for (const mode of ["auto", "spawn"] as const) {
    const st = await diagnoseYggdrasil({ dataDir, mode, adminSocket: NO_SOCKET });
    assert.equal(st.state, "unavailable", mode);
    assert.equal(st.effectiveMode, "none");
    assert.equal(st.problem?.code, "P2P_ERR_CONFIG");
    assert.match(st.problem!.message, /admin socket .* would be \d+ bytes/);
    assert.match(st.problem!.fix.join("\n"), /data directory path of at most \d+ bytes/);
  }
  const short = await diagnoseYggdrasil({ dataDir: join(root, "short"), mode: "auto", adminSocket: NO_SOCKET });
  assert.equal(short.problem, undefined);
  assert.equal(short.effectiveMode, "spawn");
  assert.ok(!existsSync(dataDir), "nothing created");
});

test("restart backoff table grows and ends at 30 s", () => {
  assert.deepEqual([...RESTART_BACKOFF_MS], [500, 1000, 2000, 5000, 10_000, 30_000]);
});

test("RotatingLog rotates to .1 past the cap and keeps a tail", () => {
  const path = join(root, "rot.log");
  const log = new RotatingLog(path, 1000);
  for (let i = 0; i < 30; i++) log.write(`line ${i} ${"x".repeat(90)}\n`);
  log.note("hello");
  log.close();
  assert.ok(statSync(path).size <= 1000);
  assert.ok(statSync(`${path}.1`).size <= 1000);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.match(readFileSync(path, "utf8"), /\[declaw\] hello\n$/);
  assert.match(log.tail(), /line 29/);
  log.resetTail();
  assert.equal(log.tail(), "");
});
