/** Store: accepting inbound messages (dedupe, original storedAt), the inbox, host dispatch, replay memory, meta. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { APPLICATION_ID, MIGRATIONS } from "../../src/core/schema.ts";
import { LAST_SEEN_RESOLUTION_MS, Store, type InboundSender } from "../../src/core/store.ts";
import { KEY_A, KEY_B, PEER_A, PEER_B, inbound, openTemp } from "../helpers/store-fixture.ts";

test("acceptInbound stores a new message as 'received' with storedAt as createdAt", (t) => {
  const { store } = openTemp(t);
  assert.deepEqual(store.acceptInbound([inbound("m1", { storedAt: 5000, protocol: 1 })]), [
    { duplicate: false, storedAt: 5000 },
  ]);
  const m = store.getMessage("in", "m1", PEER_A);
  assert.deepEqual(m, {
    seq: m?.seq, id: "m1", peer: PEER_A, direction: "in", kind: "chat", content: "content of m1", ts: 1000,
    createdAt: 5000, state: "received", attempts: 0, nextAttemptAt: null, expiresAt: null, lastError: null,
    receipt: null, deliveredAt: null, protocol: 1, handledAt: null, held: false,
  });
  assert.deepEqual(store.getMessage("in", "m1"), m);
  assert.equal(store.getMessage("out", "m1"), undefined);
});

test("a message seen before is a duplicate carrying the ORIGINAL storedAt, and is not stored twice", (t) => {
  const { dir, store } = openTemp(t);
  store.acceptInbound([inbound("m1", { storedAt: 5000 })]);
  assert.deepEqual(store.acceptInbound([inbound("m1", { storedAt: 9000, content: "other" })]), [
    { duplicate: true, storedAt: 5000 },
  ]);
  // also across a reopen (it is on disk, not in memory)
  store.close();
  const again = Store.open(dir);
  t.after(() => again.close());
  assert.deepEqual(again.acceptInbound([inbound("m1", { storedAt: 9999 })]), [{ duplicate: true, storedAt: 5000 }]);
  assert.equal(again.listInbox().length, 1);
  assert.equal(again.listInbox()[0]?.content, "content of m1");
});

test("the same id from two different peers is two messages", (t) => {
  const { store } = openTemp(t);
  const r = store.acceptInbound([inbound("m1"), inbound("m1", { peer: PEER_B })]);
  assert.deepEqual(r.map((x) => x.duplicate), [false, false]);
  assert.equal(store.counts().inbox, 2);
});

test("a batch with an internal duplicate stores it once; the second copy reports the first one's storedAt", (t) => {
  const { store } = openTemp(t);
  const r = store.acceptInbound([
    inbound("a", { storedAt: 10 }),
    inbound("b", { storedAt: 11 }),
    inbound("a", { storedAt: 12 }),
  ]);
  assert.deepEqual(r, [
    { duplicate: false, storedAt: 10 },
    { duplicate: false, storedAt: 11 },
    { duplicate: true, storedAt: 10 },
  ]);
  assert.deepEqual(store.listInbox().map((m) => m.id), ["b", "a"]);
});

test("the replay memory still catches a duplicate whose message row is gone, until pruneReplay forgets it", (t) => {
  const { dir, store } = openTemp(t);
  store.acceptInbound([inbound("m1", { ts: 1000, storedAt: 2000 })]);
  // No API deletes messages yet; simulate a future retention policy from outside.
  store.close();
  const { DatabaseSync } = process.getBuiltinModule("node:sqlite");
  const raw = new DatabaseSync(`${dir}/peers.db`);
  raw.exec("DELETE FROM messages");
  raw.close();
  const s = Store.open(dir);
  t.after(() => s.close());
  assert.deepEqual(s.acceptInbound([inbound("m1", { storedAt: 3000 })]), [{ duplicate: true, storedAt: 2000 }]);
  assert.equal(s.pruneReplay(2000 + 300_000, 300_000), 0, "still inside the window");
  assert.equal(s.pruneReplay(2001 + 300_000, 300_000), 1);
  assert.deepEqual(s.acceptInbound([inbound("m1", { storedAt: 4000 })]), [{ duplicate: false, storedAt: 4000 }]);
});

test("an empty batch is a no-op", (t) => {
  const { store } = openTemp(t);
  assert.deepEqual(store.acceptInbound([]), []);
});

test("listInbox pages newest first with beforeSeq and filters by peer", (t) => {
  const { store } = openTemp(t);
  const batch = Array.from({ length: 10 }, (_, i) => inbound(`m${i}`, { peer: i % 2 ? PEER_B : PEER_A }));
  store.acceptInbound(batch);
  const first = store.listInbox({ limit: 4 });
  assert.deepEqual(first.map((m) => m.id), ["m9", "m8", "m7", "m6"]);
  const second = store.listInbox({ limit: 4, beforeSeq: first.at(-1)?.seq });
  assert.deepEqual(second.map((m) => m.id), ["m5", "m4", "m3", "m2"]);
  const third = store.listInbox({ limit: 4, beforeSeq: second.at(-1)?.seq });
  assert.deepEqual(third.map((m) => m.id), ["m1", "m0"]);
  assert.deepEqual(store.listInbox({ peer: PEER_B, limit: 2 }).map((m) => m.id), ["m9", "m7"]);
  assert.equal(store.listInbox().length, 10, "default limit covers this");
  assert.throws(() => store.listInbox({ limit: 1.5 }), { code: "P2P_ERR_BAD_ARGUMENT" });
});

test("listUnhandled gives unhandled inbound messages oldest first; markHandled keeps the first handledAt", (t) => {
  const { store } = openTemp(t);
  store.acceptInbound([inbound("a"), inbound("b"), inbound("c")]);
  const u = store.listUnhandled(10);
  assert.deepEqual(u.map((m) => m.id), ["a", "b", "c"]);
  store.markHandled([u[0]!.seq, u[1]!.seq], 700);
  assert.deepEqual(store.listUnhandled(10).map((m) => m.id), ["c"]);
  store.markHandled([u[0]!.seq], 900);
  assert.equal(store.getMessage("in", "a")?.handledAt, 700);
  assert.deepEqual(store.listUnhandled(1).map((m) => m.id), ["c"]);
  store.markHandled([], 1);
});

test("markHeld takes a not-accepted peer's messages out of listUnhandled; accepting the peer brings them back", (t) => {
  const { store } = openTemp(t);
  const PEER_C = "202::c";
  store.upsertPeer({ address: PEER_B, trust: "pending" });
  store.upsertPeer({ address: PEER_C, trust: "pending" });
  store.acceptInbound([inbound("b1", { peer: PEER_B }), inbound("a1"), inbound("b2", { peer: PEER_B }), inbound("c1", { peer: PEER_C })]);
  const seqs = Object.fromEntries(store.listUnhandled(10).map((m) => [m.id, m.seq]));
  store.upsertPeer({ address: PEER_A, trust: "trusted" });
  assert.deepEqual(store.markHeld([seqs.b1!, seqs.a1!, seqs.b2!, seqs.c1!]), [seqs.b1, seqs.b2, seqs.c1], "a trusted peer's message is never held");
  assert.deepEqual(store.listUnhandled(10).map((m) => m.id), ["a1"]);
  const b1 = store.getMessage("in", "b1", PEER_B);
  assert.deepEqual([b1?.held, b1?.handledAt], [true, null], "shown as held, not as handed over");
  assert.deepEqual(store.markHeld([seqs.b1!]), [], "already held");

  store.setTrust(PEER_B, "trusted"); // allow
  assert.deepEqual(store.listUnhandled(10).map((m) => m.id), ["b1", "a1", "b2"], "back, in their order");
  assert.equal(store.getMessage("in", "b1", PEER_B)?.held, false);
  store.upsertPeer({ address: PEER_C, trust: "trusted" }); // add as trusted
  assert.deepEqual(store.listUnhandled(10).map((m) => m.id), ["b1", "a1", "b2", "c1"]);

  store.upsertPeer({ address: "203::d", trust: "pending" });
  store.acceptInbound([inbound("d1", { peer: "203::d" })]);
  store.markHeld(store.listUnhandled(10).filter((m) => m.id === "d1").map((m) => m.seq));
  assert.equal(store.reopenHeld(), 1, "every held message back (a host whose policy now admits strangers)");
  assert.equal(store.listUnhandled(10).length, 5);
});

test("meta holds string settings", (t) => {
  const { store } = openTemp(t);
  assert.equal(store.getMeta("x"), undefined);
  store.setMeta("x", "1");
  store.setMeta("x", "2");
  assert.equal(store.getMeta("x"), "2");
});

test("acceptInbound stores many batches of 64 from several peers completely (its speed is reported, and measured by npm run bench)", (t) => {
  const { store } = openTemp(t);
  const BATCHES = 100;
  const started = performance.now();
  for (let b = 0; b < BATCHES; b++) {
    const now = Date.now();
    store.acceptInbound(
      Array.from({ length: 64 }, (_, i) =>
        inbound(`0190f5e2-7a3b-7c4d-8e5f-${String(b * 64 + i).padStart(12, "0")}`, {
          peer: `200:${(i % 16).toString(16)}::1`,
          content: "a chat message of typical length ".repeat(6),
          ts: now,
          storedAt: now,
        }),
      ),
    );
  }
  const perSecond = Math.round((BATCHES * 64) / ((performance.now() - started) / 1000));
  t.diagnostic(`acceptInbound: ${perSecond} messages/s in batches of 64`);
  assert.equal(store.counts().inbox, BATCHES * 64);
});

test("a schema-2 database is upgraded in place: messages kept, outbox-by-state and by-id still indexed, deletes feed the replay memory", (t) => {
  const { dir, store } = openTemp(t);
  store.close();
  // Rebuild the file as schema 2 wrote it, with a message in it.
  const { DatabaseSync } = process.getBuiltinModule("node:sqlite");
  const file = `${dir}/peers.db`;
  rmSync(file);
  const raw = new DatabaseSync(file);
  raw.exec("PRAGMA journal_mode = WAL");
  raw.exec(MIGRATIONS[0]!);
  raw.exec(MIGRATIONS[1]!);
  raw.exec(`PRAGMA application_id = ${APPLICATION_ID}; PRAGMA user_version = 2`);
  raw.exec(`INSERT INTO messages (id, peer, direction, kind, content, ts, created_at, state) VALUES ('old', '${PEER_A}', 'in', 'chat', 'kept', 1000, 2000, 'received')`);
  raw.close();

  const s = Store.open(dir);
  t.after(() => s.close());
  assert.deepEqual(s.listInbox().map((m) => [m.id, m.content]), [["old", "kept"]]);
  const check = new DatabaseSync(file, { readOnly: true });
  t.after(() => check.close());
  const indexes = check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'").all().map((r) => r.name);
  assert.ok(indexes.includes("messages_out_state_seq") && !indexes.includes("messages_dir_state_seq"), String(indexes));
  assert.ok(indexes.includes("messages_out_id") && !indexes.includes("messages_id"), String(indexes)); // schema 4
  const plan = check.prepare("EXPLAIN QUERY PLAN SELECT * FROM messages WHERE direction = 'out' AND state = 'queued' AND seq < 9 ORDER BY seq DESC LIMIT 5").all();
  assert.match(plan.map((r) => r.detail).join(" | "), /messages_out_state_seq/);
  // The new message path writes no replay row; a deleted inbound row still refuses its replay.
  s.acceptInbound([inbound("new", { storedAt: 3000 })]);
  assert.equal(check.prepare("SELECT count(*) AS n FROM replay").get()?.n, 0);
  const del = new DatabaseSync(file);
  del.exec("DELETE FROM messages WHERE direction = 'in'");
  del.close();
  assert.deepEqual(s.acceptInbound([inbound("old", { storedAt: 4000 }), inbound("new", { storedAt: 4000 })]), [
    { duplicate: true, storedAt: 2000 },
    { duplicate: true, storedAt: 3000 },
  ]);
});

test("a quota stores at most that many messages from a peer, counting earlier items of the same batch; duplicates still answer", (t) => {
  const { store } = openTemp(t);
  store.acceptInbound([inbound("a", { storedAt: 1 })]);
  const r = store.acceptInbound([
    inbound("b", { storedAt: 2, quota: 2 }),
    inbound("c", { storedAt: 3, quota: 2 }),
    inbound("a", { storedAt: 4, quota: 2 }),
    inbound("x", { storedAt: 5, quota: 2, peer: PEER_B }),
  ]);
  assert.deepEqual(r, [
    { duplicate: false, storedAt: 2 },
    { duplicate: false, storedAt: 0, overQuota: "messages" },
    { duplicate: true, storedAt: 1 },
    { duplicate: false, storedAt: 5 },
  ]);
  assert.deepEqual(store.listInbox({ peer: PEER_A }).map((m) => m.id).sort(), ["a", "b"]);
  // Without a quota (an accepted peer) nothing is counted.
  assert.deepEqual(store.acceptInbound([inbound("c", { storedAt: 6 })]), [{ duplicate: false, storedAt: 6 }]);
});

const signedBy = (key: string, pendingQuota = 2): InboundSender => ({ key, binding: "tofu", pendingQuota });

test("an item with its sender binds the key in the same transaction: a new sender becomes a pending peer with that key pinned", (t) => {
  const { store } = openTemp(t);
  assert.deepEqual(store.acceptInbound([inbound("m1", { storedAt: 5000, sender: signedBy(KEY_A) })]), [{ duplicate: false, storedAt: 5000 }]);
  const peer = store.getPeer(PEER_A);
  assert.deepEqual([peer?.trust, peer?.publicKey, peer?.keyBinding, peer?.firstSeen, peer?.lastSeen], ["pending", KEY_A, "tofu", 5000, 5000]);
  assert.equal(store.listInbox().length, 1);
});

test("a pending sender's items get sender.pendingQuota (earlier items of the batch count); a trusted sender's get no quota", (t) => {
  const { store } = openTemp(t);
  const r = store.acceptInbound(["a", "b", "c", "a"].map((id, i) => inbound(id, { storedAt: 100 + i, sender: signedBy(KEY_A, 2) })));
  assert.deepEqual(r, [
    { duplicate: false, storedAt: 100 },
    { duplicate: false, storedAt: 101 },
    { duplicate: false, storedAt: 0, overQuota: "messages" },
    { duplicate: true, storedAt: 100 },
  ]);
  store.setTrust(PEER_A, "trusted", 200);
  assert.deepEqual(store.acceptInbound([inbound("c", { storedAt: 300, sender: signedBy(KEY_A, 2) })]), [{ duplicate: false, storedAt: 300 }]);
});

test("a sender new to this node is not taken past sender.pendingPeers pending peers; known, accepted or removed peers still are", (t) => {
  const { store } = openTemp(t);
  const PEER_C = "200:dead:beef::c";
  const limit2: InboundSender = { ...signedBy(KEY_A, 5), pendingPeers: 2 };
  assert.deepEqual(store.acceptInbound([inbound("a1", { storedAt: 10, sender: limit2 }), inbound("b1", { storedAt: 10, peer: PEER_B, sender: limit2 })]), [
    { duplicate: false, storedAt: 10 },
    { duplicate: false, storedAt: 10 },
  ]);
  // A third stranger: not stored, and no peer row either (refused ones must not fill the peers table).
  assert.deepEqual(store.acceptInbound([inbound("c1", { storedAt: 20, peer: PEER_C, sender: limit2 })]), [{ duplicate: false, storedAt: 0, overQuota: "peers" }]);
  assert.equal(store.getPeer(PEER_C), undefined);
  assert.equal(store.getMessage("in", "c1", PEER_C), undefined);
  // The strangers already waiting keep their own quota.
  assert.deepEqual(store.acceptInbound([inbound("a2", { storedAt: 30, sender: limit2 })]), [{ duplicate: false, storedAt: 30 }]);
  // The user decides on one of them: a place is free again.
  store.setTrust(PEER_A, "trusted", 40);
  assert.deepEqual(store.acceptInbound([inbound("c1", { storedAt: 50, peer: PEER_C, sender: limit2 })]), [{ duplicate: false, storedAt: 50 }]);
  // A removed peer's stored message sent again while the places are taken is still a duplicate (its receipt).
  store.setTrust(PEER_A, "pending", 60);
  store.removePeer(PEER_C);
  assert.deepEqual(store.acceptInbound([inbound("c1", { storedAt: 70, peer: PEER_C, sender: limit2 }), inbound("c2", { storedAt: 70, peer: PEER_C, sender: limit2 })]), [
    { duplicate: true, storedAt: 50 },
    { duplicate: false, storedAt: 0, overQuota: "peers" },
  ]);
  // Without a limit (signedBy) the same sender is taken.
  assert.deepEqual(store.acceptInbound([inbound("c2", { storedAt: 80, peer: PEER_C, sender: signedBy(KEY_A, 5) })]), [{ duplicate: false, storedAt: 80 }]);
  assert.equal(store.getPeer(PEER_C)?.trust, "pending");
});

test("an item signed by another key than the pinned one is refused as a mismatch, recorded on the peer, and not stored", (t) => {
  const { store } = openTemp(t);
  store.acceptInbound([inbound("m1", { storedAt: 1000, sender: signedBy(KEY_A) })]);
  const r = store.acceptInbound([inbound("m2", { storedAt: 2000, sender: signedBy(KEY_B) }), inbound("m3", { storedAt: 2000, sender: signedBy(KEY_A) })]);
  assert.deepEqual(r, [
    { duplicate: false, storedAt: 0, refused: "mismatch" },
    { duplicate: false, storedAt: 2000 },
  ]);
  const peer = store.getPeer(PEER_A);
  assert.deepEqual([peer?.publicKey, peer?.lastKeyMismatchAt, peer?.lastMismatchKey], [KEY_A, 2000, KEY_B]);
  assert.deepEqual(store.listInbox().map((m) => m.id).sort(), ["m1", "m3"]);
});

test("a blocked sender's item is refused, even one already stored (no receipt for a blocked peer)", (t) => {
  const { store } = openTemp(t);
  store.acceptInbound([inbound("m1", { storedAt: 1000, sender: signedBy(KEY_A) })]);
  store.setTrust(PEER_A, "blocked", 1500);
  const r = store.acceptInbound([inbound("m1", { storedAt: 2000, sender: signedBy(KEY_A) }), inbound("m2", { storedAt: 2000, sender: signedBy(KEY_A) })]);
  assert.deepEqual(r, [
    { duplicate: false, storedAt: 0, refused: "blocked" },
    { duplicate: false, storedAt: 0, refused: "blocked" },
  ]);
  assert.deepEqual(store.listInbox().map((m) => m.id), ["m1"]);
});

test("binding in acceptInbound rewrites lastSeen at most once per LAST_SEEN_RESOLUTION_MS, like bindKey", (t) => {
  const { store } = openTemp(t);
  store.acceptInbound([inbound("m1", { storedAt: 1000, sender: signedBy(KEY_A) })]);
  store.acceptInbound([inbound("m2", { storedAt: 1000 + LAST_SEEN_RESOLUTION_MS - 1, sender: signedBy(KEY_A) })]);
  assert.equal(store.getPeer(PEER_A)?.lastSeen, 1000);
  store.acceptInbound([inbound("m3", { storedAt: 1000 + LAST_SEEN_RESOLUTION_MS, sender: signedBy(KEY_A) })]);
  assert.equal(store.getPeer(PEER_A)?.lastSeen, 1000 + LAST_SEEN_RESOLUTION_MS);
});
