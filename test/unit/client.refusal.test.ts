/**
 * How the client reads a peer's refusal (src/core/client.ts): the `{error, message}` body is the peer's choice and
 * ends up in `send`/`outbox` output, slash-command replies and the agent's tool result. Its code is taken only when it
 * looks like one of ours (else `HTTP_<status>`), and its message is one line, controls made visible, marked as the
 * peer's words. A fake peer on ::1 answers every request with the body under test.
 */
import { after, before, describe, it, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { connectFailure, deliverV1, deliverV2, pingPeer, speaksOnlyV1, type Target } from "../../src/core/client.ts";
import { buildEnvelope, buildReceipt, type Envelope } from "../../src/core/wire.ts";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { encodeBase64 } from "../../src/core/encoding.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import type { V1Message } from "../../src/core/wire-v1.ts";

let answer = { status: 403, body: "" };
let server: Server;
let target: Target;

before(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(answer.status, { "Content-Type": "application/json", Connection: "close" }).end(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, "::1", resolve));
  target = { address: "::1", port: (server.address() as AddressInfo).port };
});
after(() => server.close());

// Refused before any receipt is looked at, so the envelope's contents do not matter here.
const env = { v: 2, id: "0190a0b0-0000-7000-8000-000000000001", from: "200::1", to: "200::2", key: "", ts: 0, kind: "chat", content: "x", sig: "" } as Envelope;

async function refusedWith(status: number, body: unknown) {
  answer = { status, body: typeof body === "string" ? body : JSON.stringify(body) };
  const d = await deliverV2(target, env, null);
  assert.equal(d.kind, "failed");
  return d as Extract<typeof d, { kind: "failed" }>;
}

describe("a peer's refusal", () => {
  it("keeps a well-formed code and marks the message as the peer's words", async () => {
    const d = await refusedWith(403, { error: "P2P_ERR_PEER_BLOCKED", message: "you are blocked" });
    assert.equal(d.code, "P2P_ERR_PEER_BLOCKED");
    assert.equal(d.reason, "P2P_ERR_PEER_BLOCKED: peer said: you are blocked");
  });

  it("replaces a code that is not [A-Z0-9_]{1,64} with HTTP_<status>", async () => {
    for (const error of ["\x1b[2KP2P_ERR_X", "p2p_err_x", "P2P ERR", "", "A".repeat(65)]) {
      const d = await refusedWith(403, { error, message: "no" });
      assert.equal(d.code, "HTTP_403", JSON.stringify(error));
      assert.equal(d.reason, "HTTP_403: peer said: no");
    }
  });

  it("shows controls, newlines and bidi overrides in the message as visible escapes, capped at 300 characters", async () => {
    const d = await refusedWith(403, { error: "P2P_ERR_PEER_BLOCKED", message: "no\r\x1b[2Kdelivered to alice\n\x1b]52;c;eA==\x07\u202e" });
    assert.equal(d.reason, "P2P_ERR_PEER_BLOCKED: peer said: no\\u000d\\u001b[2Kdelivered to alice\\u000a\\u001b]52;c;eA==\\u0007\\u202e");
    const long = await refusedWith(403, { error: "P2P_ERR_PEER_BLOCKED", message: "é".repeat(1000) });
    assert.equal(long.reason, `P2P_ERR_PEER_BLOCKED: peer said: ${"é".repeat(300)}`);
  });

  it("a sender mismatch (our message left from another address than ours) is retried, with where to look", async () => {
    answer = { status: 403, body: JSON.stringify({ error: "P2P_ERR_SENDER_MISMATCH", message: "from 200::1 does not match TCP source 200::9" }) };
    const d = await deliverV2(target, env, null);
    assert.equal(d.kind, "retry");
    assert.equal(d.kind === "retry" && d.code, "P2P_ERR_SENDER_MISMATCH");
    assert.match(d.kind === "retry" ? d.reason : "", /peer said: from 200::1 .* \(this machine sent it from another address than its own: is its Yggdrasil interface up/);
  });

  it("a stale timestamp is retried, saying the clocks differ and by how much when the peer says both times", async () => {
    const stale = async (message: string) => {
      answer = { status: 403, body: JSON.stringify({ error: "P2P_ERR_STALE_TIMESTAMP", message }) };
      const d = await deliverV2(target, env, null);
      assert.equal(d.kind, "retry");
      return d.kind === "retry" ? d.reason : "";
    };
    // Our receiver's words: our timestamp, then its own time.
    assert.match(await stale("timestamp 1795829136343 is more than 300 s from now (1795825536356)"), /\(this machine's clock is about 3600 s ahead of the peer's: one of them is wrong; check both \(timedatectl, NTP\)\. The message is retried/);
    assert.match(await stale("timestamp 1795825536356 is more than 300 s from now (1795826436356)"), /this machine's clock is about 900 s behind the peer's/);
    assert.match(await stale("too old"), /\(this machine's clock and the peer's differ by more than the protocol allows: one of them is wrong/);
  });

  it("a valid receipt signed by another key than the pinned one is a key mismatch, retried, naming the key and the fix", async () => {
    const alice = keyPairFromSeed(new Uint8Array(32).fill(1));
    const bob = keyPairFromSeed(new Uint8Array(32).fill(2));
    const bobSigner = { ...bob, address: formatIPv6(deriveAddress(bob.publicKey)) };
    const sent = buildEnvelope({ ...alice, address: formatIPv6(deriveAddress(alice.publicKey)) }, bobSigner.address, "chat", "hi");
    const receipt = buildReceipt(bobSigner, sent, Date.now());
    answer = { status: 200, body: JSON.stringify({ ok: true, duplicate: false, receipt }) };
    const pinned = encodeBase64(new Uint8Array(32).fill(9));
    const d = await deliverV2(target, sent, pinned);
    assert.equal(d.kind, "retry");
    if (d.kind !== "retry") return;
    assert.equal(d.code, "P2P_ERR_KEY_MISMATCH");
    assert.equal(d.otherKey, receipt.key);
    assert.match(d.reason, new RegExp(`answered with key ${receipt.key.replace(/[+/]/g, "\\$&")}, not the one pinned for it; .*\`add ${bobSigner.address} --key `));
    assert.equal((await deliverV2(target, sent, receipt.key)).kind, "delivered", "with that key pinned it counts");
  });

  it("without a JSON body says only the HTTP status", async () => {
    const d = await refusedWith(403, "\x1b[2K not json");
    assert.equal(d.reason, "HTTP_403: HTTP 403");
  });

  it("to a ping is reported the same way", async () => {
    answer = { status: 403, body: JSON.stringify({ error: "P2P_ERR_PEER_BLOCKED\x07", message: "go\x1b away" }) };
    await assert.rejects(pingPeer(target, null), (err: Error & { code?: string }) => {
      assert.equal(err.code, "P2P_ERR_PEER_REFUSED");
      assert.equal(err.message, "::1 refused ping: HTTP_403: peer said: go\\u001b away");
      return true;
    });
  });
});

test("a socket error reads as what it means for the user, its system code kept at the end", () => {
  const err = (code: string) => Object.assign(new Error(`connect ${code}`), { code });
  assert.equal(connectFailure(err("ECONNREFUSED")), "connection refused: the peer's node is not running, or listens on another port (ECONNREFUSED)");
  assert.match(connectFailure(err("EHOSTUNREACH")), /^no route to the peer: is this machine's Yggdrasil running and connected to the mesh\? \(EHOSTUNREACH\)$/);
  assert.match(connectFailure(err("ENETUNREACH")), /\(ENETUNREACH\)$/);
  assert.equal(connectFailure(err("EWHATEVER")), "EWHATEVER");
  assert.equal(connectFailure(new Error("socket hang up")), "socket hang up");
});

describe("legacy v1: a 404 switches a peer to v1 only when it answers as a v1 node does", () => {
  it("speaksOnlyV1: a v1 node's ping is; a v2 node's (versions lists 2), an HTML page or a 404 are not", async () => {
    answer = { status: 200, body: JSON.stringify({ ok: true, ts: 1795682838549 }) };
    assert.equal(await speaksOnlyV1(target), true);
    answer = { status: 200, body: JSON.stringify({ ok: true, ts: 1795682838549, versions: [1, 2] }) };
    assert.equal(await speaksOnlyV1(target), "its /peer/ping lists v2");
    answer = { status: 200, body: "<html>it works</html>" };
    assert.match(String(await speaksOnlyV1(target)), /is not a v1 node's/);
    answer = { status: 404, body: "Not Found" };
    assert.match(String(await speaksOnlyV1(target)), /HTTP 404/);
  });

  it("deliverV1 counts only v1's {\"ok\":true} as delivered; any other 2xx is retried", async () => {
    const m = {} as V1Message; // refused or accepted by the fake peer whatever it holds
    answer = { status: 200, body: JSON.stringify({ ok: true }) };
    assert.equal((await deliverV1(target, m)).kind, "delivered");
    for (const body of ["<html>it works</html>", JSON.stringify({ ok: false }), ""]) {
      answer = { status: 200, body };
      const d = await deliverV1(target, m);
      assert.equal(d.kind, "retry", body);
    }
  });
});

test("a request on a pooled connection the peer has dropped is sent again once on a new connection", async (t) => {
  // A peer that answers the first request on a connection, keeps it open, and resets it at the next request (as a
  // restarted peer does to the old connection), while new connections are answered normally.
  const reply = JSON.stringify({ ok: true, ts: 1795682838549 });
  const ok = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${reply.length}\r\nConnection: keep-alive\r\n\r\n${reply}`;
  let connections = 0;
  const peer = createTcpServer((socket: Socket) => {
    connections++;
    let requests = 0;
    socket.on("data", () => (requests++ === 0 ? socket.write(ok) : socket.resetAndDestroy()));
  });
  await new Promise<void>((resolve) => peer.listen(0, "::1", resolve));
  t.after(() => peer.close());
  const at: Target = { address: "::1", port: (peer.address() as AddressInfo).port };
  assert.equal(await speaksOnlyV1(at), true);
  assert.equal(await speaksOnlyV1(at), true, "the reset connection was replaced, not reported");
  assert.equal(connections, 2);
});
