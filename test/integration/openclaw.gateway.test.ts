/**
 * The plugin in real OpenClaw (openclaw@2026.9.6): packed with `npm pack`, installed into scratch HOMEs, two gateways
 * in two network namespaces with Yggdrasil off (each node's derived 200::/7 address on its veth), a mock model in
 * each namespace. Covers the acceptance list of the OpenClaw integration:
 *   install + `plugins inspect --runtime` + `plugins doctor`; schema refusal by `config set`;
 *   A `openclaw p2p send` -> B's agent turn in B's session for A -> B's reply in A's inbox; a peer's turn offered no
 *   tools (peer_tools default) while the owner's keeps them;
 *   /p2p-status through `gateway call chat.send`; tools through `tools.invoke`; `message send` through the channel;
 *   `channels status`; an unknown peer held until `openclaw p2p allow`; inbound still dispatched after
 *   `openclaw plugins reload ipv6-p2p`; a turn failed by a model that is down, reported in `channels status`.
 *
 * Needs root and `ip netns` (skipped otherwise) and takes a few minutes: every `openclaw` CLI call loads plugins.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";
import { historyTexts, OpenClawInstance, PEER_PORT } from "../helpers/openclaw-gateway.ts";
import { BIN, packPlugin, ROOT } from "../helpers/openclaw-pack.ts";
import { Node } from "../../src/core/node.ts";
import { Store } from "../../src/core/store.ts";
import { peerIdFromAddress, parseIPv6 } from "../../src/core/address.ts";

const avail = netnsAvailable();
const haveOpenClaw = existsSync(join(BIN, "openclaw"));
const skip = !avail.ok ? avail.reason : !haveOpenClaw ? "openclaw is not installed (npm i --no-save openclaw@2026.9.6)" : false;

const STEP_MS = 90_000;

function inbox(dataDir: string, peer?: string) {
  const s = Store.open(dataDir);
  try {
    return s.listInbox({ peer, limit: 100 });
  } finally {
    s.close();
  }
}

describe("OpenClaw plugin in two real gateways", { skip, timeout: 20 * 60_000 }, () => {
  let work: string;
  let net: Testnet;
  let nsA: Namespace;
  let nsB: Namespace;
  let a: OpenClawInstance;
  let b: OpenClawInstance;
  let strangerDir: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "declaw-oc-"));
    const packed = packPlugin(work);
    if (packed.addedFields.length || packed.addedFiles.length) {
      process.stderr.write(`note: package.json lacks ${[...packed.addedFields, ...packed.addedFiles.map((f) => `files:${f}`)].join(", ")}; added for this run (see test/helpers/openclaw-pack.ts)\n`);
    }
    net = new Testnet();
    nsA = net.add();
    nsB = net.add();
    const { aDev, bDev } = net.link(nsA, nsB);
    a = new OpenClawInstance({ name: "alice", ns: nsA, workDir: work });
    b = new OpenClawInstance({ name: "bob", ns: nsB, workDir: work });
    // Yggdrasil off: each node's derived address sits on its veth; 200::/7 is on-link on both ends.
    nsA.addAddress(aDev, `${a.address}/7`);
    nsB.addAddress(bDev, `${b.address}/7`);
    // A third identity ("stranger") that B has never heard of, sending from A's namespace.
    strangerDir = join(work, "stranger");
    const stranger = Node.open({ dataDir: strangerDir, config: { yggdrasil: "off" } });
    // Deprecated (preferred_lft 0), so the kernel never picks it as A's source address; the stranger binds it.
    nsA.exec("ip", ["-6", "addr", "add", `${stranger.identity.address}/128`, "dev", aDev, "nodad", "preferred_lft", "0"]);
    stranger.close();

    for (const inst of [a, b]) {
      const r = await inst.cli(["plugins", "install", "--force", "--accept-capabilities", `npm-pack:${packed.tarball}`]);
      assert.equal(r.code, 0, `${inst.name}: plugins install failed\n${r.stderr}\n${r.stdout}`);
      inst.writeConfig({ yggdrasil: "off", peer_port: PEER_PORT, loop_budget: 10 });
    }
  });

  after(async () => {
    await Promise.allSettled([a?.stopGateway(5_000), b?.stopGateway(5_000)]);
    if (process.env.DECLAW_KEEP_TMP && work) {
      for (const inst of [a, b]) if (inst) writeFileSync(join(work, `${inst.name}-gateway.log`), inst.gatewayLog);
      process.stderr.write(`kept ${work}\n`);
    }
    a?.stopModel();
    b?.stopModel();
    await net?.destroy();
    if (work && !process.env.DECLAW_KEEP_TMP) rmSync(work, { recursive: true, force: true });
  });

  it("installs from the npm pack tarball and loads without diagnostics", async () => {
    const inspect = await a.cliJson(["plugins", "inspect", "ipv6-p2p", "--runtime", "--json"]);
    assert.equal(inspect.plugin.status, "loaded");
    assert.deepEqual(inspect.diagnostics, []);
    assert.match(inspect.plugin.source, /dist\/hosts\/openclaw\/index\.js$/);
    assert.deepEqual([...inspect.plugin.toolNames].sort(), ["p2p_add_peer", "p2p_list_peers", "p2p_send_message", "p2p_status"]);
    assert.deepEqual(inspect.plugin.channelIds, ["ipv6-p2p"]);
    const doctor = await a.cli(["plugins", "doctor"]);
    assert.equal(doctor.code, 0, doctor.stderr);
    assert.match(doctor.stdout, /checks passed/);
    assert.doesNotMatch(doctor.stdout + doctor.stderr, /ipv6-p2p[^\n]*(error|warn)/i);
  });

  it("config set refuses bad values through the manifest schema", async () => {
    const bad: [string, string][] = [
      ['plugins.entries["ipv6-p2p"].config.peer_port', '"abc"'],
      ['plugins.entries["ipv6-p2p"].config.yggdrasil', '"sometimes"'],
      ['plugins.entries["ipv6-p2p"].config.dm_policy', '"everyone"'],
      ['plugins.entries["ipv6-p2p"].config.not_a_key', "1"],
      ['plugins.entries["ipv6-p2p"].config.data_dir', '"p2pdata"'], // relative: each process would resolve it elsewhere
    ];
    for (const [path, value] of bad) {
      const r = await a.cli(["config", "set", path, value, "--strict-json"]);
      assert.notEqual(r.code, 0, `config set ${path}=${value} was accepted`);
      assert.match(r.stdout + r.stderr, /validation failed|invalid/i);
    }
    assert.equal(a.readConfig().plugins.entries["ipv6-p2p"].config.peer_port, PEER_PORT);
  });

  it("the CLI works without a gateway (status, add)", async () => {
    const st = await a.cliJson(["p2p", "status", "--json"]);
    assert.equal(st.address, a.address);
    assert.equal(st.node.running, false);
    assert.equal(st.openclaw.dmPolicy, "allowlist");
    const added = await a.cliJson(["p2p", "add", b.address, "--alias", "bob", "--json"]);
    assert.equal(added.trust, "trusted");
    assert.equal(added.alias, "bob");
    const addedA = await b.cliJson(["p2p", "add", a.address, "--alias", "alice", "--json"]);
    assert.equal(addedA.trust, "trusted");
    const usage = await a.cli(["p2p", "add", b.address, "--port", "x", "--json"]);
    assert.equal(usage.code, 2);
    assert.equal(JSON.parse(usage.stdout).error, "P2P_ERR_BAD_ARGUMENT");
  });

  it("starts both gateways; the service runs the node and the channel reports it", async () => {
    await Promise.all([a.startModel(), b.startModel()]);
    await Promise.all([a.startGateway(), b.startGateway()]);
    for (const inst of [a, b]) {
      await inst.waitFor(() => {
        const hb = inst.heartbeat();
        return hb !== undefined && hb.updatedAt > Date.now() - 30_000;
      }, STEP_MS, "node heartbeat");
    }
    await b.waitFor(async () => {
      const st = await b.cliJson(["channels", "status", "--json"]);
      const acc = st.channelAccounts?.["ipv6-p2p"]?.[0];
      return acc?.running === true && acc?.connected === true && acc?.identity === b.address;
    }, STEP_MS, "channels status running+connected");
  });

  it("A's `openclaw p2p send` reaches B's agent in B's session for A, and B's reply lands in A's inbox", async () => {
    const sent = await a.cliJson(["p2p", "send", "bob", "hello from alice", "--json"]);
    assert.equal(sent.state, "delivered", JSON.stringify(sent));
    await b.waitFor(() => b.modelRequests.some((r) => r.lastUser.includes("hello from alice")), STEP_MS, "B's model to see the message");
    await a.waitFor(() => inbox(a.dataDir, b.address).some((m) => m.content.includes("mock reply:") && m.content.includes("hello from alice")), STEP_MS, "B's reply in A's inbox");
    const sessions = await b.gatewayCall("sessions.list", {});
    const keys = (sessions.sessions as { key: string }[]).map((s) => s.key);
    assert.ok(keys.includes(b.sessionKeyFor(a)), `no session ${b.sessionKeyFor(a)} in ${keys.join(", ")}`);
    const hist = historyTexts(await b.gatewayCall("chat.history", { sessionKey: b.sessionKeyFor(a) }));
    assert.ok(hist.some((m) => m.role === "user" && m.text.includes("hello from alice")), JSON.stringify(hist));
    assert.ok(hist.some((m) => m.role === "assistant" && m.text.includes("mock reply:")), JSON.stringify(hist));
    // Nothing of it in B's main session.
    const main = historyTexts(await b.gatewayCall("chat.history", { sessionKey: "main" }));
    assert.ok(!main.some((m) => m.text.includes("hello from alice")));
    const viaCli = await a.cliJson(["p2p", "inbox", "--peer", "bob", "--json"]);
    assert.ok(viaCli.some((m: { content: string }) => m.content.includes("mock reply:")));
  });

  it("a turn a peer's message started offers the model no tools (peer_tools default []), while the owner's turns keep theirs", async () => {
    const peerTurn = b.modelRequests.find((r) => r.lastUser.includes("hello from alice"));
    assert.deepEqual(peerTurn?.tools, [], JSON.stringify(peerTurn?.tools));
    await b.gatewayCall("chat.send", { sessionKey: "main", message: "owner question", idempotencyKey: `own-${Date.now()}` });
    await b.waitFor(() => b.modelRequests.some((r) => r.lastUser.includes("owner question")), STEP_MS, "the owner's turn at B's model");
    const ownerTurn = b.modelRequests.find((r) => r.lastUser.includes("owner question"))!;
    assert.ok(ownerTurn.tools.includes("exec"), `the owner's turn has its tools: ${ownerTurn.tools.join(", ")}`);
  });

  it("/p2p-status runs through chat.send without the model", async () => {
    const before = a.modelRequests.length;
    await a.gatewayCall("chat.send", { sessionKey: "main", message: "/p2p-status", idempotencyKey: `st-${Date.now()}` });
    await a.waitFor(async () => {
      const h = historyTexts(await a.gatewayCall("chat.history", { sessionKey: "main" }));
      return h.some((m) => m.role === "assistant" && m.text.includes(`address     ${a.address}`) && m.text.includes("dm_policy allowlist"));
    }, STEP_MS, "/p2p-status reply");
    assert.equal(a.modelRequests.length, before, "the slash command went to the model");
  });

  it("/p2p-send in a peer's session sends to that peer, model bypassed", async () => {
    const before = a.modelRequests.length;
    await a.gatewayCall("chat.send", { sessionKey: a.sessionKeyFor(b), message: "/p2p-send typed in the peer session", idempotencyKey: `ps-${Date.now()}` });
    await b.waitFor(() => inbox(b.dataDir, a.address).some((m) => m.content === "typed in the peer session"), STEP_MS, "slash-sent message in B's inbox");
    const h = historyTexts(await a.gatewayCall("chat.history", { sessionKey: a.sessionKeyFor(b) }));
    assert.ok(h.some((m) => m.role === "assistant" && /p2p: delivered to/.test(m.text)), JSON.stringify(h.slice(-3)));
    assert.ok(!a.modelRequests.slice(before).some((r) => r.lastUser.includes("/p2p-send")), "the slash command went to the model");
  });

  it("tools run through tools.invoke", async () => {
    const st = await a.gatewayCall("tools.invoke", { name: "p2p_status", args: {} });
    assert.equal(st.ok, true, JSON.stringify(st));
    assert.equal(st.output.details.address, a.address);
    assert.equal(st.output.details.node.running, true);
    const peers = await a.gatewayCall("tools.invoke", { name: "p2p_list_peers", args: {} });
    assert.ok(peers.output.details.some((p: { alias: string }) => p.alias === "bob"));
    const send = await a.gatewayCall("tools.invoke", { name: "p2p_send_message", args: { peer: "bob", text: "tool says hi" } });
    assert.equal(send.output.details.state, "delivered", JSON.stringify(send));
    await b.waitFor(() => b.modelRequests.some((r) => r.lastUser.includes("tool says hi")), STEP_MS, "tool message at B's agent");
  });

  it("`openclaw message send --channel ipv6-p2p` goes out through the channel", async () => {
    const r = await a.cli(["message", "send", "--channel", "ipv6-p2p", "--target", `ipv6-p2p:${b.peerId}`, "--message", "channel send check"]);
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    await b.waitFor(() => inbox(b.dataDir, a.address).some((m) => m.content === "channel send check"), STEP_MS, "channel message in B's inbox");
  });

  it("an unknown peer's message is held until `openclaw p2p allow`", async () => {
    const stranger = Node.open({ dataDir: strangerDir, config: { yggdrasil: "off" }, localAddress: undefined });
    const strangerAddr = stranger.identity.address;
    stranger.close();
    // Send from A's namespace with the stranger's address as source.
    const script = `
      import { Node } from ${JSON.stringify(join(ROOT, "src/core/node.ts"))};
      const n = Node.open({ dataDir: ${JSON.stringify(strangerDir)}, config: { yggdrasil: "off" }, localAddress: ${JSON.stringify(strangerAddr)} });
      const r = await n.send(${JSON.stringify(b.address)}, "hi from a stranger");
      n.close();
      process.stdout.write(JSON.stringify(r));`;
    const r = await nsA.run(join(BIN, "node"), ["--input-type=module", "-e", script], { env: { PATH: process.env.PATH } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).state, "delivered", r.stdout);
    // Stored, pending, not dispatched.
    await new Promise((res) => setTimeout(res, 5_000));
    assert.ok(inbox(b.dataDir, strangerAddr).some((m) => m.content === "hi from a stranger"));
    assert.ok(!b.modelRequests.some((q) => q.lastUser.includes("hi from a stranger")), "pending peer's message reached the agent");
    const st = await b.cliJson(["p2p", "status", "--json"]);
    assert.ok(st.pendingPeers.some((p: { address: string }) => p.address === strangerAddr), JSON.stringify(st.pendingPeers));
    const allowed = await b.cliJson(["p2p", "allow", strangerAddr, "--json"]);
    assert.equal(allowed.trust, "trusted");
    await b.waitFor(() => b.modelRequests.some((q) => q.lastUser.includes("hi from a stranger")), STEP_MS, "held message dispatched after allow");
    const sessions = await b.gatewayCall("sessions.list", {});
    const strangerId = peerIdFromAddress(parseIPv6(strangerAddr)!);
    assert.ok((sessions.sessions as { key: string }[]).some((s) => s.key === b.sessionKeyFor(strangerId)));
  });

  it("after `openclaw plugins reload ipv6-p2p` inbound still reaches the agent", async () => {
    const starts = () => b.gatewayLog.match(/watching \S+ for inbound messages/g)?.length ?? 0;
    const startsBefore = starts();
    const r = await b.cli(["plugins", "reload", "ipv6-p2p"]);
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    // The channel account was restarted by the reload (a new inbound loop started).
    await b.waitFor(() => starts() > startsBefore, STEP_MS, "channel account restart after reload");
    // The reload restarts the service (node) and the channel account; give them time to come back.
    await b.waitFor(() => {
      const hb = b.heartbeat();
      return hb !== undefined && hb.updatedAt > Date.now() - 30_000;
    }, STEP_MS, "node heartbeat after reload");
    let delivered = false;
    await a.waitFor(async () => {
      if (!delivered) {
        const sent = await a.cliJson(["p2p", "send", "bob", "after reload", "--json"]);
        delivered = sent.state === "delivered";
      }
      return delivered;
    }, STEP_MS, "send after reload");
    await b.waitFor(() => b.modelRequests.some((q) => q.lastUser.includes("after reload")), STEP_MS, "agent turn after reload");
    await a.waitFor(() => inbox(a.dataDir, b.address).some((m) => m.content.includes("after reload")), STEP_MS, "reply after reload");
  });

  it("with B's model down, the failed turn is reported in B's channel status and log once OpenClaw gives up, and nothing reaches A", async () => {
    b.stopModel();
    const before = inbox(a.dataDir, b.address).length;
    const sent = await a.cliJson(["p2p", "send", "bob", "while your model is down", "--json"]);
    assert.equal(sent.state, "delivered", JSON.stringify(sent));
    let last: unknown;
    await b.waitFor(async () => {
      const st = await b.cliJson(["channels", "status", "--json"]);
      last = st.channelAccounts?.["ipv6-p2p"]?.[0];
      return /to alice failed/.test(String((last as { lastError?: unknown })?.lastError ?? ""));
    }, 3 * 60_000, "the failed turn in channels status").catch((err) => { // OpenClaw retries the model for ~90 s first
      const log = b.gatewayLog.split("\n").filter((l) => /ipv6-p2p|model|error/i.test(l)).slice(-30).join("\n");
      throw new Error(`${(err as Error).message}\nstatus: ${JSON.stringify(last)}\nlog:\n${log}`);
    });
    assert.match(b.gatewayLog, /\[ipv6-p2p\][^\n]*to alice failed/);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(inbox(a.dataDir, b.address).length, before, "no error notice was sent to A");
  });
});
