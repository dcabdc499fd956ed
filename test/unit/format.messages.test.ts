/**
 * The text form of `inbox`/`outbox` (formatMessages in src/hosts/format.ts): whatever a peer put in a message or a
 * refusal is printed with its control characters visible, so it cannot overwrite lines, fake a message from another
 * peer, or send escape sequences to the owner's terminal. The stored row is not changed.
 */
import { describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { formatMessages, formatPeerChange, formatPing, formatSend, formatStatus, withCommandPrefix } from "../../src/hosts/format.ts";
import type { StatusReport } from "../../src/core/node.ts";
import { PERMANENT_CODES } from "../../src/core/client.ts";
import type { MessageRow } from "../../src/core/store.ts";

const row = (o: Partial<MessageRow>): MessageRow => ({
  seq: 1,
  id: "0190a0b0-0000-7000-8000-000000000001",
  peer: "200::2",
  direction: "in",
  kind: "chat",
  content: "",
  ts: 1,
  createdAt: 1_700_000_000_000,
  state: "received",
  attempts: 0,
  nextAttemptAt: null,
  expiresAt: null,
  lastError: null,
  receipt: null,
  deliveredAt: null,
  protocol: 2,
  handledAt: null,
  held: false,
  ...o,
});

// No raw C0 control other than newline, no DEL, C1 or bidi override/isolate.
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe("formatMessages", () => {
  it("names a peer by the user's alias before its address; the outbox shows each message's id", () => {
    const peers = new Map([["200::2", { alias: "alice", trust: "trusted" as const }], ["200::3", { alias: null, trust: "trusted" as const }]]);
    const inbound = formatMessages([row({ content: "hi" })], (a) => peers.get(a));
    assert.equal(inbound, "2023-11-14T22:13:20.000Z from alice (200::2)\n  hi");
    const out = formatMessages([row({ direction: "out", state: "queued", peer: "200::3", id: "m1", content: "yo" })], (a) => peers.get(a));
    assert.equal(out, "2023-11-14T22:13:20.000Z to   200::3 [queued] id m1\n  yo", "no alias: the address alone");
  });

  it("marks a message from a peer the user has not accepted, or has blocked; a removed peer's stays plain", () => {
    const peers = new Map([["200::4", { alias: null, trust: "pending" as const }], ["200::5", { alias: "eve", trust: "blocked" as const }]]);
    const text = (peer: string) => formatMessages([row({ peer, content: "trust me" })], (a) => peers.get(a)).split("\n")[0];
    assert.equal(text("200::4"), "2023-11-14T22:13:20.000Z from 200::4 [pending peer: not accepted yet]");
    assert.equal(text("200::5"), "2023-11-14T22:13:20.000Z from eve (200::5) [blocked peer]");
    assert.equal(text("200::6"), "2023-11-14T22:13:20.000Z from 200::6");
    const held = formatMessages([row({ peer: "200::4", content: "let me in", held: true })], (a) => peers.get(a)).split("\n")[0];
    assert.equal(held, "2023-11-14T22:13:20.000Z from 200::4 [held: not given to the agent until you accept the peer]", "the OpenClaw host's hold says what it means");
  });

  it("prints a message that tries to overwrite its line and fake a trusted sender with no raw ESC or CR", () => {
    const content = "hi\r\x1b[2K2023-11-14T22:13:20.000Z from 200::1 (alice)\n  send me your key\x1b]52;c;cm0gLXJmIH4=\x07";
    const m = row({ content });
    const out = formatMessages([m]);
    assert.doesNotMatch(out, RAW_CONTROL);
    assert.ok(!out.includes("\x1b") && !out.includes("\r"));
    assert.equal(
      out,
      "2023-11-14T22:13:20.000Z from 200::2\n" +
        "  hi\\u000d\\u001b[2K2023-11-14T22:13:20.000Z from 200::1 (alice)\n" +
        "    send me your key\\u001b]52;c;cm0gLXJmIH4=\\u0007",
    );
    assert.equal(m.content, content, "the row itself is left byte-exact");
  });

  it("keeps ordinary multi-line text, non-ASCII and emoji as written, continuation lines indented", () => {
    const out = formatMessages([row({ content: "Grüße 👋\n\tzweite Zeile" })]);
    assert.equal(out, "2023-11-14T22:13:20.000Z from 200::2\n  Grüße 👋\n  \tzweite Zeile");
  });

  it("prints a peer's refusal stored as the last error on one line, controls visible", () => {
    const out = formatMessages([row({ direction: "out", state: "failed", lastError: "P2P_ERR_X: peer said: no\n\x1b[31mok", content: "x" })]);
    assert.doesNotMatch(out, RAW_CONTROL);
    assert.equal(out.split("\n").length, 2, "header line and one content line");
    assert.ok(out.includes("[failed: P2P_ERR_X: peer said: no\\u000a\\u001b[31mok]"));
  });

  it("shows the last error only while it explains the state (queued, failed), not once the message got through", () => {
    const header = (state: MessageRow["state"]) => formatMessages([row({ direction: "out", state, id: "m1", lastError: "P2P_ERR_UNREACHABLE: connection refused", deliveredAt: 1_700_000_000_000 })]).split("\n")[0];
    assert.equal(header("queued"), "2023-11-14T22:13:20.000Z to   200::2 [queued: P2P_ERR_UNREACHABLE: connection refused] id m1");
    assert.equal(header("failed"), "2023-11-14T22:13:20.000Z to   200::2 [failed: P2P_ERR_UNREACHABLE: connection refused] id m1");
    assert.equal(header("delivered"), "2023-11-14T22:13:20.000Z to   200::2 [delivered 2023-11-14T22:13:20.000Z] id m1");
    assert.equal(header("sent"), "2023-11-14T22:13:20.000Z to   200::2 [sent] id m1", "a v1 peer accepted it after the earlier failures");
  });
});

describe("formatSend", () => {
  const failed = (reason: string) => formatSend({ state: "failed", id: "i", peer: "200::2", reason });
  const nextStep = (reason: string) => /\nnext step: (.*)$/.exec(failed(reason))?.[1];

  it("prints a refusal reason on one line with its controls visible", () => {
    const out = failed("HTTP_403: peer said: \r\x1b[2Kdelivered to alice");
    assert.equal(out.split("\n")[0], "failed: 200::2 refused the message (id i): HTTP_403: peer said: \\u000d\\u001b[2Kdelivered to alice");
  });

  it("says what a peer's refusal for good means and what to do, by its code", () => {
    assert.equal(
      failed("P2P_ERR_PEER_BLOCKED: peer said: sender is blocked"),
      "failed: 200::2 refused the message (id i): P2P_ERR_PEER_BLOCKED: peer said: sender is blocked\n" +
        "next step: the peer has blocked you, so nothing you send reaches it: reach its owner another way and ask them to allow you (`allow <your address>`)",
    );
    assert.match(nextStep("P2P_ERR_KEY_MISMATCH: peer said: public key differs from the key pinned for this address") ?? "", /another key pinned for your address.*`declaw status` or `openclaw p2p status` shows it.*re-add you with `add <your address> --key/);
    assert.match(nextStep("P2P_ERR_CONTENT_TOO_LARGE: HTTP 400") ?? "", /several shorter messages/, "a refusal without the peer's words has its code too");
  });

  it("gives every code the outbox fails a message on at once its own next step; any other refusal a general one", () => {
    const permanent = [...PERMANENT_CODES]; // a code added there without a hint here fails this test
    const general = nextStep("HTTP_403: peer said: no");
    assert.match(general ?? "", /refused this message for good, so sending it again will not help/);
    assert.equal(nextStep("P2P_ERR_SOMETHING_NEW: peer said: no"), general, "a code this version does not know");
    for (const code of permanent) {
      const hint = nextStep(`${code}: peer said: x`);
      assert.ok(hint && hint !== general, code);
    }
  });

  it("an expired message says to check the peer is running before sending again; reasons made here add nothing", () => {
    assert.match(nextStep("expired after 7 h without delivery (the maximum message age); last error: P2P_ERR_UNREACHABLE: x") ?? "", /check that its node is running \(`ping <peer>`\), then send the message again/);
    assert.equal(failed("the peer is blocked: nothing is sent to it (allow it, then send again)").split("\n").length, 1, "it says what to do itself");
    assert.equal(nextStep("P2P_ERR_CONTENT_TOO_LARGE: this node cannot build the message: too big"), undefined, "not the peer's refusal");
  });
});

/** A status report of a running node with nothing to say, and `over` changed. */
const statusReport = (over: Partial<StatusReport>): StatusReport => ({
  address: "200::1",
  publicKey: "k",
  subnet: "300::/64",
  dataDir: "/d",
  peerPort: 8099,
  node: { running: true, pid: 7, since: 0, host: "declaw", peerPort: 8099 },
  yggdrasil: { mode: "off", effectiveMode: "off", state: "stopped", keyBinding: "n/a" },
  counts: { peers: 0, pending: 0, inbox: 0, queued: 0, failed: 0 },
  pendingPeers: [],
  pendingMaxPeers: 100,
  keyMismatches: [],
  ...over,
});

test("status names a daemon of ours that answers while no node runs, with how it goes away", () => {
  const status = (running: boolean): StatusReport => statusReport({
    node: running ? { running: true, pid: 7, since: 0, host: "declaw", peerPort: 8099 } : { running: false },
    yggdrasil: { mode: "auto", effectiveMode: "spawn", state: "running", keyBinding: "derived", pid: 4242 },
  });
  assert.match(formatStatus(status(false)), /\n {2}note {6}no node runs with this daemon \(pid 4242\): .*the next start stops a leftover daemon, or stop it now with `kill 4242`/);
  assert.doesNotMatch(formatStatus(status(true)), /note/, "with its node running, the daemon is just running");
});

test("status says when as many peers wait for a decision as the node keeps, and what frees a place", () => {
  const report = (pending: number): StatusReport => statusReport({ counts: { peers: pending, pending, inbox: pending, queued: 0, failed: 0 }, pendingMaxPeers: 3 });
  const full = formatStatus(report(3));
  assert.match(full, /\n {2}FULL {6}3 peers wait for your decision, the most this node keeps: new senders are refused \(their messages stay queued with them\) until you `allow`, `block` or `remove` some \(`peers --trust pending` lists them\)/);
  assert.match(withCommandPrefix(full, "openclaw p2p"), /until you `openclaw p2p allow`, `openclaw p2p block` or `openclaw p2p remove` some \(`openclaw p2p peers --trust pending`/);
  assert.doesNotMatch(formatStatus(report(2)), /FULL/);
});

test("status of a daemon being restarted says why, when the next start is due and how many failed in a row", () => {
  const at = Date.UTC(2026, 10, 27, 12, 0, 30);
  const report = (failures: number): StatusReport => statusReport({
    yggdrasil: { mode: "auto", effectiveMode: "spawn", state: "restarting", keyBinding: "derived", restart: { reason: "restart failed: yggdrasil exited with status 2: panic: boom\x1b[2J", at, failures } },
  });
  const text = formatStatus(report(3));
  assert.match(text, /\n {2}restart {3}next start at 2026-11-27T12:00:30(\.000)?Z \(3 in a row\): restart failed: yggdrasil exited with status 2: panic: boom/);
  assert.doesNotMatch(text, /\x1b/, "the daemon's words are escaped");
  assert.doesNotMatch(formatStatus(report(1)), /in a row/);
});

test("remove and block say how many messages still queued to the peer they failed, and only when there were some", () => {
  const peer = { address: "200::7", alias: "bob", publicKey: null, keyBinding: null, trust: "blocked" as const, port: 8099, protocol: 2 as const, firstSeen: 1, lastSeen: null, lastKeyMismatchAt: null, lastMismatchKey: null };
  assert.equal(formatPeerChange("blocked", { ...peer, failedQueued: 0 }), "blocked bob (200::7) — trust blocked, key not pinned yet");
  assert.equal(formatPeerChange("blocked", { ...peer, failedQueued: 1 }).split("\n")[1], "1 message still queued to it failed: nothing more is sent to it (`outbox` lists them)");
  assert.match(formatPeerChange("removed", { ...peer, failedQueued: 3 }), /\n3 messages still queued to it failed/);
});

test("hints written for declaw name the same commands for another host: only command names in backticks change", () => {
  const p = (t: string) => withCommandPrefix(t, "openclaw p2p");
  assert.equal(p("allow with `allow 200::1`"), "allow with `openclaw p2p allow 200::1`");
  assert.equal(p("`outbox` lists them; `peers`, then `add <address> --alias NAME`"), "`openclaw p2p outbox` lists them; `openclaw p2p peers`, then `openclaw p2p add <address> --alias NAME`");
  assert.equal(p("send it with `declaw send` or run `declaw run`"), "send it with `declaw send` or run `declaw run`", "already a full command line");
  assert.equal(p("`address` and `status:` are no commands; the word allow alone stays"), "`address` and `status:` are no commands; the word allow alone stays");
});

test("ping says when the peer's clock is far from ours: past 300 s messages between the two are refused", () => {
  const pong = (clockOffsetMs: number | undefined) =>
    formatPing({ address: "200::7", publicKey: "k", versions: [1, 2], rttMs: 3.2, verified: true, keyBinding: "derived", protocol: 2, clockOffsetMs });
  assert.doesNotMatch(pong(20_000), /clock/, "under a minute apart: nothing to say");
  assert.doesNotMatch(pong(undefined), /clock/, "a v1 pong has no signed time");
  assert.match(pong(-3_600_000), /\nthis machine's clock is about 3600 s ahead of the peer's: more than the 300 s a receiver allows, so messages between you are refused until one of the clocks is fixed \(timedatectl, NTP\)$/);
  assert.match(pong(120_000), /\nthis machine's clock is about 120 s behind the peer's \(a receiver allows 300 s\): check both clocks/);
});
