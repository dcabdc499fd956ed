/**
 * Acceptance over the real mesh (Debian's yggdrasil 0.4.7, run as root in CI), everything through the `declaw` CLI:
 *
 * 1. A line A - B - C of namespaces (veth A-B and B-C only), each `declaw run --yggdrasil spawn` with its own daemon
 *    (B listens, A and C peer with B): A's message to C is routed through B and comes back with C's receipt; each
 *    TUN carries exactly the address `status` reports; B's daemon SIGKILLed is restarted by the supervisor and the
 *    messages sent meanwhile drain from A's outbox, each stored once by C.
 * 2. Without CAP_NET_ADMIN (user nobody, auto mode): `status` names the problem with a code and the setcap fix, the
 *    rest of the CLI keeps working (peers/add/send queued, exit 0), and `declaw run` stays up without the mesh.
 * 3. System mode: a daemon started like the Debian unit (own key, AdminListen unix socket); the node takes the
 *    daemon's address (keyBinding first-use) and a spawn-mode peer exchanges messages with it, pinning its key from
 *    the first receipt (TOFU).
 */
import assert from "node:assert/strict";
import { chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { cli, tempDir, waitFor, type RunningNode } from "../helpers/declaw.ts";
import { binaryGrantsNetAdmin, cliAsNobody, meshAddresses, nobodyCannotRunCli, NOBODY_UID, startRun, startSystemDaemon, tunAddress, yggdrasilPidsIn } from "../helpers/mesh-net.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";
import { YGGDRASIL_BINARY } from "../helpers/ygg-cli.ts";

const avail = netnsAvailable();
const skipMesh: string | false = !avail.ok
  ? avail.reason
  : !YGGDRASIL_BINARY ? "the yggdrasil binary is not installed (sudo apt install yggdrasil); the mesh suites need a real daemon" : false;
const skipNobody: string | false = skipMesh || (nobodyCannotRunCli() ?? false) || (await binaryGrantsNetAdmin());
const YGG_PORT = 12345;

interface MeshPeer { address: string; up: boolean; uri?: string }
const upPeers = (status: any): string[] => ((status?.yggdrasil?.peers ?? []) as MeshPeer[]).filter((p) => p.up).map((p) => p.address).sort();

/** `status --json` (heartbeat-backed while a node runs) once `pred` holds for it. */
function statusWhen(ns: Namespace, dir: string, what: string, pred: (s: any) => boolean, timeoutMs = 45_000): Promise<any> {
  return waitFor(what, async () => {
    const r = await cli(ns, dir, ["status"]);
    return r.code === 0 && pred(r.json) ? r.json : undefined;
  }, timeoutMs, 500);
}

/** Waits until a verified ping goes through (the mesh has a route), returning the ping result. */
function pingable(ns: Namespace, dir: string, peer: string, timeoutMs = 60_000): Promise<any> {
  return waitFor(`ping ${peer}`, async () => {
    const r = await cli(ns, dir, ["ping", peer], { timeoutMs: 30_000 });
    return r.code === 0 ? r.json : undefined;
  }, timeoutMs, 500);
}

describe("line A - B - C over real Yggdrasil (spawn mode, one daemon per namespace)", { skip: skipMesh, timeout: 600_000 }, () => {
  let net: Testnet;
  let A: Namespace;
  let B: Namespace;
  let C: Namespace;
  const dirs = { A: tempDir("mesh-a"), B: tempDir("mesh-b"), C: tempDir("mesh-c") };
  const id = {
    A: loadOrCreateIdentity(dirs.A.dir),
    B: loadOrCreateIdentity(dirs.B.dir),
    C: loadOrCreateIdentity(dirs.C.dir),
  };
  const nodes: Partial<Record<"A" | "B" | "C", RunningNode>> = {};

  before(async () => {
    net = new Testnet();
    A = net.add();
    B = net.add();
    C = net.add();
    const ab = net.link(A, B);
    const bc = net.link(B, C);
    A.addAddress(ab.aDev, "fd00:ab::1/64");
    B.addAddress(ab.bDev, "fd00:ab::2/64");
    B.addAddress(bc.aDev, "fd00:bc::2/64");
    C.addAddress(bc.bDev, "fd00:bc::3/64");
    // B (the listener) first: Yggdrasil 0.4 re-dials a static peer it could not reach only once a minute.
    nodes.B = await startRun(B, dirs.B.dir, ["--yggdrasil", "spawn", "--listen", `tcp://[::]:${YGG_PORT}`]);
    [nodes.A, nodes.C] = await Promise.all([
      startRun(A, dirs.A.dir, ["--yggdrasil", "spawn", "--peer", `tcp://[fd00:ab::2]:${YGG_PORT}`]),
      startRun(C, dirs.C.dir, ["--yggdrasil", "spawn", "--peer", `tcp://[fd00:bc::2]:${YGG_PORT}`]),
    ]);
  });

  after(async () => {
    await Promise.all(Object.values(nodes).map((n) => n?.stop().catch(() => undefined)));
    await net?.destroy();
    for (const d of Object.values(dirs)) d.remove();
  });

  it("each node: status shows its daemon running with mesh peers, and the TUN carries exactly that address", async () => {
    const expectPeers = { A: [id.B.address], B: [id.A.address, id.C.address].sort(), C: [id.B.address] };
    for (const [name, ns] of [["A", A], ["B", B], ["C", C]] as const) {
      const s = await statusWhen(ns, dirs[name].dir, `${name}'s mesh peers`, (j) => upPeers(j).join() === expectPeers[name].join());
      assert.equal(s.address, id[name].address, `${name}: status address is the key-derived one`);
      assert.equal(s.node.running, true);
      assert.equal(s.yggdrasil.state, "running", JSON.stringify(s.yggdrasil));
      assert.equal(s.yggdrasil.effectiveMode, "spawn");
      assert.equal(s.yggdrasil.keyBinding, "derived");
      assert.equal(s.yggdrasil.address, s.address);
      assert.equal(s.yggdrasil.problem, undefined, JSON.stringify(s.yggdrasil.problem));
      assert.ok(yggdrasilPidsIn(ns).includes(s.yggdrasil.pid), `${name}: status pid ${s.yggdrasil.pid} is the yggdrasil process in the namespace`);
      const tun = tunAddress(ns);
      assert.ok(tun, `${name}: a ygg-* interface with a 200::/7 address: ${JSON.stringify(meshAddresses(ns))}`);
      assert.equal(tun.address, s.address, `${name}: TUN ${tun.dev} address = status --json address`);
    }
  });

  it("A sends to C (no link between them: routed through B) and gets C's signed receipt", async () => {
    const add = await cli(A, dirs.A.dir, ["add", id.C.address, "--alias", "carol"]);
    assert.equal(add.code, 0, add.stderr);
    const ping = await pingable(A, dirs.A.dir, "carol");
    assert.equal(ping.verified, true);
    assert.equal(ping.publicKey, id.C.publicKeyBase64);
    const sent = await cli(A, dirs.A.dir, ["send", "carol", "hello C, via B"]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.json.state, "delivered", JSON.stringify(sent.json));
    assert.equal(sent.json.receipt.id, sent.json.id);
    assert.equal(sent.json.receipt.from, id.A.address);
    assert.equal(sent.json.receipt.to, id.C.address);
    assert.equal(sent.json.receipt.key, id.C.publicKeyBase64);
    const inbox = await cli(C, dirs.C.dir, ["inbox"]);
    assert.deepEqual(inbox.json.map((m: any) => [m.id, m.peer, m.content]), [[sent.json.id, id.A.address, "hello C, via B"]]);
    // A's only mesh peer is B: the packets went A -> B -> C.
    const sA = await cli(A, dirs.A.dir, ["status"]);
    assert.deepEqual(upPeers(sA.json), [id.B.address]);
  });

  it("B's daemon SIGKILLed: the supervisor restarts it at once, with the same address on the TUN", async () => {
    const before = (await cli(B, dirs.B.dir, ["status"])).json;
    const oldPid: number = before.yggdrasil.pid;
    assert.ok(Number.isInteger(oldPid) && yggdrasilPidsIn(B).includes(oldPid), `B's daemon pid ${oldPid} runs in B`);
    process.kill(oldPid, "SIGKILL");
    const newPid = await waitFor("a new yggdrasil daemon in B", () => yggdrasilPidsIn(B).find((p) => p !== oldPid), 30_000, 100);
    assert.match(nodes.B!.log(), new RegExp(`daemon pid ${oldPid} killed by SIGKILL; restarting`));
    const sB = await statusWhen(B, dirs.B.dir, "B's status to show the restarted daemon", (j) => j.yggdrasil.pid === newPid);
    assert.equal(sB.yggdrasil.state, "running");
    assert.equal(sB.yggdrasil.address, id.B.address);
    await waitFor("B's TUN back with the same derived address", () => tunAddress(B)?.address === id.B.address, 10_000, 100);
  });

  it("messages sent while B's daemon is down are queued, drain from A's outbox once it is back (each stored once by C), and A -> C resumes", async () => {
    // The supervisor restarts a killed daemon within about a second, faster than a CLI send starts. To get a real
    // outage, B's node (the supervisor) is held with SIGSTOP while its daemon is killed, and resumed afterwards:
    // the restart is still the supervisor's own doing (it sees the exit when it resumes).
    const oldPid: number = (await statusWhen(B, dirs.B.dir, "B's daemon pid", (j) => yggdrasilPidsIn(B).includes(j.yggdrasil.pid))).yggdrasil.pid;
    const nodePid = nodes.B!.child.pid!;
    process.kill(nodePid, "SIGSTOP");
    let resumed = false;
    try {
      process.kill(oldPid, "SIGKILL");
      await waitFor("B's daemon to be gone", () => yggdrasilPidsIn(B).length === 0, 10_000, 50);
      const texts = ["meanwhile 1", "meanwhile 2", "meanwhile 3"];
      const sent = await Promise.all(texts.map((t) => cli(A, dirs.A.dir, ["send", "carol", t])));
      for (const r of sent) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.json.state, "queued", JSON.stringify(r.json));
      }
      const ids = sent.map((r) => r.json.id as string);
      const outbox = (await cli(A, dirs.A.dir, ["outbox", "--limit", "100"])).json as any[];
      assert.ok(ids.every((i) => outbox.find((m) => m.id === i)?.state === "queued"), JSON.stringify(outbox));

      process.kill(nodePid, "SIGCONT");
      resumed = true;
      const newPid = await waitFor("the supervisor to start a new daemon in B", () => yggdrasilPidsIn(B).find((p) => p !== oldPid), 30_000, 100);
      // A and C dial B again: Yggdrasil 0.4 retries its configured peers once a minute. Then A's outbox retries
      // with backoff (2 s, 5 s, 15 s, 30 s, 60 s, ...), so allow a few minutes.
      await waitFor("the queued messages to be delivered from A's outbox", async () => {
        const out = (await cli(A, dirs.A.dir, ["outbox", "--limit", "100"])).json as any[];
        return ids.every((i) => out.find((m) => m.id === i)?.state === "delivered");
      }, 240_000, 1000);
      const inbox = (await cli(C, dirs.C.dir, ["inbox", "--limit", "100"])).json as any[];
      for (const [i, t] of texts.entries()) {
        assert.equal(inbox.filter((m) => m.id === ids[i]).length, 1, `"${t}" stored once`);
        assert.equal(inbox.filter((m) => m.content === t).length, 1, `"${t}" appears once`);
      }
      const resumedSend = await cli(A, dirs.A.dir, ["send", "carol", "after the restart"]);
      assert.equal(resumedSend.json.state, "delivered", JSON.stringify(resumedSend.json));
      const counts = (await cli(A, dirs.A.dir, ["status"])).json.counts;
      assert.equal(counts.queued, 0);
      assert.equal(counts.failed, 0);
      const sB = await statusWhen(B, dirs.B.dir, "B's status: restarted daemon with both mesh peers",
        (j) => j.yggdrasil.pid === newPid && upPeers(j).join() === [id.A.address, id.C.address].sort().join());
      assert.equal(sB.yggdrasil.state, "running");
      assert.equal(tunAddress(B)?.address, id.B.address);
    } finally {
      if (!resumed) process.kill(nodePid, "SIGCONT");
    }
  });

  it("the nodes stop cleanly and take their daemons with them", async () => {
    for (const [name, ns] of [["A", A], ["B", B], ["C", C]] as const) {
      assert.equal(await nodes[name]!.stop(), 0, nodes[name]!.log());
      await waitFor(`${name}'s daemon gone`, () => yggdrasilPidsIn(ns).length === 0, 10_000, 100);
    }
  });
});

describe("without CAP_NET_ADMIN: user nobody, auto mode", { skip: skipNobody, timeout: 180_000 }, () => {
  let net: Testnet;
  let N: Namespace;
  const base = tempDir("mesh-nobody");
  const dir = join(base.dir, "data");
  let node: RunningNode | undefined;
  const far = "200:1234:5678:9abc::1";

  before(() => {
    chownSync(base.dir, NOBODY_UID, NOBODY_UID);
    net = new Testnet();
    N = net.add();
  });

  after(async () => {
    await node?.stop().catch(() => undefined);
    await net?.destroy();
    base.remove();
  });

  function assertNoPrivilegeProblem(y: any): void {
    assert.equal(y.state, "unavailable", JSON.stringify(y));
    assert.equal(y.effectiveMode, "none");
    assert.equal(y.problem?.code, "P2P_ERR_YGG_NO_PRIVILEGE", JSON.stringify(y.problem));
    assert.match(y.problem.message, /CAP_NET_ADMIN/);
    assert.ok(y.problem.fix.some((f: string) => /^sudo setcap cap_net_admin\+ep \/\S*yggdrasil$/.test(f)), y.problem.fix.join("\n"));
  }

  it("status --json reports the problem with its code and the setcap fix (exit 0)", async () => {
    const r = await cliAsNobody(N, dir, ["status"]);
    assert.equal(r.code, 0, r.stderr);
    assertNoPrivilegeProblem(r.json.yggdrasil);
    assert.equal(r.json.node.running, false);
  });

  it("the rest of the CLI keeps working: peers, add, send (queued), all exit 0", async () => {
    const peers = await cliAsNobody(N, dir, ["peers"]);
    assert.equal(peers.code, 0, peers.stderr);
    assert.deepEqual(peers.json, []);
    const add = await cliAsNobody(N, dir, ["add", far, "--alias", "far"]);
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.json.trust, "trusted");
    const send = await cliAsNobody(N, dir, ["send", "far", "are you there?"]);
    assert.equal(send.code, 0, send.stderr);
    assert.equal(send.json.state, "queued", JSON.stringify(send.json));
    assert.match(send.json.reason, /P2P_ERR_UNREACHABLE|ENETUNREACH|EHOSTUNREACH|no connection/);
    const peers2 = await cliAsNobody(N, dir, ["peers"]);
    assert.deepEqual(peers2.json.map((p: any) => p.alias), ["far"]);
    const st = await cliAsNobody(N, dir, ["status"]);
    assert.equal(st.json.counts.queued, 1);
  });

  it("declaw run keeps running without the mesh; its status shows the node up and Yggdrasil unavailable with the fix", async () => {
    node = await startRun(N, dir, [], { nobody: true });
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(node.child.exitCode, null, node.log());
    assert.match(node.log(), /P2P_ERR_YGG_NO_PRIVILEGE/);
    const r = await cliAsNobody(N, dir, ["status"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.node.running, true);
    assertNoPrivilegeProblem(r.json.yggdrasil);
    assert.deepEqual(yggdrasilPidsIn(N), [], "no daemon left behind");
    assert.equal(await node.stop(), 0, node.log());
  });
});

describe("system mode: a daemon run like the Debian unit, and a spawn-mode peer", { skip: skipMesh, timeout: 300_000 }, () => {
  let net: Testnet;
  let S: Namespace;
  let T: Namespace;
  const sys = tempDir("mesh-sysd");
  const dirS = tempDir("mesh-sys");
  const dirT = tempDir("mesh-spawn");
  const socket = join(sys.dir, "yggdrasil.sock");
  let daemon: { address: string; pid: number };
  let nodeS: RunningNode | undefined;
  let nodeT: RunningNode | undefined;
  const idS = loadOrCreateIdentity(dirS.dir);
  const idT = loadOrCreateIdentity(dirT.dir);

  before(async () => {
    net = new Testnet();
    S = net.add();
    T = net.add();
    const l = net.link(S, T);
    S.addAddress(l.aDev, "fd00:57::1/64");
    T.addAddress(l.bDev, "fd00:57::2/64");
    daemon = await startSystemDaemon(S, YGGDRASIL_BINARY!, sys.dir, { socket, listen: [`tcp://[::]:${YGG_PORT}`] });
    writeFileSync(join(dirS.dir, "config.json"), JSON.stringify({ yggdrasil: "system", yggdrasil_admin_socket: socket }));
    mkdirSync(dirT.dir, { recursive: true });
    [nodeS, nodeT] = await Promise.all([
      startRun(S, dirS.dir, ["--yggdrasil", "system"]),
      startRun(T, dirT.dir, ["--yggdrasil", "spawn", "--peer", `tcp://[fd00:57::1]:${YGG_PORT}`]),
    ]);
  });

  after(async () => {
    await nodeS?.stop().catch(() => undefined);
    await nodeT?.stop().catch(() => undefined);
    await net?.destroy();
    sys.remove();
    dirS.remove();
    dirT.remove();
  });

  it("status shows the daemon's address (not our derived one) and keyBinding first-use", async () => {
    assert.notEqual(daemon.address, idS.address);
    const s = await statusWhen(S, dirS.dir, "S's mesh peer T", (j) => upPeers(j).includes(idT.address));
    assert.equal(s.address, daemon.address);
    assert.equal(s.publicKey, idS.publicKeyBase64);
    assert.equal(s.yggdrasil.effectiveMode, "system");
    assert.equal(s.yggdrasil.state, "running");
    assert.equal(s.yggdrasil.keyBinding, "first-use");
    assert.equal(s.yggdrasil.address, daemon.address);
    assert.equal(s.yggdrasil.adminSocket, socket);
    assert.deepEqual(meshAddresses(S).map((a) => a.address), [daemon.address], "the TUN carries the daemon's address");
  });

  it("a spawn-mode peer sends to it and gets a receipt; the receipt key is pinned on first use", async () => {
    const ping = await pingable(T, dirT.dir, daemon.address);
    assert.equal(ping.address, daemon.address);
    assert.equal(ping.publicKey, idS.publicKeyBase64);
    const sent = await cli(T, dirT.dir, ["send", daemon.address, "hello system-mode node"]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.json.state, "delivered", JSON.stringify(sent.json));
    assert.equal(sent.json.receipt.to, daemon.address);
    assert.equal(sent.json.receipt.key, idS.publicKeyBase64);
    const peer = (await cli(T, dirT.dir, ["peers"])).json.find((p: any) => p.address === daemon.address);
    assert.equal(peer.keyBinding, "tofu", JSON.stringify(peer));
    assert.equal(peer.publicKey, idS.publicKeyBase64);
    const inbox = (await cli(S, dirS.dir, ["inbox"])).json;
    assert.deepEqual(inbox.map((m: any) => [m.id, m.peer, m.content]), [[sent.json.id, idT.address, "hello system-mode node"]]);
    const again = await cli(T, dirT.dir, ["send", daemon.address, "second, checked against the pinned key"]);
    assert.equal(again.json.state, "delivered", JSON.stringify(again.json));
    const pinnedPing = await cli(T, dirT.dir, ["ping", daemon.address]);
    assert.equal(pinnedPing.json.verified, true, JSON.stringify(pinnedPing.json));
    assert.equal(pinnedPing.json.keyBinding, "pinned");
  });

  it("the system-mode node replies from the daemon's address; the spawn peer pins its key the same way", async () => {
    const reply = await cli(S, dirS.dir, ["send", idT.address, "reply from the system-mode node"]);
    assert.equal(reply.code, 0, reply.stderr);
    assert.equal(reply.json.state, "delivered", JSON.stringify(reply.json));
    assert.equal(reply.json.receipt.key, idT.publicKeyBase64);
    const inboxT = (await cli(T, dirT.dir, ["inbox"])).json;
    assert.equal(inboxT[0].content, "reply from the system-mode node");
    assert.equal(inboxT[0].peer, daemon.address);
    const statusT = (await cli(T, dirT.dir, ["status"])).json;
    assert.deepEqual(statusT.keyMismatches, []);
  });

  it("stopping the node leaves the system daemon running", async () => {
    assert.equal(await nodeS!.stop(), 0, nodeS!.log());
    assert.ok(yggdrasilPidsIn(S).includes(daemon.pid), "a system daemon is not ours to stop");
  });
});
