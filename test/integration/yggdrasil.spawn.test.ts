/**
 * Spawn mode against the real daemon, each supervisor in a child process inside its own network namespace:
 * the TUN carries our derived address; a SIGKILLed daemon is restarted with the same address; a SIGKILLed parent
 * leaves no daemon behind (its guard stops it); stop() leaves nothing.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsAvailable, Testnet } from "../helpers/netns.ts";
import { SupervisorChild, processAlive, waitFor, yggdrasilPidsMentioning } from "../helpers/ygg-harness.ts";
import { YGGDRASIL_BINARY } from "../helpers/ygg-cli.ts";
import { ifNameFor } from "../../src/yggdrasil/config.ts";

const avail = netnsAvailable();
const skip = !avail.ok ? avail.reason : !YGGDRASIL_BINARY ? "yggdrasil binary not installed" : false;
const dirs: string[] = [];
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "dcl-ygg-"));
  dirs.push(d);
  return d;
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

test("spawn mode: TUN address equals identity address, running, stop leaves no process", { skip, timeout: 60_000 }, async () => {
  const net = new Testnet();
  const dir = dataDir();
  try {
    const ns = net.add();
    const sup = new SupervisorChild({ dataDir: dir, mode: "spawn" }, { ns });
    const ev = await sup.started;
    assert.equal(ev.event, "started", JSON.stringify(ev));
    const st = ev.status;
    assert.equal(st.state, "running");
    assert.equal(st.effectiveMode, "spawn");
    assert.equal(st.keyBinding, "derived");
    assert.equal(st.address, ev.identity.address);
    assert.equal(st.subnet, ev.identity.subnet);
    assert.ok(st.pid && processAlive(st.pid));
    assert.deepEqual(st.peers, []);
    const ifName = ifNameFor(ev.identity.address);
    const ipOut = ns.exec("ip", ["-6", "addr", "show", "dev", ifName]);
    assert.ok(ipOut.includes(`inet6 ${ev.identity.address}/7`), ipOut);
    // Files: dir 0700, config 0600 with our key, pid file, admin socket inside the dir.
    const ydir = join(dir, "yggdrasil");
    assert.equal(statSync(ydir).mode & 0o777, 0o700);
    assert.equal(statSync(join(ydir, "yggdrasil.conf")).mode & 0o777, 0o600);
    assert.ok(existsSync(join(ydir, "yggdrasil.pid")));
    assert.ok(statSync(join(ydir, "admin.sock")).isSocket());
    assert.ok(statSync(join(ydir, "yggdrasil.log")).size > 0);

    await sup.call("stop");
    await sup.call("stop"); // idempotent
    const after = await sup.status();
    assert.equal(after.state, "stopped");
    await waitFor("daemon gone", () => !processAlive(st.pid!), 5000);
    assert.deepEqual(yggdrasilPidsMentioning(dir), []);
    assert.ok(!existsSync(join(ydir, "yggdrasil.pid")));
    assert.ok(!existsSync(join(ydir, "admin.sock")));
    await sup.call("exit");
  } finally {
    await net.destroy();
  }
});

test("a SIGKILLed daemon is restarted with the same address", { skip, timeout: 60_000 }, async () => {
  const net = new Testnet();
  const dir = dataDir();
  try {
    const ns = net.add();
    const sup = new SupervisorChild({ dataDir: dir, mode: "spawn" }, { ns });
    const ev = await sup.started;
    assert.equal(ev.status.state, "running");
    const pid1 = ev.status.pid!;
    process.kill(pid1, "SIGKILL");
    const st = await waitFor("restarted daemon", async () => {
      const s = await sup.status();
      return s.state === "running" && s.pid !== pid1 ? s : undefined;
    }, 20_000);
    assert.equal(st.address, ev.identity.address);
    assert.ok(processAlive(st.pid!));
    assert.ok(!processAlive(pid1));
    const ipOut = ns.exec("ip", ["-6", "addr", "show", "dev", ifNameFor(ev.identity.address)]);
    assert.ok(ipOut.includes(ev.identity.address), ipOut);
    await sup.call("exit");
    await waitFor("daemon gone", () => !processAlive(st.pid!), 5000);
  } finally {
    await net.destroy();
  }
});

test("SIGKILL of the supervising process leaves no orphan daemon; the next start cleans up", { skip, timeout: 60_000 }, async () => {
  const net = new Testnet();
  const dir = dataDir();
  try {
    const ns = net.add();
    const sup = new SupervisorChild({ dataDir: dir, mode: "spawn" }, { ns });
    const ev = await sup.started;
    assert.equal(ev.status.state, "running");
    const pid = ev.status.pid!;
    sup.kill();
    await sup.exited();
    await waitFor("orphan daemon to die", () => !processAlive(pid), 5000);
    assert.deepEqual(yggdrasilPidsMentioning(dir), []);
    // The pid file is left behind; a new supervisor on the same data dir starts fine (same address).
    const sup2 = new SupervisorChild({ dataDir: dir, mode: "spawn" }, { ns });
    const ev2 = await sup2.started;
    assert.equal(ev2.status.state, "running", JSON.stringify(ev2));
    assert.equal(ev2.status.address, ev.identity.address);
    await sup2.call("exit");
  } finally {
    await net.destroy();
  }
});
