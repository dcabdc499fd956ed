/** Store: the peers table, aliases, trust and the atomic key binding of inbound senders (bindKey). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { generateKeyPair } from "../../src/core/keys.ts";
import { LAST_SEEN_RESOLUTION_MS } from "../../src/core/store.ts";
import { KEY_A, KEY_B, PEER_A, PEER_B, inbound, openTemp, outbound } from "../helpers/store-fixture.ts";

test("upsertPeer creates a row with the documented defaults", (t) => {
  const { store } = openTemp(t);
  const p = store.upsertPeer({ address: PEER_A }, 5);
  assert.deepEqual(p, {
    address: PEER_A, alias: null, publicKey: null, keyBinding: null, trust: "pending", port: 8099, protocol: 2,
    firstSeen: 5, lastSeen: null, lastKeyMismatchAt: null, lastMismatchKey: null,
  });
  assert.deepEqual(store.getPeer(PEER_A), p);
  assert.equal(store.countPeers(), 1);
});

test("upsertPeer updates only the fields it is given; alias null clears the alias", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, alias: "alice", trust: "trusted", port: 9000, protocol: 1 }, 5);
  const p = store.upsertPeer({ address: PEER_A, port: 9001 }, 99);
  assert.equal(p.alias, "alice");
  assert.equal(p.trust, "trusted");
  assert.equal(p.port, 9001);
  assert.equal(p.protocol, 1);
  assert.equal(p.firstSeen, 5, "firstSeen is set once");
  assert.equal(store.upsertPeer({ address: PEER_A, alias: null }).alias, null);
});

test("an alias belongs to one peer: P2P_ERR_ALIAS_TAKEN, case-insensitively, and the row is unchanged", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, alias: "alice" });
  store.upsertPeer({ address: PEER_B });
  assert.throws(() => store.upsertPeer({ address: PEER_B, alias: "alice" }), { code: "P2P_ERR_ALIAS_TAKEN" });
  assert.throws(() => store.upsertPeer({ address: PEER_B, alias: "ALICE" }), { code: "P2P_ERR_ALIAS_TAKEN" });
  assert.equal(store.getPeer(PEER_B)?.alias, null);
  // re-saving the own alias is fine, and two peers without alias are fine
  assert.equal(store.upsertPeer({ address: PEER_A, alias: "alice" }).alias, "alice");
  store.upsertPeer({ address: "200::3" });
  assert.equal(store.countPeers(), 3);
});

test("an alias is non-empty and never contains ':' (it could be mistaken for an address)", (t) => {
  const { store } = openTemp(t);
  assert.throws(() => store.upsertPeer({ address: PEER_A, alias: "" }), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.throws(() => store.upsertPeer({ address: PEER_A, alias: "a:b" }), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.equal(store.getPeer(PEER_A), undefined);
});

test("resolvePeer finds a peer by alias (any case) or by any text form of its address", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_B, alias: "Bob" });
  assert.equal(store.resolvePeer("bob")?.address, PEER_B);
  assert.equal(store.resolvePeer("Bob")?.address, PEER_B);
  assert.equal(store.resolvePeer(PEER_B)?.alias, "Bob");
  assert.equal(store.resolvePeer("201:ABCD:0:0:0:0:0:1")?.address, PEER_B);
  assert.equal(store.resolvePeer("carol"), undefined);
  assert.equal(store.resolvePeer("200::dead"), undefined);
});

test("setTrust changes trust and creates a missing row", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, alias: "alice", publicKey: KEY_A, keyBinding: "derived" });
  const p = store.setTrust(PEER_A, "trusted");
  assert.equal(p.trust, "trusted");
  assert.equal(p.alias, "alice");
  assert.equal(p.publicKey, KEY_A);
  const q = store.setTrust(PEER_B, "blocked", 77);
  assert.equal(q.trust, "blocked");
  assert.equal(q.firstSeen, 77);
  assert.equal(q.publicKey, null);
  assert.equal(q.failedQueued, 0);
});

test("removing or blocking a peer says how many messages still queued to it were failed; delivered ones stay", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, trust: "trusted" });
  store.upsertPeer({ address: PEER_B, trust: "trusted" });
  for (const id of ["a1", "a2", "a3"]) store.enqueueOutbound(outbound(id, { peer: PEER_A }), 100);
  store.markDelivered("a3", null, 150);
  for (const id of ["b1", "b2"]) store.enqueueOutbound(outbound(id, { peer: PEER_B }), 100);
  assert.deepEqual(store.removePeer(PEER_A), { removed: true, failedQueued: 2 });
  assert.equal(store.setTrust(PEER_B, "blocked").failedQueued, 2);
  assert.equal(store.setTrust(PEER_B, "blocked").failedQueued, 0, "nothing left to fail");
  assert.equal(store.setTrust(PEER_B, "trusted").failedQueued, 0);
  assert.equal(store.counts().queued, 0);
  assert.equal(store.getMessage("out", "a3")?.state, "sent");
});

test("listPeers filters by trust and pages with limit/offset; counts() and countPending(upTo) see pending peers", (t) => {
  const { store } = openTemp(t);
  for (let i = 1; i <= 5; i++) store.upsertPeer({ address: `200::${i}`, trust: i % 2 ? "pending" : "trusted" }, i);
  assert.deepEqual(store.listPeers().map((p) => p.address), ["200::1", "200::2", "200::3", "200::4", "200::5"]);
  assert.deepEqual(store.listPeers({ trust: "trusted" }).map((p) => p.address), ["200::2", "200::4"]);
  assert.deepEqual(store.listPeers({ limit: 2, offset: 2 }).map((p) => p.address), ["200::3", "200::4"]);
  assert.throws(() => store.listPeers({ limit: -2 }), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.deepEqual(store.counts(), { peers: 5, pending: 3, inbox: 0, queued: 0, failed: 0 });
  assert.deepEqual([store.countPending(10), store.countPending(3), store.countPending(2)], [3, 3, 2], "counted up to the bound");
});

test("removePeer deletes the row but keeps its messages", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A });
  store.acceptInbound([inbound("m1")]);
  assert.deepEqual(store.removePeer(PEER_A), { removed: true, failedQueued: 0 });
  assert.deepEqual(store.removePeer(PEER_A), { removed: false, failedQueued: 0 });
  assert.equal(store.getPeer(PEER_A), undefined);
  assert.equal(store.listInbox({ peer: PEER_A }).length, 1);
});

test("upsertPeer replaces a pin with the key the address is derived from (the user re-adding the peer with --key)", (t) => {
  const { store } = openTemp(t);
  const kp = generateKeyPair();
  const address = formatIPv6(deriveAddress(kp.publicKey));
  const derived = Buffer.from(kp.publicKey).toString("base64");
  store.upsertPeer({ address, publicKey: KEY_A, keyBinding: "tofu" });
  const p = store.upsertPeer({ address, publicKey: derived, keyBinding: "derived" });
  assert.equal(p.publicKey, derived);
  assert.equal(p.keyBinding, "derived");
});

test("upsertPeer never silently replaces a pinned key: P2P_ERR_KEY_MISMATCH unless keyBinding 'user' is explicit", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, publicKey: KEY_A, keyBinding: "tofu" });
  assert.throws(() => store.upsertPeer({ address: PEER_A, publicKey: KEY_B }), { code: "P2P_ERR_KEY_MISMATCH" });
  assert.throws(() => store.upsertPeer({ address: PEER_A, publicKey: KEY_B, keyBinding: "derived" }), {
    code: "P2P_ERR_KEY_MISMATCH",
  });
  assert.equal(store.getPeer(PEER_A)?.publicKey, KEY_A);
  const p = store.upsertPeer({ address: PEER_A, publicKey: KEY_B, keyBinding: "user" });
  assert.equal(p.publicKey, KEY_B);
  assert.equal(p.keyBinding, "user");
});

test("upsertPeer: first pin defaults to binding 'user'; the same key may upgrade its binding; binding alone is refused", (t) => {
  const { store } = openTemp(t);
  assert.equal(store.upsertPeer({ address: PEER_A, publicKey: KEY_A }).keyBinding, "user");
  store.upsertPeer({ address: PEER_B, publicKey: KEY_B, keyBinding: "tofu" });
  assert.equal(store.upsertPeer({ address: PEER_B, publicKey: KEY_B }).keyBinding, "tofu");
  assert.equal(store.upsertPeer({ address: PEER_B, publicKey: KEY_B, keyBinding: "derived" }).keyBinding, "derived");
  assert.throws(() => store.upsertPeer({ address: PEER_B, keyBinding: "user" }), { code: "P2P_ERR_BAD_ARGUMENT" });
});

test("a value outside the contract's unions is refused with P2P_ERR_BAD_ARGUMENT, not a raw SQLite error", (t) => {
  const { store } = openTemp(t);
  assert.throws(() => store.upsertPeer({ address: PEER_A, port: 70000 }), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.throws(() => store.setTrust(PEER_A, "friend" as "trusted"), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.equal(store.getPeer(PEER_A), undefined);
});

test("bindKey: an unknown sender gets a pending row with its key pinned (TOFU)", (t) => {
  const { store } = openTemp(t);
  const r = store.bindKey(PEER_A, KEY_A, "tofu", 1000);
  assert.equal(r.ok, true);
  assert.equal(r.peer.trust, "pending");
  assert.equal(r.peer.publicKey, KEY_A);
  assert.equal(r.peer.keyBinding, "tofu");
  assert.equal(r.peer.firstSeen, 1000);
  assert.equal(r.peer.lastSeen, 1000);
});

test("bindKey: a known peer without a key gets it pinned; the same key again is ok and moves lastSeen", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, alias: "alice", trust: "trusted" }, 1);
  const r = store.bindKey(PEER_A, KEY_A, "derived", 1000);
  assert.equal(r.ok, true);
  assert.equal(r.peer.keyBinding, "derived");
  assert.equal(r.peer.trust, "trusted");
  const later = 1000 + LAST_SEEN_RESOLUTION_MS;
  const again = store.bindKey(PEER_A, KEY_A, "tofu", later);
  assert.equal(again.ok, true);
  assert.equal(again.peer.lastSeen, later);
  assert.equal(again.peer.keyBinding, "derived", "a pinned binding is not downgraded");
});

test("bindKey: lastSeen is rewritten at most once per LAST_SEEN_RESOLUTION_MS (no commit per message)", (t) => {
  const { store } = openTemp(t);
  store.bindKey(PEER_A, KEY_A, "derived", 1000);
  assert.equal(store.bindKey(PEER_A, KEY_A, "derived", 1000 + LAST_SEEN_RESOLUTION_MS - 1).peer.lastSeen, 1000);
  assert.equal(store.getPeer(PEER_A)?.lastSeen, 1000);
  // a clock that went backwards is corrected, not frozen
  assert.equal(store.bindKey(PEER_A, KEY_A, "derived", 500).peer.lastSeen, 500);
});

test("bindKey: a different key is a mismatch, recorded on the row, and the pin stays", (t) => {
  const { store } = openTemp(t);
  store.bindKey(PEER_A, KEY_A, "tofu", 1000);
  const r = store.bindKey(PEER_A, KEY_B, "tofu", 2000);
  assert.equal(r.ok, false);
  assert.equal(r.ok === false && r.reason, "mismatch");
  assert.equal(r.peer.publicKey, KEY_A);
  assert.equal(r.peer.lastKeyMismatchAt, 2000);
  assert.equal(r.peer.lastMismatchKey, KEY_B);
  assert.equal(r.peer.lastSeen, 1000, "a mismatching sender does not count as the peer being seen");
  assert.deepEqual(store.getPeer(PEER_A), r.peer);
  const later = store.bindKey(PEER_A, KEY_B, "tofu", 2000 + LAST_SEEN_RESOLUTION_MS);
  assert.equal(later.peer.lastKeyMismatchAt, 2000 + LAST_SEEN_RESOLUTION_MS);
});

test("re-pinning a key (add --key, as README says after a KEY MISMATCH) settles the mismatch; editing only the alias does not", (t) => {
  const { store } = openTemp(t);
  store.bindKey(PEER_A, KEY_A, "tofu", 1000);
  store.bindKey(PEER_A, KEY_B, "tofu", 2000);
  store.upsertPeer({ address: PEER_A, alias: "alice" }, 3000);
  assert.equal(store.getPeer(PEER_A)?.lastKeyMismatchAt, 2000, "still shown");
  const p = store.upsertPeer({ address: PEER_A, publicKey: KEY_B, keyBinding: "user" }, 4000);
  assert.deepEqual([p.publicKey, p.lastKeyMismatchAt, p.lastMismatchKey], [KEY_B, null, null]);
});

test("bindReceiptKey (the outbox's pin on a receipt): pins a known peer's key, and never re-creates a removed peer", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, trust: "trusted" }, 1);
  const r = store.bindReceiptKey(PEER_A, KEY_A, "tofu", 1000);
  assert.equal(r?.ok, true);
  assert.equal(store.getPeer(PEER_A)?.publicKey, KEY_A);
  assert.equal(store.getPeer(PEER_A)?.trust, "trusted");

  store.removePeer(PEER_A); // the user removed it while a message was on its way
  assert.equal(store.bindReceiptKey(PEER_A, KEY_A, "tofu", 2000), undefined);
  assert.equal(store.getPeer(PEER_A), undefined, "not back as a pending peer");
});

test("setPeerProtocol (the outbox's v1 fallback) updates a known peer only", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, trust: "trusted", port: 9000 }, 1);
  assert.equal(store.setPeerProtocol(PEER_A, 1), true);
  assert.equal(store.getPeer(PEER_A)?.protocol, 1);
  assert.equal(store.getPeer(PEER_A)?.port, 9000);
  assert.equal(store.setPeerProtocol(PEER_B, 1), false);
  assert.equal(store.getPeer(PEER_B), undefined);
});

test("a peer we write to in v1 is written to in v2 again once it sends a v2 message signed by its pinned key", (t) => {
  const { store } = openTemp(t);
  store.upsertPeer({ address: PEER_A, trust: "trusted", publicKey: KEY_A, keyBinding: "user" }, 1);
  store.setPeerProtocol(PEER_A, 1);
  store.acceptInbound([inbound("v1", { protocol: 1, sender: { key: KEY_A, binding: "tofu", pendingQuota: 200 } })]);
  assert.equal(store.getPeer(PEER_A)?.protocol, 1, "a v1 message changes nothing");
  store.acceptInbound([inbound("other-key", { protocol: 2, sender: { key: KEY_B, binding: "tofu", pendingQuota: 200 } })]);
  assert.equal(store.getPeer(PEER_A)?.protocol, 1, "nor does a v2 message under another key (refused)");
  store.acceptInbound([inbound("v2", { protocol: 2, sender: { key: KEY_A, binding: "tofu", pendingQuota: 200 } })]);
  assert.equal(store.getPeer(PEER_A)?.protocol, 2);
});

test("bindKey: a blocked peer is refused as blocked, whatever the key; its key is not pinned by it", (t) => {
  const { store } = openTemp(t);
  store.setTrust(PEER_A, "blocked", 1);
  const r = store.bindKey(PEER_A, KEY_A, "tofu", 1000);
  assert.deepEqual([r.ok, r.ok === false && r.reason], [false, "blocked"]);
  assert.equal(r.peer.publicKey, null);
  assert.equal(r.peer.lastSeen, 1000);
  store.upsertPeer({ address: PEER_B, publicKey: KEY_B, keyBinding: "user", trust: "blocked" });
  const m = store.bindKey(PEER_B, KEY_A, "tofu", 1000);
  assert.deepEqual([m.ok, m.ok === false && m.reason], [false, "blocked"]);
  assert.equal(m.peer.lastMismatchKey, null);
});
