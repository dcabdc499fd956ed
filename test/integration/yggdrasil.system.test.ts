/**
 * System mode and unprivileged runs: a daemon started the way the Debian unit does (`yggdrasil -useconffile X`,
 * AdminListen on a unix socket) is used with keyBinding "first-use" and left running by stop(); as user `nobody`,
 * auto mode reports a coded problem with fix commands instead of throwing, explicit spawn turns the daemon's
 * "panic: permission denied" into P2P_ERR_YGG_NO_PRIVILEGE, and a root-only admin socket yields the group fix; with a
 * binary given cap_net_admin (what `declaw setup` does) the daemon runs, and goes when the node is SIGKILLed.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";
import { SupervisorChild, processAlive, waitFor, yggdrasilPidsMentioning } from "../helpers/ygg-harness.ts";
import { YGGDRASIL_BINARY } from "../helpers/ygg-cli.ts";
import { binaryGrantsNetAdmin, setcapMissing } from "../helpers/mesh-net.ts";
import { getSelf } from "../../src/yggdrasil/admin.ts";
import { CAP_NET_ADMIN, capabilityInMask } from "../../src/yggdrasil/privileges.ts";

const avail = netnsAvailable();
const skip = !avail.ok ? avail.reason : !YGGDRASIL_BINARY ? "yggdrasil binary not installed" : false;
const NOBODY_UID = 65534;
const skipUnprivileged = skip || (await binaryGrantsNetAdmin());
const dirs: string[] = [];
function tempDir(owner?: number): string {
  const d = mkdtempSync(join(tmpdir(), "dcl-ygg-"));
  dirs.push(d);
  if (owner !== undefined) chownSync(d, owner, owner);
  return d;
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A daemon we run ourselves, like the system service: own random key, admin socket at `socket`. */
async function startSystemDaemon(ns: Namespace, dir: string, socket: string): Promise<{ address: string; pid: number }> {
  const conf = JSON.parse(execFileSync(YGGDRASIL_BINARY!, ["-genconf", "-json"], { encoding: "utf8" }));
  Object.assign(conf, { AdminListen: `unix://${socket}`, Listen: [], Peers: [], MulticastInterfaces: [], IfName: "ygg-sys" });
  const confPath = join(dir, "system.conf");
  writeFileSync(confPath, JSON.stringify(conf), { mode: 0o600 });
  const address = execFileSync(YGGDRASIL_BINARY!, ["-useconffile", confPath, "-address"], { encoding: "utf8" }).trim();
  const child = ns.spawn(YGGDRASIL_BINARY!, ["-useconffile", confPath]);
  await waitFor("system daemon admin socket", async () => (await getSelf(socket, 500)).address, 15_000);
  return { address, pid: child.pid! };
}

test("system mode: uses a running daemon's admin socket, keyBinding first-use, stop leaves it running", { skip, timeout: 60_000 }, async () => {
  const net = new Testnet();
  try {
    const ns = net.add();
    const sysDir = tempDir();
    const socket = join(sysDir, "yggdrasil.sock");
    const daemon = await startSystemDaemon(ns, sysDir, socket);

    const sup = new SupervisorChild({ dataDir: tempDir(), mode: "system", adminSocket: socket }, { ns });
    const ev = await sup.started;
    assert.equal(ev.event, "started", JSON.stringify(ev));
    const st = ev.status;
    assert.equal(st.state, "running");
    assert.equal(st.effectiveMode, "system");
    assert.equal(st.keyBinding, "first-use");
    assert.equal(st.address, daemon.address);
    assert.notEqual(st.address, ev.identity.address, "the daemon's key, not ours");
    assert.equal(st.adminSocket, socket);
    assert.deepEqual(st.peers, []);
    assert.equal(st.pid, undefined);

    await sup.call("stop");
    assert.equal((await sup.status()).state, "stopped");
    assert.ok(processAlive(daemon.pid), "a system daemon is not ours to stop");
    await sup.call("exit");
  } finally {
    await net.destroy();
  }
});

test("system mode with no daemon answering throws P2P_ERR_YGG_ADMIN_UNREACHABLE with a fix", { skip: avail.ok ? false : avail.reason, timeout: 30_000 }, async () => {
  const net = new Testnet();
  try {
    const ns = net.add();
    const socket = join(tempDir(), "nothing-here.sock");
    const sup = new SupervisorChild({ dataDir: tempDir(), mode: "system", adminSocket: socket }, { ns });
    const ev = await sup.started;
    assert.equal(ev.event, "error");
    assert.equal(ev.error!.code, "P2P_ERR_YGG_ADMIN_UNREACHABLE");
    assert.ok(ev.error!.message!.includes(socket));
    assert.match(ev.error!.hint!, /systemctl|brew services/);
    assert.equal(ev.status.state, "failed");
    await sup.call("exit");
  } finally {
    await net.destroy();
  }
});

test("unprivileged (nobody), auto mode: state unavailable with a coded problem and fix, nothing thrown", { skip: skipUnprivileged, timeout: 30_000 }, async () => {
  const net = new Testnet();
  try {
    const ns = net.add();
    const dir = tempDir(NOBODY_UID);
    const sup = new SupervisorChild({ dataDir: join(dir, "data"), mode: "auto" }, { ns, asUser: "nobody" });
    const ev = await sup.started;
    assert.equal(ev.event, "started", JSON.stringify(ev));
    const st = ev.status;
    assert.equal(st.state, "unavailable");
    assert.equal(st.effectiveMode, "none");
    assert.equal(st.problem?.code, "P2P_ERR_YGG_NO_PRIVILEGE");
    assert.match(st.problem!.message, /CAP_NET_ADMIN/);
    assert.ok(st.problem!.fix.some((f) => f.startsWith("sudo setcap cap_net_admin+ep ")), st.problem!.fix.join("\n"));
    assert.ok(st.problem!.fix.includes("sudo usermod -aG yggdrasil $USER"));
    assert.deepEqual(yggdrasilPidsMentioning(dir), []);
    await sup.call("exit");
  } finally {
    await net.destroy();
  }
});

test("unprivileged (nobody), explicit spawn: the daemon's panic becomes P2P_ERR_YGG_NO_PRIVILEGE; no daemon left", { skip: skipUnprivileged, timeout: 40_000 }, async () => {
  const net = new Testnet();
  try {
    const ns = net.add();
    const dir = tempDir(NOBODY_UID);
    const sup = new SupervisorChild({ dataDir: join(dir, "data"), mode: "spawn" }, { ns, asUser: "nobody" });
    const ev = await sup.started;
    assert.equal(ev.event, "error", JSON.stringify(ev));
    assert.equal(ev.error!.code, "P2P_ERR_YGG_NO_PRIVILEGE", JSON.stringify(ev));
    assert.match(ev.error!.message!, /panic: (permission denied|operation not permitted)/);
    assert.match(ev.error!.hint!, /setcap cap_net_admin\+ep/);
    assert.equal(ev.status.state, "failed");
    assert.equal(ev.status.problem?.code, "P2P_ERR_YGG_NO_PRIVILEGE");
    assert.deepEqual(yggdrasilPidsMentioning(dir), []);
    await sup.call("exit");
  } finally {
    await net.destroy();
  }
});

test("unprivileged (nobody), auto mode, root-only system socket: the group fix is offered", { skip: skipUnprivileged, timeout: 60_000 }, async () => {
  const net = new Testnet();
  try {
    const ns = net.add();
    const sysDir = tempDir();
    chmodSync(sysDir, 0o755);
    const sockDir = join(sysDir, "run");
    mkdirSync(sockDir, { mode: 0o755 });
    const socket = join(sockDir, "yggdrasil.sock"); // created 0660 root:root by the daemon
    await startSystemDaemon(ns, sysDir, socket);
    const dir = tempDir(NOBODY_UID);
    const sup = new SupervisorChild({ dataDir: join(dir, "data"), mode: "auto", adminSocket: socket }, { ns, asUser: "nobody" });
    const ev = await sup.started;
    assert.equal(ev.event, "started", JSON.stringify(ev));
    assert.equal(ev.status.state, "unavailable");
    assert.equal(ev.status.problem?.code, "P2P_ERR_YGG_ADMIN_UNREACHABLE");
    assert.ok(ev.status.problem!.message.includes(socket));
    assert.ok(ev.status.problem!.fix.includes("sudo usermod -aG yggdrasil $USER"));
    await sup.call("exit");
  } finally {
    await net.destroy();
  }
});

test("unprivileged (nobody) with a cap_net_admin binary, as after `declaw setup`: the node SIGKILLed, its daemon goes too", { skip: skip || setcapMissing(), timeout: 60_000 }, async () => {
  const net = new Testnet();
  const dir = tempDir(NOBODY_UID);
  // A copy, so that the machine's own binary is never changed; removed with the directory.
  const copy = join(dir, "yggdrasil");
  copyFileSync(YGGDRASIL_BINARY!, copy);
  chmodSync(copy, 0o755);
  execFileSync("setcap", ["cap_net_admin+ep", copy]);
  let pid: number | undefined;
  try {
    const ns = net.add();
    const sup = new SupervisorChild({ dataDir: join(dir, "data"), mode: "spawn", binary: copy }, { ns, asUser: "nobody" });
    const ev = await sup.started;
    assert.equal(ev.status.state, "running", JSON.stringify(ev));
    pid = ev.status.pid!;
    // The case a kernel death signal misses: the daemon got its capability from the file at exec.
    assert.ok(capabilityInMask(readFileSync(`/proc/${pid}/status`, "utf8"), "CapEff", CAP_NET_ADMIN), "the daemon runs with cap_net_admin");
    sup.kill();
    await sup.exited();
    await waitFor("the daemon to be stopped by its guard", () => !processAlive(pid!), 10_000);
    assert.deepEqual(yggdrasilPidsMentioning(dir), []);
  } finally {
    if (pid !== undefined && processAlive(pid)) process.kill(pid, "SIGKILL");
    await net.destroy();
  }
});
