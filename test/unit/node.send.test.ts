/**
 * Node.send (README "Using the CLI", docs/protocol.md section 8 step 1): what is checked before anything is stored.
 * A refused send leaves the store as it was: no peer added, no message queued. Real Node and Store in a temp dir;
 * no sockets are opened except in the last test, whose single attempt goes to a 200::/7 address from a source
 * address this host does not have (UNBOUND): connect() fails locally, no packet leaves (this host may route 200::/7).
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { test } from "node:test";
import { deriveAddress, formatIPv6, parseIPv6 } from "../../src/core/address.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { P2PError } from "../../src/core/errors.ts";
import { Node } from "../../src/core/node.ts";
import { LEASE_MS } from "../../src/core/outbox.ts";
import { CANCELLED, PEER_BLOCKED, PEER_REMOVED, Store } from "../../src/core/store.ts";
import { MAX_BODY_BYTES, MAX_CONTENT_BYTES } from "../../src/core/wire.ts";
import { tempDir } from "../helpers/store-fixture.ts";

/** A valid peer address with no node behind it. */
const NOBODY = formatIPv6(deriveAddress(keyPairFromSeed(new Uint8Array(32).fill(0x21)).publicKey));

/** A source address no interface here has: every connection the outbox tries fails at bind. */
const UNBOUND = "200:dead:beef::1";

function openNode(t: TestContext): Node {
  const node = Node.open({ dataDir: tempDir(t, "declaw-node-"), config: { yggdrasil: "off" }, localAddress: UNBOUND });
  t.after(() => node.close());
  return node;
}

/** Fits in MAX_CONTENT_BYTES as UTF-8, but JSON writes each U+0001 as the 6 bytes \u0001: far over MAX_BODY_BYTES. */
const ESCAPE_HEAVY = "\u0001".repeat(MAX_CONTENT_BYTES);

test("content whose signed JSON would exceed the body limit is refused before anything is stored", async (t) => {
  const node = openNode(t);
  assert.ok(Buffer.byteLength(ESCAPE_HEAVY, "utf8") <= MAX_CONTENT_BYTES);
  assert.ok(JSON.stringify(ESCAPE_HEAVY).length > MAX_BODY_BYTES);

  await assert.rejects(node.send(NOBODY, ESCAPE_HEAVY), (err: Error & { code?: string; hint?: string }) => {
    assert.equal(err.code, "P2P_ERR_CONTENT_TOO_LARGE");
    assert.match(err.message, /nothing was queued/);
    assert.match(err.hint ?? "", /shorten/, "says what to do next");
    return true;
  });
  assert.deepEqual(node.outbox(), [], "no queued row");
  assert.deepEqual(node.peers(), [], "the unknown address was not added as a peer");
});

test("the same refusal for a known peer queues nothing", async (t) => {
  const node = openNode(t);
  node.addPeer(NOBODY, { alias: "nobody" });
  await assert.rejects(node.send("nobody", ESCAPE_HEAVY), { code: "P2P_ERR_CONTENT_TOO_LARGE" });
  assert.deepEqual(node.outbox(), []);
});

test("empty text, or text that shows nothing (white space, zero-width and other invisible characters), is refused before anything is stored", async (t) => {
  const node = openNode(t);
  node.addPeer(NOBODY, { alias: "bob" });
  await assert.rejects(node.send("bob", ""), { code: "P2P_ERR_BAD_ARGUMENT", message: "message text is empty" });
  for (const text of ["   ", "\n\t ", "\u00a0\u2003", "\ufeff", "\u200b", " \u200d\u2060\u00ad", "\ufe0f"]) {
    await assert.rejects(node.send("bob", text), { code: "P2P_ERR_BAD_ARGUMENT", message: "message text shows nothing (only white space or invisible characters)" }, JSON.stringify(text));
  }
  assert.deepEqual(node.outbox(), []);
  // Visible text with invisible characters around it is stored as written (the one attempt fails at bind: queued).
  const sent = await node.send("bob", "\u200bhi\u200b");
  assert.equal(sent.state, "queued");
  assert.deepEqual(node.outbox().map((m) => m.content), ["\u200bhi\u200b"]);
});

test("sending to the node's own address is refused before the address is added as a peer", async (t) => {
  const node = openNode(t);
  const own = node.address;
  // The full, uncompressed text of the same address: compared as the canonical form.
  const bytes = parseIPv6(own)!;
  const longForm = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16).padStart(4, "0")).join(":");
  assert.notEqual(longForm, own);

  for (const text of [own, longForm]) {
    await assert.rejects(node.send(text, "hello me"), { code: "P2P_ERR_BAD_ARGUMENT", message: "that is this node's own address" });
  }
  assert.deepEqual(node.peers(), [], "no peer row for our own address");
  assert.deepEqual(node.outbox(), []);
});

test("escape-heavy content that still fits is stored and tried (the check is the body limit, not a guess)", async (t) => {
  const node = openNode(t);
  // 10,000 x 6 bytes of JSON plus the envelope's other fields: under MAX_BODY_BYTES.
  const text = "\u0001".repeat(10_000);
  const r = await node.send(NOBODY, text);
  assert.equal(r.state, "queued", "nobody listens there: queued for a retry");
  assert.equal(node.outbox()[0]?.content, text);
  assert.deepEqual(node.peers().map((p) => p.address), [NOBODY], "writing to someone adds them as a peer");
});

test("a running node's outbox cannot take the message send just queued: send makes the first attempt and reports it", async (t) => {
  const node = openNode(t);
  const running = Store.open(node.dataDir); // the running node's connection, another process's in real use
  t.after(() => running.close());
  const enqueue = node.store.enqueueOutbound.bind(node.store);
  let takenByOther: string[] | undefined;
  node.store.enqueueOutbound = (...args) => {
    const row = enqueue(...args);
    takenByOther = running.claimDue(Date.now(), 10, LEASE_MS).map((m) => m.id); // its poll, right after the insert
    return row;
  };
  const r = await node.send(NOBODY, "hello");
  assert.deepEqual(takenByOther, [], "nothing was there for the other outbox to take");
  assert.equal(r.state, "queued");
  assert.match(r.state === "queued" ? r.reason : "", /EADDRNOTAVAIL/, "the reason is this call's own attempt");
  assert.equal(node.store.getMessage("out", r.id)?.attempts, 1, "that attempt was made and counted");
});

test("a failure after the message is stored is reported as queued, never as an error that invites sending it again", async (t) => {
  const node = openNode(t);
  // A store that fails after the message was written, when the first attempt records its outcome (as a write lock
  // held past the busy timeout would).
  node.store.markRetry = () => {
    throw new P2PError("P2P_ERR_STORAGE", "database is locked");
  };
  const r = await node.send(NOBODY, "hello");
  assert.equal(r.state, "queued");
  assert.match(r.state === "queued" ? r.reason : "", /^stored, but the first attempt did not complete \(P2P_ERR_STORAGE: database is locked\)/);
  assert.equal(node.outbox()[0]?.id, r.id, "it is in the outbox");
  assert.equal(node.outbox()[0]?.state, "queued");
});

test("a queued message can be cancelled: failed as cancelled, never tried again; anything else is refused with a next step", async (t) => {
  const node = openNode(t);
  const r = await node.send(NOBODY, "to a mistyped address");
  assert.equal(r.state, "queued");

  const m = node.cancel(r.id);
  assert.equal(m.state, "failed");
  assert.equal(m.lastError, CANCELLED);
  assert.ok(!node.store.claimDue(Date.now() + 10 * 86_400_000, 100, LEASE_MS).some((m) => m.id === r.id), "no attempt will claim it");
  assert.throws(() => node.cancel(r.id), (e: P2PError) => e.code === "P2P_ERR_BAD_ARGUMENT" && /is failed, not queued/.test(e.message) && /outbox/.test(e.hint ?? ""));
  assert.throws(() => node.cancel("no-such-id"), (e: P2PError) => e.code === "P2P_ERR_BAD_ARGUMENT" && /no sent message has id no-such-id/.test(e.message));
});

test("this node's own address is no peer: add refuses it as send does (for every host, which all add through Node)", async (t) => {
  const node = openNode(t);
  assert.throws(() => node.addPeer(node.address, { alias: "me" }), (e: P2PError) => e.code === "P2P_ERR_BAD_ARGUMENT" && /own address, not a peer/.test(e.message));
  await assert.rejects(node.send(node.address, "hi"), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.deepEqual(node.peers(), []);
});

test("an alias is 1 to 32 ASCII letters, digits, _ . - starting with a letter; the refusal says exactly that", (t) => {
  const node = openNode(t);
  for (const alias of ["é", "zoë", "1bob", "-bob", "a".repeat(33), "bo b", "bob:1", ""]) {
    assert.throws(() => node.addPeer(NOBODY, { alias }), (e: P2PError) => e.code === "P2P_ERR_BAD_ARGUMENT" && e.message === `alias "${alias}" must be 1 to 32 of A-Z a-z 0-9 _ . -, starting with a letter`, JSON.stringify(alias));
  }
  assert.deepEqual(node.peers(), [], "nothing added");
  assert.equal(node.addPeer(NOBODY, { alias: `B${"o_.-9".repeat(6)}b` }).alias, `B${"o_.-9".repeat(6)}b`);
});

test("a name that is no peer is P2P_ERR_PEER_NOT_FOUND wherever a peer may be named; add wants an address", async (t) => {
  const node = openNode(t);
  const notFound = (e: P2PError) => e.code === "P2P_ERR_PEER_NOT_FOUND" && e.message === 'no peer "nosuch"' && /peers/.test(e.hint ?? "");
  await assert.rejects(node.send("nosuch", "hi"), { code: "P2P_ERR_PEER_NOT_FOUND" });
  assert.throws(() => node.block("nosuch"), notFound);
  assert.throws(() => node.allow("nosuch"), notFound);
  assert.throws(() => node.inbox({ peer: "nosuch" }), notFound);
  await assert.rejects(node.ping("nosuch"), notFound);
  assert.throws(() => node.addPeer("nosuch"), (e: P2PError) => e.code === "P2P_ERR_BAD_ARGUMENT" && e.message === '"nosuch" is not an IPv6 address');
  assert.throws(() => node.addPeer("10.0.0.1"), (e: P2PError) => e.code === "P2P_ERR_BAD_ARGUMENT" && /not an IPv6 address/.test(e.message));
});

test("removing or blocking a peer fails what is still queued to it (with the reason); nothing more is sent to either", async (t) => {
  const node = openNode(t);
  node.addPeer(NOBODY, { alias: "gone" });
  const first = await node.send("gone", "queued before the removal");
  assert.equal(first.state, "queued");
  assert.equal(node.removePeer("gone").failedQueued, 1, "the user is told how many");
  assert.equal(node.store.getMessage("out", first.id)?.state, "failed");
  assert.equal(node.store.getMessage("out", first.id)?.lastError, PEER_REMOVED);

  node.addPeer(NOBODY, { alias: "rude" });
  const second = await node.send("rude", "queued before the block");
  assert.equal(node.block("rude").failedQueued, 1);
  const m = node.store.getMessage("out", second.id);
  assert.deepEqual([m?.state, m?.lastError], ["failed", PEER_BLOCKED]);
  assert.ok(!node.store.claimDue(Date.now() + 10 * 86_400_000, 100, LEASE_MS).some((m) => m.id === second.id), "no attempt will claim it");
  const before = node.outbox({ limit: 100 }).length;
  await assert.rejects(node.send("rude", "hello?"), (e: P2PError) => e.code === "P2P_ERR_PEER_BLOCKED" && e.message === "rude is blocked: nothing is sent to a blocked peer" && /allow rude/.test(e.hint ?? ""));
  assert.equal(node.outbox({ limit: 100 }).length, before, "nothing queued");
  assert.equal("failedQueued" in node.allow("rude"), false, "allow fails nothing, and says nothing of it");
  assert.equal((await node.send("rude", "friends again")).state, "queued");
});
