/**
 * The plugin over real Yggdrasil: two OpenClaw gateways in two namespaces joined by a veth with only link addresses
 * (fd00:ab::/64); each gateway's plugin service spawns its own Yggdrasil daemon (Debian's 0.4.7 here) with the
 * node's key, B listening and A peering with it. A's `openclaw p2p send` crosses the mesh to B's agent and B's answer
 * comes back the same way. Needs root, `ip netns` and the yggdrasil binary (skipped otherwise).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsAvailable, Testnet } from "../helpers/netns.ts";
import { OpenClawInstance, PEER_PORT } from "../helpers/openclaw-gateway.ts";
import { BIN, packPlugin } from "../helpers/openclaw-pack.ts";
import { YGGDRASIL_BINARY } from "../helpers/ygg-cli.ts";
import { Store } from "../../src/core/store.ts";

const avail = netnsAvailable();
const skip = !avail.ok
  ? avail.reason
  : !existsSync(join(BIN, "openclaw"))
    ? "openclaw is not installed (npm i --no-save openclaw@2026.9.6)"
    : !YGGDRASIL_BINARY
      ? "the yggdrasil binary is not installed"
      : false;
const YGG_PORT = 12345;
const STEP_MS = 120_000;

describe("OpenClaw plugin over real Yggdrasil (spawn mode)", { skip, timeout: 15 * 60_000 }, () => {
  let work: string;
  let net: Testnet;
  let a: OpenClawInstance;
  let b: OpenClawInstance;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "declaw-ocy-"));
    const packed = packPlugin(work);
    net = new Testnet();
    const nsA = net.add();
    const nsB = net.add();
    const { aDev, bDev } = net.link(nsA, nsB);
    nsA.addAddress(aDev, "fd00:ab::1/64");
    nsB.addAddress(bDev, "fd00:ab::2/64");
    a = new OpenClawInstance({ name: "alice", ns: nsA, workDir: work });
    b = new OpenClawInstance({ name: "bob", ns: nsB, workDir: work });
    await Promise.all([a.installPlugin(packed.tarball), b.installPlugin(packed.tarball)]);
    b.writeConfig({ yggdrasil: "spawn", yggdrasil_listen: [`tcp://[::]:${YGG_PORT}`], peer_port: PEER_PORT });
    a.writeConfig({ yggdrasil: "spawn", yggdrasil_peers: [`tcp://[fd00:ab::2]:${YGG_PORT}`], peer_port: PEER_PORT });
    await Promise.all([a.cliJson(["p2p", "add", b.address, "--alias", "bob", "--json"]), b.cliJson(["p2p", "add", a.address, "--alias", "alice", "--json"])]);
    await Promise.all([a.startModel(), b.startModel()]);
    // B (the listener) first: Yggdrasil 0.4 re-dials a static peer it could not reach only once a minute.
    await b.startGateway();
    await b.waitFor(() => (b.heartbeat()?.updatedAt ?? 0) > Date.now() - 30_000, STEP_MS, "B's node running");
    await a.startGateway();
    await a.waitFor(() => (a.heartbeat()?.updatedAt ?? 0) > Date.now() - 30_000, STEP_MS, "A's node running");
  });

  after(async () => {
    await Promise.allSettled([a?.stopGateway(10_000), b?.stopGateway(10_000)]);
    a?.stopModel();
    b?.stopModel();
    if (process.env.DECLAW_KEEP_TMP && work) {
      for (const inst of [a, b]) if (inst) writeFileSync(join(work, `${inst.name}-gateway.log`), inst.gatewayLog);
      process.stderr.write(`kept ${work}\n`);
    }
    await net?.destroy();
    if (work && !process.env.DECLAW_KEEP_TMP) rmSync(work, { recursive: true, force: true });
  });

  it("each gateway's node runs its own daemon with the node's address", async () => {
    for (const inst of [a, b]) {
      const st = await inst.cliJson(["p2p", "status", "--json"]);
      assert.equal(st.address, inst.address);
      assert.equal(st.node.running, true);
      assert.equal(st.yggdrasil.effectiveMode, "spawn");
      assert.equal(st.yggdrasil.state, "running", JSON.stringify(st.yggdrasil));
      const tun = inst.ns.exec("ip", ["-6", "addr", "show"]);
      assert.ok(tun.includes(inst.address), `${inst.name}: ${inst.address} not on any interface:\n${tun}`);
    }
  });

  it("A's message crosses the mesh to B's agent and B's answer comes back", async () => {
    await a.waitFor(async () => (await a.cli(["p2p", "ping", "bob", "--json"])).code === 0, STEP_MS, "mesh route to B");
    const sent = await a.cliJson(["p2p", "send", "bob", "hello over the mesh", "--json"]);
    assert.equal(sent.state, "delivered", JSON.stringify(sent));
    await b.waitFor(() => b.modelRequests.some((r) => r.lastUser.includes("hello over the mesh")), STEP_MS, "B's agent turn");
    await a.waitFor(() => {
      const s = Store.open(a.dataDir);
      try {
        return s.listInbox({ peer: b.address, limit: 20 }).some((m) => m.content.includes("mock reply: hello over the mesh"));
      } finally {
        s.close();
      }
    }, STEP_MS, "B's answer in A's inbox");
    const sessions = await b.gatewayCall("sessions.list", {});
    assert.ok((sessions.sessions as { key: string }[]).some((s) => s.key === b.sessionKeyFor(a)));
  });
});
