/**
 * The spawned daemon's pid file (src/yggdrasil/pidfile.ts): the next start SIGKILLs what it names, so only the exact
 * daemon command line, started when the file says, counts as ours. A real `yggdrasil -useconffile` (no TUN, no admin
 * socket, no listener: nothing on any network) stands in for a daemon left behind.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { loadOrCreateIdentity, yggdrasilPrivateKeyHex } from "../../src/core/identity.ts";
import { buildDaemonConfig, renderDaemonConfig } from "../../src/yggdrasil/config.ts";
import { spawnPaths } from "../../src/yggdrasil/paths.ts";
import { killStaleDaemon, ownDaemonPid, processStartTime, readPid, writePid } from "../../src/yggdrasil/pidfile.ts";
import { processAlive, waitFor } from "../helpers/ygg-harness.ts";
import { YGGDRASIL_BINARY, YGGDRASIL_SKIP_REASON } from "../helpers/ygg-cli.ts";
import { tempDir } from "../helpers/store-fixture.ts";

function paths(t: TestContext) {
  const dataDir = tempDir(t, "declaw-pid-");
  const p = spawnPaths(dataDir);
  mkdirSync(p.dir);
  return { dataDir, ...p };
}

function child(t: TestContext, file: string, args: string[]): ChildProcess {
  const c = spawn(file, args, { stdio: "ignore" });
  t.after(() => c.kill("SIGKILL"));
  return c;
}

const ignore = (): void => {};

test("a process that merely names the config (tail -f <conf>) under a recorded pid is never killed", async (t) => {
  const p = paths(t);
  writeFileSync(p.conf, "{}");
  const viewer = child(t, "tail", ["-f", p.conf]);
  writeFileSync(p.pid, `${viewer.pid}\n`); // an old-style pid file: the pid alone
  assert.equal(ownDaemonPid(p.pid, p.conf), undefined);
  await killStaleDaemon(p.pid, p.conf, ignore);
  assert.ok(processAlive(viewer.pid!), "tail is still running");
});

test("our daemon left running is killed; the same command line started at another time is not", { skip: YGGDRASIL_SKIP_REASON, timeout: 30_000 }, async (t) => {
  const p = paths(t);
  const identity = loadOrCreateIdentity(p.dataDir);
  const cfg = buildDaemonConfig({ privateKeyHex: yggdrasilPrivateKeyHex(identity), address: identity.address, listen: [], peers: [], adminSocketPath: p.adminSocket, multicast: false });
  writeFileSync(p.conf, renderDaemonConfig({ ...cfg, IfName: "none", AdminListen: "none" }));
  const daemon = child(t, YGGDRASIL_BINARY!, ["-useconffile", p.conf]);
  await waitFor("the daemon to run", () => processStartTime(daemon.pid!) !== undefined);

  writeFileSync(p.pid, `${daemon.pid} ${Number(processStartTime(daemon.pid!)) + 1}\n`); // a reused pid: started later
  assert.equal(ownDaemonPid(p.pid, p.conf), undefined);
  await killStaleDaemon(p.pid, p.conf, ignore);
  assert.ok(processAlive(daemon.pid!));

  writeFileSync(p.pid, `${daemon.pid}\n`); // an old-style pid file: the command line alone decides
  assert.equal(ownDaemonPid(p.pid, p.conf), daemon.pid);
  writePid(p.pid, daemon.pid!);
  assert.deepEqual(readPid(p.pid), { pid: daemon.pid, startTime: processStartTime(daemon.pid!) });
  assert.equal(ownDaemonPid(p.pid, p.conf), daemon.pid);
  const said: string[] = [];
  await killStaleDaemon(p.pid, p.conf, (m) => said.push(m));
  assert.ok(!processAlive(daemon.pid!), "killed");
  assert.match(said.join("\n"), new RegExp(`killing stale yggdrasil daemon pid ${daemon.pid}`));
  assert.equal(readPid(p.pid), undefined, "the pid file is gone");
});

test("a pid file without a start time (written before it was recorded) is checked on the command line alone: another config's daemon is spared", { skip: YGGDRASIL_SKIP_REASON, timeout: 30_000 }, async (t) => {
  const p = paths(t);
  writeFileSync(p.conf, "{}");
  const other = join(p.dir, "other.conf");
  writeFileSync(other, "{}");
  // Only the argv counts here (the daemon exits on an empty config after a while: long enough to look at it).
  const notOurs = child(t, YGGDRASIL_BINARY!, ["-useconffile", other]);
  writeFileSync(p.pid, `${notOurs.pid}\n`);
  assert.equal(ownDaemonPid(p.pid, p.conf), undefined, "another config file");
});
