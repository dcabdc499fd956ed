/**
 * The OpenClaw adapter without a gateway: the entry against a hand-made `api` (what register() registers in each
 * mode, and that it touches nothing), the manifest kept in step with the code, target normalization, the dispatch
 * policy and loop budget, the inbound loop against a real store with the SDK dispatcher faked at its boundary, the
 * CLI command table, slash-command parsing and the tool restrictions in peer sessions.
 *
 * Needs `openclaw` installed (the entry imports openclaw/plugin-sdk/channel-core); skipped otherwise.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Store } from "../../src/core/store.ts";
import type { Node, SendResult } from "../../src/core/node.ts";
import { buildEnvelope, newMessageId } from "../../src/core/wire.ts";
import { generateKeyPair } from "../../src/core/keys.ts";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { peerIdFromAddress, parseIPv6 } from "../../src/core/address.ts";
import { CHANNEL_ID, nodeConfigFor, policyLine, resolveSettings, withPeerSessions } from "../../src/hosts/openclaw/config.ts";
import { decide, LoopBudget } from "../../src/hosts/openclaw/policy.ts";
import { corePeerRef, normalizeTarget, peerFromSessionKey } from "../../src/hosts/openclaw/target.ts";
import { inSessionTarget, p2pSend, parseSendArgs } from "../../src/hosts/openclaw/commands.ts";
import { withNode } from "../../src/hosts/openclaw/node-access.ts";
import { splitUtf8, runInboundLoop } from "../../src/hosts/openclaw/inbound.ts";
import { CLI_COMMANDS, runCli } from "../../src/hosts/openclaw/cli.ts";
import { P2PError } from "../../src/core/errors.ts";
import { createTools } from "../../src/hosts/openclaw/tools.ts";

const ROOT = join(import.meta.dirname, "../..");
const haveOpenClaw = existsSync(join(ROOT, "node_modules/openclaw/package.json"));
const manifest = JSON.parse(readFileSync(join(ROOT, "openclaw.plugin.json"), "utf8"));

// Addresses for tests. Nothing is ever sent to them: sends go through fakeSend (this host may route 200::/7 out).
const PEER_A = "200:aaaa::1";
const PEER_B = "200:bbbb::2";
const PEER_C = "200:cccc::3";
const idOf = (a: string) => peerIdFromAddress(parseIPv6(a)!);

/** Stands in for Node.send: queues the message in the outbox without any network attempt (no packet leaves). */
async function fakeSend(node: Node, peer: string, text: string): Promise<SendResult> {
  const row = node.resolvePeer(peer);
  const now = Date.now();
  const m = node.store.enqueueOutbound({ id: newMessageId(now), peer: row.address, kind: "chat", content: text, ts: now, protocol: 2, expiresAt: now + 3_600_000 }, now);
  return { state: "queued", id: m.id, peer: row.address, reason: "test: not sent", nextAttemptAt: now };
}

const tmpDirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "declaw-oca-"));
  tmpDirs.push(d);
  return d;
}
after(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

function fakeApi(mode: string, pluginConfig: Record<string, unknown>) {
  const reg = { tools: [] as unknown[], toolOpts: [] as any[], commands: [] as any[], services: [] as any[], clis: [] as any[], channels: [] as any[], routes: [] as unknown[], methods: [] as string[], descriptors: [] as unknown[] };
  const api: any = {
    id: "ipv6-p2p",
    name: "IPv6 P2P",
    source: "test",
    registrationMode: mode,
    config: { plugins: { entries: { "ipv6-p2p": { config: pluginConfig } } } },
    pluginConfig,
    runtime: { config: { current: () => api.config } },
    logger: { info() {}, warn() {}, error() {}, debug() {} },
    registerTool: (t: unknown, o: unknown) => (reg.tools.push(t), reg.toolOpts.push(o)),
    registerCommand: (c: unknown) => reg.commands.push(c),
    registerService: (s: unknown) => reg.services.push(s),
    registerCli: (r: unknown, o: unknown) => reg.clis.push({ r, o }),
    registerChannel: (c: unknown) => reg.channels.push(c),
    // Control UI surfaces (control-ui.ts): recorded, not exercised here.
    registerHttpRoute: (r: unknown) => reg.routes.push(r),
    registerGatewayMethod: (m: string) => reg.methods.push(m),
    session: { controls: { registerControlUiDescriptor: (d: unknown) => reg.descriptors.push(d) } },
  };
  return { api, reg };
}

describe("entry and manifest", { skip: !haveOpenClaw && "openclaw not installed" }, () => {
  it("registers channel, tools, commands, service and CLI in full mode, and touches nothing", async () => {
    const dir = join(tmp(), "data");
    const { default: entry } = await import("../../src/hosts/openclaw/index.ts");
    const { api, reg } = fakeApi("full", { data_dir: dir, yggdrasil: "off" });
    entry.register(api);
    assert.equal(entry.id, manifest.id);
    assert.equal(reg.channels.length, 1);
    assert.equal(reg.channels[0].plugin.id, manifest.channels[0]);
    assert.deepEqual(reg.toolOpts[0].names, manifest.contracts.tools);
    assert.deepEqual(reg.commands.map((c) => c.name).sort(), ["p2p-peers", "p2p-send", "p2p-status"]);
    assert.deepEqual(manifest.commandAliases.map((c: { name: string }) => c.name).sort(), ["p2p-peers", "p2p-send", "p2p-status"]);
    assert.equal(reg.services.length, 1);
    assert.deepEqual(reg.clis[0].o.descriptors.map((d: { name: string }) => d.name), manifest.cliCommands.map((c: { name: string }) => c.name));
    // The tool factory builds the declared tools.
    const tools = (reg.tools[0] as (ctx: unknown) => { name: string }[])({});
    assert.deepEqual(tools.map((t) => t.name), manifest.contracts.tools);
    // register() opened nothing: no data dir, no identity.
    assert.equal(existsSync(dir), false);
  });

  it("cli-metadata mode registers only the CLI; tool-discovery mode only tools", async () => {
    const { default: entry } = await import("../../src/hosts/openclaw/index.ts");
    const meta = fakeApi("cli-metadata", {});
    entry.register(meta.api);
    assert.equal(meta.reg.clis.length, 1);
    assert.equal(meta.reg.tools.length + meta.reg.commands.length + meta.reg.services.length + meta.reg.channels.length, 0);
    const disc = fakeApi("tool-discovery", {});
    entry.register(disc.api);
    assert.equal(disc.reg.tools.length, 1);
    assert.equal(disc.reg.services.length + disc.reg.commands.length, 0);
  });

  it("only the agent's final answer goes to the peer: no error notices, reasoning or status", async () => {
    const { isAnswer } = await import("../../src/hosts/openclaw/dispatch.ts");
    assert.equal(isAnswer({ text: "hi" }, "final"), true);
    assert.equal(isAnswer({ text: "hi" }, undefined), true);
    assert.equal(isAnswer({ text: "⚠️ Agent couldn't generate a response. Please try again.", isError: true }, "final"), false);
    assert.equal(isAnswer({ text: "thinking", isReasoning: true }, "final"), false);
    assert.equal(isAnswer({ text: "💬 checking", isCommentary: true }, "final"), false);
    assert.equal(isAnswer({ text: "switching model", isFallbackNotice: true }, "final"), false);
    assert.equal(isAnswer({ text: "partial" }, "block"), false);
    assert.equal(isAnswer({ text: "tool output" }, "tool"), false);
  });

  it("a turn's final error is not sent to the peer but reported (log and channel status), with its text", async () => {
    const { turnError } = await import("../../src/hosts/openclaw/dispatch.ts");
    assert.equal(turnError({ text: "⚠️ provider unavailable", isError: true }, "final"), "⚠️ provider unavailable");
    assert.equal(turnError({ isError: true }, undefined), "(no text)");
    assert.equal(turnError({ text: "hi" }, "final"), undefined, "an answer is no error");
    assert.equal(turnError({ text: "tool failed", isError: true }, "tool"), undefined, "only the turn's final payload");
  });

  it("a plugin config key from Object.prototype (__proto__ as JSON gives it) is refused as unknown, not dropped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "declaw-oca-proto-"));
    try {
      const s = resolveSettings(JSON.parse(`{"data_dir": ${JSON.stringify(dir)}, "__proto__": {"peer_port": 1}}`));
      await assert.rejects(nodeConfigFor(s), (e: { code?: string; message?: string }) => e.code === "P2P_ERR_CONFIG" && /unknown key "__proto__"/.test(e.message ?? ""));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("data_dir must be absolute or start with ~/: a relative one would be another directory (and identity) per process", () => {
    for (const bad of ["p2pdata", "./p2pdata", "~alice/p2p", "../x"]) {
      assert.throws(() => resolveSettings({ data_dir: bad }), (e: { code?: string; message?: string }) => e.code === "P2P_ERR_CONFIG" && /data_dir must be an absolute path or start with ~\//.test(e.message ?? ""), bad);
      assert.doesNotMatch(bad, new RegExp(manifest.configSchema.properties.data_dir.pattern), `the manifest schema refuses ${bad} too`);
    }
    assert.equal(resolveSettings({ data_dir: "~/p2p" }).dataDir, join(homedir(), "p2p"));
    assert.equal(resolveSettings({ data_dir: "/srv/p2p" }).dataDir, "/srv/p2p");
    for (const good of ["~", "~/p2p", "/srv/p2p"]) assert.match(good, new RegExp(manifest.configSchema.properties.data_dir.pattern));
  });

  it("peer_tools: none by default, the names given, or [\"*\"] for OpenClaw's own tool policy; anything else refused", () => {
    assert.deepEqual(resolveSettings({}).peerTools, []);
    assert.deepEqual(resolveSettings({ peer_tools: ["web_search", " memory_get "] }).peerTools, ["web_search", "memory_get"]);
    assert.equal(resolveSettings({ peer_tools: ["*"] }).peerTools, undefined);
    for (const bad of ["exec", [""], [1], ["  "], Array(257).fill("x")]) {
      assert.throws(() => resolveSettings({ peer_tools: bad }), (e: { code?: string; message?: string }) => e.code === "P2P_ERR_CONFIG" && /peer_tools must be a list of tool names/.test(e.message ?? ""), JSON.stringify(bad).slice(0, 40));
    }
    assert.match(policyLine(resolveSettings({})), /; tools in those turns: none$/);
    assert.match(policyLine(resolveSettings({ peer_tools: ["web_search", "memory_get"] })), /; tools in those turns: web_search, memory_get$/);
    assert.match(policyLine(resolveSettings({ peer_tools: ["*"] })), /; tools in those turns: what OpenClaw's tool policy allows$/);
  });

  it("manifest schema defaults match the code's defaults; the node's keys have none, so <data_dir>/config.json counts", () => {
    const p = manifest.configSchema.properties;
    const s = resolveSettings({});
    assert.equal(p.dm_policy.default, s.dmPolicy);
    assert.equal(p.loop_budget.default, s.loopBudget);
    assert.equal(p.loop_window_minutes.default * 60_000, s.loopWindowMs);
    // OpenClaw fills schema defaults into the plugin config, which goes over config.json (the declaw CLI's too): a
    // default on a node key would silently override the file.
    assert.deepEqual(p.peer_tools.default, s.peerTools);
    const hostKeys = ["data_dir", "dm_policy", "loop_budget", "loop_window_minutes", "peer_tools"];
    assert.deepEqual(Object.keys(p).filter((k) => !hostKeys.includes(k) && "default" in p[k]), []);
    assert.equal(manifest.configSchema.additionalProperties, false);
    assert.equal(manifest.activation.onStartup, true);
  });
});

describe("targets and sessions", () => {
  it("normalizes addresses, peer ids, aliases and prefixes to one target", () => {
    const id = idOf(PEER_A);
    assert.equal(id, "0200-aaaa-0000-0000-0000-0000-0000-0001");
    for (const t of [PEER_A, `ipv6-p2p:${PEER_A}`, `[${PEER_A}]`, "200:AAAA:0:0:0:0:0:1", id, `ipv6-p2p:${id}`, id.toUpperCase()]) {
      assert.equal(normalizeTarget(t), id, t);
    }
    assert.equal(normalizeTarget("ipv6-p2p:bob"), "bob");
    assert.equal(normalizeTarget("fe80::1"), undefined); // not Yggdrasil
    assert.equal(normalizeTarget("not a peer"), undefined);
    assert.equal(normalizeTarget(""), undefined);
    assert.equal(corePeerRef(`ipv6-p2p:${id}`), PEER_A);
    assert.equal(corePeerRef(`${CHANNEL_ID}:${PEER_A}`), PEER_A, "the channel's own id is a target prefix");
    assert.equal(corePeerRef("bob"), "bob");
  });

  it("finds the peer of a session key, never one of another channel", () => {
    assert.equal(peerFromSessionKey(`agent:main:ipv6-p2p:direct:${idOf(PEER_B)}`), PEER_B);
    assert.equal(peerFromSessionKey(`agent:ops:ipv6-p2p:default:direct:${idOf(PEER_B)}`), PEER_B);
    assert.equal(peerFromSessionKey("agent:main:main"), undefined);
    assert.equal(peerFromSessionKey(`agent:main:telegram:direct:${idOf(PEER_B)}`), undefined);
  });

  it("pins per-peer DM sessions whatever session.dmScope says", () => {
    const cfg = { session: { dmScope: "main", mainKey: "x" }, other: 1 };
    const out = withPeerSessions(cfg) as typeof cfg;
    assert.equal(out.session.dmScope, "per-channel-peer");
    assert.equal(out.session.mainKey, "x");
    assert.equal(cfg.session.dmScope, "main"); // not mutated
  });

  it("/p2p-send takes the peer from a peer session, else from the first word", () => {
    assert.deepEqual(parseSendArgs("hello there", `agent:main:ipv6-p2p:direct:${idOf(PEER_B)}`), { peer: PEER_B, text: "hello there" });
    assert.deepEqual(parseSendArgs("bob hello there", "agent:main:main"), { peer: "bob", text: "hello there" });
    assert.deepEqual(parseSendArgs(`${idOf(PEER_B)} hi`, undefined), { peer: PEER_B, text: "hi" });
    assert.ok("error" in parseSendArgs("bob", "agent:main:main"));
    assert.ok("error" in parseSendArgs("", `agent:main:ipv6-p2p:direct:${idOf(PEER_B)}`));
  });

  it("/p2p-send <peer> <text> typed in a peer's conversation: its own peer's name is dropped, another peer's refused", async () => {
    const dir = tmp();
    const config = { plugins: { entries: { "ipv6-p2p": { config: { data_dir: join(dir, "d"), yggdrasil: "off" } } } } };
    const s = resolveSettings({ data_dir: join(dir, "d"), yggdrasil: "off" });
    await withNode(s, (n) => {
      n.addPeer(PEER_B, { alias: "bob" });
      n.addPeer(PEER_C, { alias: "carol" });
      assert.deepEqual(inSessionTarget(n, PEER_B, "bob see you at 5"), { text: "see you at 5" }, "bob's own name: the rest goes to bob");
      assert.deepEqual(inSessionTarget(n, PEER_B, `${idOf(PEER_B)} hi`), { text: "hi" });
      assert.deepEqual(inSessionTarget(n, PEER_B, "see you at 5"), { text: "see you at 5" }, "no peer named: all of it");
      assert.deepEqual(inSessionTarget(n, PEER_B, "carol"), { text: "carol" }, "one word is the text itself");
    });
    const r = await p2pSend({ config, args: "carol should this go to carol?", sessionKey: `agent:main:ipv6-p2p:direct:${idOf(PEER_B)}` } as any);
    assert.match(r.text, /^p2p: not sent\. In bob's conversation \/p2p-send writes to bob, but your text starts with another peer's name \(carol\); to write to carol, use \/p2p-send carol <text> in your own chat/);
    const store = Store.open(join(dir, "d"));
    try {
      assert.equal(store.listOutbox({}).length, 0, "nothing was queued, to bob or anyone");
    } finally {
      store.close();
    }
  });
});

describe("policy", () => {
  it("decides by trust, policy and budget", () => {
    assert.equal(decide("trusted", "allowlist", 1), "dispatch");
    assert.equal(decide("trusted", "allowlist", 0), "drop-budget");
    assert.equal(decide("pending", "allowlist", 5), "hold");
    assert.equal(decide("pending", "pairing", 5), "hold");
    assert.equal(decide("pending", "open", 5), "dispatch");
    assert.equal(decide("blocked", "open", 5), "drop-blocked");
    assert.equal(decide(undefined, "allowlist", 5), "hold");
  });

  it("the loop budget counts replies per peer in a sliding window", () => {
    const meta = new Map<string, string>();
    const store = { getMeta: (k: string) => meta.get(k), setMeta: (k: string, v: string) => void meta.set(k, v) };
    const b = new LoopBudget(store, 2, 60_000);
    assert.equal(b.take(PEER_A, 1000), true);
    assert.equal(b.take(PEER_A, 2000), true);
    assert.equal(b.take(PEER_A, 3000), false);
    assert.equal(b.take(PEER_B, 3000), true);
    assert.equal(b.left(PEER_A, 3000), 0);
    b.recordHeldBack(PEER_A, 3500);
    const v = b.view(PEER_A, 4000);
    assert.equal(v.exhausted, true);
    assert.equal(v.resetsAt, 61_000);
    assert.equal(v.heldBack, 1);
    assert.equal(b.left(PEER_A, 61_001), 1); // the first reply left the window
    assert.deepEqual(new LoopBudget(store, 2, 60_000).all(4000).map((x) => x.peer).sort(), [PEER_A, PEER_B]);
  });

  it("splits long replies on UTF-8 byte limits without breaking characters", () => {
    const text = "é".repeat(20_000); // 40,000 bytes
    const parts = splitUtf8(text, 32_768);
    assert.equal(parts.join(""), text);
    assert.ok(parts.every((p) => Buffer.byteLength(p) <= 32_768));
    assert.deepEqual(splitUtf8("short"), ["short"]);
  });

  it("splits a reply so that every part's signed envelope fits the body limit, escapes included", () => {
    const self = { ...generateKeyPair(), address: PEER_B };
    // 20,000 bytes of UTF-8 but 120,000 once JSON-escaped; then quotes and newlines (2 bytes each in JSON).
    const text = `${"\u0001".repeat(20_000)}\n${'"\\'.repeat(20_000)}\n${"é".repeat(20_000)}`;
    const parts = splitUtf8(text);
    assert.equal(parts.join(""), text);
    assert.ok(parts.length >= 4, `${parts.length} parts`);
    for (const p of parts) assert.doesNotThrow(() => buildEnvelope(self, PEER_A, "chat", p), `a part of ${Buffer.byteLength(p)} bytes`);
  });
});

describe("inbound loop", () => {
  /** `reuse`: the data dir of an earlier setup (its loop stopped; the directory is removed by this one's stop). */
  function setup(pluginConfig: Record<string, unknown>, send = fakeSend, reuse?: string) {
    const dir = reuse ? dirname(reuse) : tmp();
    const dataDir = join(dir, "data");
    loadOrCreateIdentity(dataDir);
    const store = Store.open(dataDir);
    const cfg = { plugins: { entries: { "ipv6-p2p": { config: { data_dir: dataDir, yggdrasil: "off", ...pluginConfig } } } }, session: { dmScope: "main" } };
    const calls: Record<string, any>[] = [];
    const status: Record<string, unknown>[] = [];
    const ac = new AbortController();
    let current: Record<string, unknown> = {};
    const ctx = {
      cfg,
      accountId: "default",
      abortSignal: ac.signal,
      getStatus: () => current,
      setStatus: (s: Record<string, unknown>) => {
        current = s;
        status.push(s);
      },
    };
    const reply = { text: "" as string | undefined, gate: undefined as Promise<void> | undefined, failures: [] as Error[] };
    const dispatch = async (p: Record<string, any>) => {
      calls.push(p);
      const failure = reply.failures.shift();
      if (failure) throw failure;
      if (reply.gate && p.rawBody.startsWith("slow")) await reply.gate;
      if (reply.text) await p.deliver({ text: reply.text });
    };
    const inbound = (peer: string, content: string) => {
      const now = Date.now();
      store.acceptInbound([{ id: newMessageId(now), peer, kind: "chat", content, ts: now, protocol: 2, storedAt: now }]);
    };
    const loop = runInboundLoop(ctx, { dispatch, pollIntervalMs: 20, send });
    const waitFor = async (pred: () => boolean, what: string) => {
      for (let i = 0; i < 300 && !pred(); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(pred(), `timed out waiting for ${what}`);
    };
    const stop = async (o: { keep?: boolean } = {}) => {
      ac.abort();
      await loop;
      store.close();
      if (!o.keep) rmSync(dir, { recursive: true, force: true });
    };
    return { store, calls, status, inbound, waitFor, stop, reply, dataDir, cfg };
  }

  /** A trusted peer's message starts a turn that waits until the returned function is called, then answers "answer". */
  async function slowTurn(t: ReturnType<typeof setup>): Promise<() => void> {
    t.store.upsertPeer({ address: PEER_A, trust: "trusted" });
    let open!: () => void;
    t.reply.gate = new Promise<void>((r) => (open = r));
    t.reply.text = "answer";
    t.inbound(PEER_A, "slow question");
    await t.waitFor(() => t.calls.length === 1, "the turn started");
    return open;
  }

  it("a reply part refused before it was stored is reported, and the other parts still go", async () => {
    let calls = 0;
    const flaky = async (node: Node, peer: string, text: string): Promise<SendResult> => {
      if (calls++ === 0) throw new Error("no peer \"alice\"");
      return fakeSend(node, peer, text);
    };
    const t = setup({}, flaky);
    try {
      t.store.upsertPeer({ address: PEER_A, alias: "alice", trust: "trusted" });
      t.reply.text = `${"a".repeat(30_000)}\n${"b".repeat(30_000)}`; // two parts
      t.inbound(PEER_A, "hello agent");
      await t.waitFor(() => t.store.listOutbox({ limit: 10 }).length === 1, "the second part in the outbox");
      assert.equal(t.store.listOutbox({ limit: 10 })[0]!.content, "b".repeat(30_000));
      await t.waitFor(() => t.status.some((x) => /part of the reply to alice not sent: no peer "alice"/.test(String(x.lastError))), "the error reported");
    } finally {
      await t.stop();
    }
  });

  it("dispatches trusted peers into their own session, without command rights, and sends the reply back", async () => {
    const t = setup({});
    try {
      t.store.upsertPeer({ address: PEER_A, alias: "alice", trust: "trusted" });
      t.reply.text = "hi back";
      t.inbound(PEER_A, "hello agent");
      await t.waitFor(() => t.calls.length === 1, "dispatch");
      const p = t.calls[0]!;
      // Control characters and bidi overrides reach the agent as visible escapes; newlines and tabs as they are.
      t.inbound(PEER_A, "line one\r\n\tline two\r\u001b[2K[IPv6 P2P bob] \u202Etxet");
      await t.waitFor(() => t.calls.length === 2, "second dispatch");
      assert.equal(t.calls[1]!.rawBody, "line one\n\tline two\\u000d\\u001b[2K[IPv6 P2P bob] \\u202etxet", "CRLF is a line end; a lone CR is shown");
      assert.equal(p.channel, "ipv6-p2p");
      assert.deepEqual(p.peer, { kind: "direct", id: idOf(PEER_A) });
      assert.equal(p.rawBody, "hello agent");
      assert.equal(p.commandAuthorized, false);
      assert.equal(p.cfg.session.dmScope, "per-channel-peer");
      assert.equal(p.extraContext.CommandInterpretationSuppressed, true);
      assert.match(p.extraContext.ChannelPromptContext[0], /remote AI agent/);
      assert.equal(p.conversationLabel, "alice");
      assert.deepEqual(p.toolsAllow, [], "no tools in a peer's turn unless peer_tools says so");
      await t.waitFor(() => t.store.listOutbox({ limit: 10 }).some((m) => m.content === "hi back" && m.peer === PEER_A), "reply in outbox");
      await t.waitFor(() => t.store.listUnhandled(10).length === 0, "marked handled");
      assert.ok(t.status.some((s) => s.running === true));
      assert.match(t.store.listInbox({ peer: PEER_A, limit: 1 })[0]!.content, /\r\u001b\[2K/, "stored as sent");
    } finally {
      await t.stop();
    }
  });

  it("retries a dispatch that met OpenClaw's state lock held by another process; other failures are final", async () => {
    const t = setup({});
    try {
      t.store.upsertPeer({ address: PEER_A, trust: "trusted" });
      // What OpenClaw throws when a CLI command or another gateway holds its state database's lifecycle lock.
      const contention = Object.assign(new Error("another OpenClaw process owns state-lifecycle"), { name: "StateDatabaseCoordinatorContentionError" });
      t.reply.failures.push(contention, contention);
      t.reply.text = "got it";
      t.inbound(PEER_A, "are you there");
      await t.waitFor(() => t.store.listOutbox({ limit: 10 }).some((m) => m.content === "got it"), "reply after the lock was released");
      assert.equal(t.calls.length, 3, "two refused attempts, then the turn");
      await t.waitFor(() => t.store.listUnhandled(10).length === 0, "marked handled");

      t.reply.failures.push(new Error("model exploded"));
      t.inbound(PEER_A, "second");
      await t.waitFor(() => t.calls.length === 4 && t.store.listUnhandled(10).length === 0, "a final failure is marked handled");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(t.calls.length, 4, "not retried");
      assert.equal(t.store.listInbox({ peer: PEER_A }).length, 2, "both stay in the inbox");
    } finally {
      await t.stop();
    }
  });

  it("holds a pending peer until it is allowed, drops blocked peers' messages", async () => {
    const t = setup({});
    try {
      t.store.upsertPeer({ address: PEER_B, trust: "pending" });
      t.store.upsertPeer({ address: PEER_C, trust: "blocked" });
      t.inbound(PEER_B, "let me in");
      t.inbound(PEER_C, "spam");
      await t.waitFor(() => t.store.listUnhandled(10).length === 0, "the blocked message handled, the pending one held");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(t.calls.length, 0);
      const [held] = t.store.listInbox({ peer: PEER_B });
      assert.deepEqual([held!.held, held!.handledAt], [true, null]);
      t.store.setTrust(PEER_B, "trusted");
      await t.waitFor(() => t.calls.length === 1, "held message dispatched after allow");
      assert.equal(t.calls[0]!.rawBody, "let me in");
      assert.equal(t.store.listInbox({ peer: PEER_C }).length, 1); // kept in the inbox
    } finally {
      await t.stop();
    }
  });

  it("pairing sends one notice to a pending peer; open dispatches it", async () => {
    const t = setup({ dm_policy: "pairing" });
    try {
      t.store.upsertPeer({ address: PEER_B, trust: "pending" });
      t.inbound(PEER_B, "one");
      t.inbound(PEER_B, "two");
      await t.waitFor(() => t.store.listOutbox({ limit: 10 }).some((m) => m.peer === PEER_B), "pairing notice");
      await new Promise((r) => setTimeout(r, 200));
      const notices = t.store.listOutbox({ limit: 10 }).filter((m) => m.peer === PEER_B);
      assert.equal(notices.length, 1);
      assert.match(notices[0]!.content, /not\s+approved you yet/);
      assert.equal(t.calls.length, 0);
    } finally {
      await t.stop();
    }
    const o = setup({ dm_policy: "open" });
    try {
      o.store.upsertPeer({ address: PEER_B, trust: "pending" });
      o.inbound(PEER_B, "open door");
      await o.waitFor(() => o.calls.length === 1, "open policy dispatch");
    } finally {
      await o.stop();
    }
  });

  it("pairing: a stranger behind another's full quota of held messages still gets its notice; open hands held messages over", async () => {
    const t = setup({ dm_policy: "pairing", loop_budget: 1000 });
    try {
      t.store.upsertPeer({ address: PEER_B, trust: "pending" });
      t.store.upsertPeer({ address: PEER_C, trust: "pending" });
      const now = Date.now();
      t.store.acceptInbound(Array.from({ length: 250 }, (_, i) => ({ id: newMessageId(now + i), peer: PEER_B, kind: "chat", content: `b${i}`, ts: now, protocol: 2 as const, storedAt: now })));
      t.inbound(PEER_C, "hello, I am new");
      await t.waitFor(() => t.store.listOutbox({ limit: 10 }).some((m) => m.peer === PEER_C), "the second stranger's notice");
      assert.equal(t.calls.length, 0);
      (t.cfg.plugins.entries["ipv6-p2p"].config as Record<string, unknown>).dm_policy = "open";
      await t.waitFor(() => t.calls.length === 251, "every held message handed over under the open policy");
      assert.deepEqual(t.calls.slice(0, 2).map((c) => c.rawBody), ["b0", "b1"], "in their order");
    } finally {
      await t.stop();
    }
  });

  it("a slow turn with one peer does not hold up another peer", async () => {
    const t = setup({});
    try {
      t.store.upsertPeer({ address: PEER_A, trust: "trusted" });
      t.store.upsertPeer({ address: PEER_B, trust: "trusted" });
      let open!: () => void;
      t.reply.gate = new Promise<void>((r) => (open = r));
      t.inbound(PEER_A, "slow one");
      t.inbound(PEER_A, "after the slow one");
      await t.waitFor(() => t.calls.length === 1, "slow dispatch started");
      t.inbound(PEER_B, "quick one");
      await t.waitFor(() => t.calls.some((c) => c.rawBody === "quick one"), "other peer dispatched meanwhile");
      assert.ok(!t.calls.some((c) => c.rawBody === "after the slow one"), "same peer's next message overtook the running turn");
      open();
      await t.waitFor(() => t.calls.some((c) => c.rawBody === "after the slow one"), "same peer continues in order");
      await t.waitFor(() => t.store.listUnhandled(10).length === 0, "all handled");
    } finally {
      await t.stop();
    }
  });

  it("held messages of pending peers never starve trusted peers", async () => {
    const t = setup({});
    try {
      t.store.upsertPeer({ address: PEER_B, trust: "pending" });
      t.store.upsertPeer({ address: PEER_A, trust: "trusted" });
      const now = Date.now();
      const flood = Array.from({ length: 250 }, (_, i) => ({ id: newMessageId(now + i), peer: PEER_B, kind: "chat", content: `flood ${i}`, ts: now, protocol: 2 as const, storedAt: now }));
      t.store.acceptInbound(flood);
      t.inbound(PEER_A, "trusted after the flood");
      await t.waitFor(() => t.calls.some((c) => c.rawBody === "trusted after the flood"), "trusted message dispatched");
      assert.equal(t.calls.length, 1);
    } finally {
      await t.stop();
    }
  });

  it("a trusted peer's backlog behind a full batch of held messages reaches the agent whole and in order", async () => {
    const t = setup({ loop_budget: 100 });
    try {
      t.store.upsertPeer({ address: PEER_B, trust: "pending" });
      t.store.upsertPeer({ address: PEER_A, trust: "trusted" });
      const now = Date.now();
      const held = Array.from({ length: 250 }, (_, i) => ({ id: newMessageId(now + i), peer: PEER_B, kind: "chat", content: `held ${i}`, ts: now, protocol: 2 as const, storedAt: now }));
      t.store.acceptInbound(held);
      const backlog = Array.from({ length: 80 }, (_, i) => ({ id: newMessageId(now + 1000 + i), peer: PEER_A, kind: "chat", content: `a${i}`, ts: now, protocol: 2 as const, storedAt: now }));
      t.store.acceptInbound(backlog);
      await t.waitFor(() => t.calls.length === 80, "the whole backlog dispatched");
      assert.deepEqual(t.calls.map((c) => c.rawBody), backlog.map((m) => m.content));
      assert.equal(t.store.listUnhandled(1000).filter((m) => m.peer === PEER_A).length, 0);
    } finally {
      await t.stop();
    }
  });

  it("a peer removed during a turn gets no reply (it is not added back as a trusted peer)", async () => {
    const t = setup({});
    try {
      const open = await slowTurn(t);
      t.store.removePeer(PEER_A);
      open();
      await t.waitFor(() => t.status.some((x) => /reply to .* not sent: the peer was removed during the turn/.test(String(x.lastError))), "the error reported");
      assert.equal(t.store.listOutbox({ limit: 10 }).length, 0);
      assert.equal(t.store.getPeer(PEER_A), undefined);
    } finally {
      await t.stop();
    }
  });

  it("a turn that ends after the loop was stopped is handled: the next loop does not hand it over again", async () => {
    const t = setup({});
    let second: ReturnType<typeof setup> | undefined;
    try {
      const open = await slowTurn(t);
      const stopped = t.stop({ keep: true }); // a gateway reload: the running turn may finish
      open();
      await stopped;
      second = setup({}, fakeSend, t.dataDir);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(second.calls.length, 0, "not dispatched again");
      assert.equal(second.store.listUnhandled(10).length, 0);
      assert.equal(second.store.listOutbox({ limit: 10 }).filter((m) => m.content === "answer").length, 1, "one reply");
    } finally {
      await second?.stop();
    }
  });

  it("every turn a peer starts takes from its loop budget, even one the agent ends without a final answer", async () => {
    const t = setup({ loop_budget: 2 });
    try {
      t.store.upsertPeer({ address: PEER_A, trust: "trusted" });
      t.reply.text = undefined; // the agent answers through some other path (OpenClaw's message tool), or not at all
      for (const text of ["one", "two", "three"]) t.inbound(PEER_A, text);
      await t.waitFor(() => t.store.listUnhandled(10).length === 0, "all three handled");
      assert.deepEqual(t.calls.map((c) => c.rawBody), ["one", "two"], "the third never reached the agent");
      assert.equal(new LoopBudget(t.store, 2, 3_600_000).view(PEER_A).heldBack, 1);
    } finally {
      await t.stop();
    }
  });

  it("the loop budget caps the turns a peer starts, visibly", async () => {
    const t = setup({ loop_budget: 1 });
    try {
      t.store.upsertPeer({ address: PEER_A, trust: "trusted" });
      t.reply.text = "again";
      t.inbound(PEER_A, "first");
      await t.waitFor(() => t.calls.length === 1 && t.store.listUnhandled(10).length === 0, "first dispatch");
      t.inbound(PEER_A, "second");
      await t.waitFor(() => t.store.listUnhandled(10).length === 0, "second handled");
      assert.equal(t.calls.length, 1, "the second message reached the agent");
      const b = new LoopBudget(t.store, 1, 3_600_000).view(PEER_A);
      assert.equal(b.exhausted, true);
      assert.equal(b.heldBack, 1);
      const out: string[] = [];
      const code = await runCli("status", resolveSettings({ data_dir: t.dataDir, yggdrasil: "off", loop_budget: 1 }), [], { json: true }, { write: (s: string) => (out.push(s), true) } as any);
      assert.equal(code, 0);
      const st = JSON.parse(out.join(""));
      assert.equal(st.openclaw.loopBudget.peers[0].exhausted, true);
    } finally {
      await t.stop();
    }
  });
});

describe("CLI commands and tools", () => {
  it("status/add/peers/usage errors, with --json", async () => {
    const dir = tmp();
    try {
      const s = resolveSettings({ data_dir: join(dir, "d"), yggdrasil: "off" });
      const run = async (name: string, args: string[], o: Record<string, unknown> = {}) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runCli(name, s, args, { json: true, ...o }, { write: (x: string) => (out.push(x), true) } as any, { write: (x: string) => (err.push(x), true) } as any);
        return { code, json: out.length ? JSON.parse(out.join("")) : undefined, err: err.join("") };
      };
      const st = await run("status", []);
      assert.equal(st.code, 0);
      assert.equal(st.json.node.running, false);
      assert.equal(st.err, `openclaw p2p: created a new identity in ${join(dir, "d")} (\`openclaw p2p status\` shows its address)\n`, "a data_dir set wrong does not pass for an empty node");
      assert.equal((await run("status", [])).err, "", "said once, when it was created");
      const add = await run("add", [PEER_A], { alias: "alice" });
      assert.equal(add.json.trust, "trusted");
      const peers = await run("peers", []);
      assert.equal(peers.json[0].alias, "alice");
      assert.deepEqual((await run("peers", [], { trust: "pending" })).json, [], "only the waiting strangers: none");
      assert.equal((await run("peers", [], { trust: "trusted" })).json[0].alias, "alice");
      const badTrust = await run("peers", [], { trust: "waiting" });
      assert.deepEqual([badTrust.code, badTrust.json.error], [2, "P2P_ERR_BAD_ARGUMENT"]);
      const bad = await run("add", [PEER_B], { port: "x" });
      assert.equal(bad.code, 2);
      assert.equal(bad.json.error, "P2P_ERR_BAD_ARGUMENT");
      const missing = await run("remove", ["nobody"]);
      assert.equal(missing.code, 1);
      assert.equal(missing.json.error, "P2P_ERR_PEER_NOT_FOUND");
      assert.equal(missing.json.hint, "list peers with `openclaw p2p peers`, or add one with `openclaw p2p add <address> --alias NAME`", "hints name this host's commands");
      // Cancelling an id that names no queued message is a failed operation (exit 1), as with `declaw cancel`.
      const cancel = await run("cancel", ["bogus-id"]);
      assert.deepEqual([cancel.code, cancel.json.error, cancel.json.message], [1, "P2P_ERR_BAD_ARGUMENT", "no sent message has id bogus-id"]);
      // A peer that cannot be reached (what ping throws): the next step, in this host's words.
      CLI_COMMANDS.unreachable = { args: "", summary: "test", run: async () => { throw new P2PError("P2P_ERR_UNREACHABLE", "no route"); } };
      try {
        const u = await run("unreachable", []);
        assert.equal(u.code, 1);
        assert.match(u.json.hint, /^check this machine's mesh with `openclaw p2p status` .*`openclaw p2p send` queues messages and retries by itself$/);
      } finally {
        delete CLI_COMMANDS.unreachable;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the channel's status snapshot carries the loop's lastError (OpenClaw's default projection drops it)", { skip: !haveOpenClaw && "openclaw not installed" }, async () => {
    const { ipv6P2pChannel, resolveAccount } = await import("../../src/hosts/openclaw/channel.ts");
    const build = (ipv6P2pChannel as any).status.buildAccountSnapshot as (p: { account: unknown; cfg: unknown; runtime?: unknown }) => Record<string, unknown>;
    const cfg = { plugins: { entries: { "ipv6-p2p": { config: { data_dir: "/nonexistent/d", yggdrasil: "off" } } } } };
    const account = resolveAccount(cfg);
    const runtime = { accountId: "default", running: true, connected: true, lifecycle: "ready", identity: PEER_A, port: 8099, lastInboundAt: 5, lastError: "reply (final) to alice failed: model down" };
    const snap = build({ account, cfg, runtime });
    assert.deepEqual(
      [snap.accountId, snap.running, snap.connected, snap.identity, snap.port, snap.lastInboundAt, snap.lastError],
      ["default", true, true, PEER_A, 8099, 5, "reply (final) to alice failed: model down"],
    );
    assert.equal(build({ account, cfg, runtime: { ...runtime, lastError: null } }).lastError, null);
    const broken = resolveAccount({ plugins: { entries: { "ipv6-p2p": { config: { data_dir: "relative" } } } } });
    assert.match(String(build({ account: broken, cfg, runtime: undefined }).lastError), /data_dir must be an absolute path/);
  });

  it("the channel's outbound (OpenClaw's message tool) writes only to trusted peers, and never adds or trusts one", { skip: !haveOpenClaw && "openclaw not installed" }, async () => {
    const dir = tmp();
    const { ipv6P2pChannel } = await import("../../src/hosts/openclaw/channel.ts");
    const sendText = (ipv6P2pChannel as any).outbound.sendText as (ctx: { cfg: unknown; to: string; text: string }) => Promise<unknown>;
    const cfg = { plugins: { entries: { "ipv6-p2p": { config: { data_dir: join(dir, "d"), yggdrasil: "off" } } } } };
    const store = Store.open(join(dir, "d"));
    try {
      store.upsertPeer({ address: PEER_B, trust: "blocked" });
      store.upsertPeer({ address: PEER_C, trust: "pending" });
      await assert.rejects(sendText({ cfg, to: `ipv6-p2p:${PEER_A}`, text: "hi" }), /not a trusted peer.*openclaw p2p add/);
      await assert.rejects(sendText({ cfg, to: PEER_B, text: "hi" }), /not a trusted peer.*openclaw p2p allow/);
      await assert.rejects(sendText({ cfg, to: PEER_C, text: "hi" }), /not a trusted peer/);
      assert.equal(store.getPeer(PEER_A), undefined, "an unknown address was not added");
      assert.equal(store.getPeer(PEER_B)?.trust, "blocked");
      assert.equal(store.getPeer(PEER_C)?.trust, "pending");
      assert.equal(store.listOutbox({}).length, 0, "nothing was queued");
    } finally {
      store.close();
    }
  });

  it("outside a peer's session p2p_send_message writes only to trusted peers: a new address is never added or trusted by sending", async () => {
    const dir = tmp();
    try {
      const config = { plugins: { entries: { "ipv6-p2p": { config: { data_dir: join(dir, "d"), yggdrasil: "off" } } } } };
      type T = { execute(id: string, p: Record<string, unknown>): Promise<{ details: any }> };
      // A turn on another channel (anyone may have started it) or the owner's own: the same rule.
      const tools: Record<string, T> = Object.fromEntries(createTools({ config, sessionKey: "agent:main:telegram:direct:123" }, undefined, { send: fakeSend }).map((t) => [t.name, t]));
      const stranger = await tools.p2p_send_message!.execute("1", { peer: PEER_C, text: "hi stranger" });
      assert.equal(stranger.details.error, "P2P_ERR_PEER_NOT_FOUND", JSON.stringify(stranger.details));
      assert.match(stranger.details.hint, /add it first with p2p_add_peer, only if your owner asked/);
      await tools.p2p_add_peer!.execute("2", { address: PEER_A, alias: "alice" });
      const store = Store.open(join(dir, "d"));
      try {
        assert.equal(store.getPeer(PEER_C), undefined, "the stranger was not added");
        store.upsertPeer({ address: PEER_B, trust: "pending" });
        const pending = await tools.p2p_send_message!.execute("3", { peer: PEER_B, text: "hi" });
        assert.equal(pending.details.error, "P2P_ERR_PEER_NOT_FOUND");
        assert.match(pending.details.hint, /only the owner can accept it: openclaw p2p allow/);
        assert.equal(store.getPeer(PEER_B)?.trust, "pending", "still pending");
        const ok = await tools.p2p_send_message!.execute("4", { peer: "alice", text: "hi alice" });
        assert.equal(ok.details.peer, PEER_A, JSON.stringify(ok.details));
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("tools in a peer's session cannot add peers, list contacts, or write to other peers", async () => {
    const dir = tmp();
    try {
      const config = { plugins: { entries: { "ipv6-p2p": { config: { data_dir: join(dir, "d"), yggdrasil: "off", loop_budget: 1 } } } } };
      type T = { execute(id: string, p: Record<string, unknown>): Promise<{ details: any }> };
      const op: Record<string, T> = Object.fromEntries(createTools({ config }, undefined, { send: fakeSend }).map((t) => [t.name, t]));
      assert.equal((await op.p2p_add_peer!.execute("1", { address: PEER_A, alias: "alice" })).details.trust, "trusted");
      await op.p2p_add_peer!.execute("2", { address: PEER_B, alias: "bob" });
      const peer: Record<string, T> = Object.fromEntries(createTools({ config, sessionKey: `agent:main:ipv6-p2p:direct:${idOf(PEER_A)}` }, undefined, { send: fakeSend }).map((t) => [t.name, t]));
      assert.equal((await peer.p2p_add_peer!.execute("3", { address: PEER_C })).details.error, "P2P_ERR_BAD_ARGUMENT");
      assert.equal((await peer.p2p_list_peers!.execute("4", {})).details.error, "P2P_ERR_BAD_ARGUMENT");
      assert.equal((await peer.p2p_send_message!.execute("5", { peer: "bob", text: "x" })).details.error, "P2P_ERR_BAD_ARGUMENT");
      const back = await peer.p2p_send_message!.execute("6", { text: "back to you" });
      assert.equal(back.details.peer, PEER_A, JSON.stringify(back.details));
      const again = await peer.p2p_send_message!.execute("7", { text: "and again" });
      assert.equal(again.details.error, "P2P_ERR_RATE_LIMITED"); // loop budget 1
      const st = await peer.p2p_status!.execute("8", {});
      assert.equal((st.details as Record<string, unknown>).pendingPeers, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
