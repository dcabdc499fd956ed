/** Store: the outbound queue: enqueue, leases, retry/failure/delivery transitions. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Store } from "../../src/core/store.ts";
import { PEER_B, inbound, outbound, openTemp } from "../helpers/store-fixture.ts";

const RECEIPT = '{"v":2,"type":"receipt"}';

test("enqueueOutbound queues a message due at once", (t) => {
  const { store } = openTemp(t);
  const m = store.enqueueOutbound(outbound("o1", { expiresAt: 9000 }), 100);
  assert.equal(m.direction, "out");
  assert.equal(m.state, "queued");
  assert.equal(m.attempts, 0);
  assert.equal(m.nextAttemptAt, 100);
  assert.equal(m.createdAt, 100);
  assert.equal(m.expiresAt, 9000);
  assert.deepEqual(store.getMessage("out", "o1"), m);
  assert.equal(store.counts().queued, 1);
});

test("enqueueing the same id again returns the existing row; other content or kind under that id is refused", (t) => {
  const { store } = openTemp(t);
  const m = store.enqueueOutbound(outbound("o1"), 100);
  assert.deepEqual(store.enqueueOutbound(outbound("o1"), 200), m);
  assert.throws(() => store.enqueueOutbound(outbound("o1", { content: "else" }), 200), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.throws(() => store.enqueueOutbound(outbound("o1", { kind: "typing" }), 200), { code: "P2P_ERR_BAD_ARGUMENT" });
  assert.equal(store.listOutbox().length, 1);
});

test("claimDue leases due rows oldest first; a second claimer gets none of them until the lease runs out", (t) => {
  const { dir, store } = openTemp(t);
  for (let i = 0; i < 5; i++) store.enqueueOutbound(outbound(`o${i}`), 100 + i);
  store.enqueueOutbound(outbound("later"), 10_000);
  const other = Store.open(dir); // a second connection, as the CLI would have
  t.after(() => other.close());

  const a = store.claimDue(1000, 3, 500);
  assert.deepEqual(a.map((m) => m.id), ["o0", "o1", "o2"]);
  const b = other.claimDue(1000, 10, 500);
  assert.deepEqual(b.map((m) => m.id), ["o3", "o4"], "leased rows and rows not yet due are skipped");
  assert.deepEqual(other.claimDue(1499, 10, 500), []);
  assert.deepEqual(other.claimDue(1500, 10, 500).map((m) => m.id), ["o0", "o1", "o2", "o3", "o4"], "leases expired");
  assert.deepEqual(store.claimDue(10_000, 0, 500), []);
});

test("a row queued with a lease is the caller's until it ends: no claimDue, here or in another process, takes it", (t) => {
  const { store, dir } = openTemp(t);
  const other = Store.open(dir);
  t.after(() => other.close());
  store.enqueueOutbound(outbound("mine"), 100, 500);
  store.enqueueOutbound(outbound("free"), 100);
  assert.deepEqual(other.claimDue(100, 10, 10_000).map((m) => m.id), ["free"], "the leased row is skipped from the start");
  assert.deepEqual(other.claimDue(599, 10, 500), []);
  assert.deepEqual(other.claimDue(600, 10, 500).map((m) => m.id), ["mine"], "once the lease ran out, it is anyone's");
  assert.equal(store.enqueueOutbound(outbound("mine"), 700, 500).id, "mine", "queueing the same id again returns the row");
  assert.deepEqual(store.claimDue(800, 10, 500), [], "and leaves the current lease alone (no second lease taken)");
});

test("claimDue with nothing due takes no write lock: another process holding one does not hold it up", (t) => {
  const { dir, store } = openTemp(t, { busyTimeoutMs: 200 });
  store.enqueueOutbound(outbound("later"), 10_000);
  const holder = new DatabaseSync(join(dir, "peers.db")); // another process's long write transaction
  t.after(() => holder.close());
  holder.exec("BEGIN IMMEDIATE");
  try {
    assert.deepEqual(store.claimDue(1000, 10, 500), [], "answered from a read, without waiting for the lock");
    // Something due still needs the lock: the claim waits for it (here, past the busy timeout) and says so.
    assert.throws(() => store.claimDue(10_000, 10, 500), { code: "P2P_ERR_STORAGE" });
  } finally {
    holder.exec("ROLLBACK");
  }
  assert.deepEqual(store.claimDue(10_000, 10, 500).map((m) => m.id), ["later"]);
});

test("after the clock ran ahead and was set back, leases and retries it left are not waited out", (t) => {
  const { store } = openTemp(t);
  const now = 1_800_000_000_000;
  const year = 365 * 86_400_000;
  store.enqueueOutbound(outbound("leased", { expiresAt: now + 86_400_000 }), now + year, 60_000); // queued by a process whose clock was a year ahead
  for (const id of ["scheduled", "fine"]) store.enqueueOutbound(outbound(id, { expiresAt: now + 86_400_000 }), now - 1000);
  store.markRetry("scheduled", now + year, "backoff under the wrong clock");
  store.markRetry("fine", now + 30 * 60_000, "an ordinary backoff");
  const claimed = store.claimDue(now, 10, 60_000).map((m) => m.id).sort();
  assert.deepEqual(claimed, ["leased", "scheduled"], "a lease or a retry further ahead than any the outbox sets counts as ended");
  assert.equal(store.getMessage("out", "fine")?.nextAttemptAt, now + 30 * 60_000, "an ordinary backoff is kept");
  for (const id of claimed) store.markDelivered(id, RECEIPT, now);
  assert.deepEqual(store.claimDue(now + 30 * 60_000, 10, 60_000).map((m) => m.id), ["fine"]);
  assert.deepEqual(store.claimDue(now + 30 * 60_000 + 1000, 10, 60_000), [], "a lease taken now still holds");
});

test("markRetry counts the attempt, records the error, releases the lease and reschedules", (t) => {
  const { store } = openTemp(t);
  store.enqueueOutbound(outbound("o1"), 100);
  store.claimDue(100, 10, 60_000);
  store.markRetry("o1", 5000, "ECONNREFUSED");
  const m = store.getMessage("out", "o1");
  assert.equal(m?.attempts, 1);
  assert.equal(m?.lastError, "ECONNREFUSED");
  assert.equal(m?.nextAttemptAt, 5000);
  assert.equal(m?.state, "queued");
  assert.deepEqual(store.claimDue(4999, 10, 60_000), [], "not due yet");
  assert.deepEqual(store.claimDue(5000, 10, 60_000).map((x) => x.id), ["o1"], "lease was released");
});

test("markFailed ends a queued row; failed rows are never claimed", (t) => {
  const { store } = openTemp(t);
  store.enqueueOutbound(outbound("o1"), 100);
  store.claimDue(100, 10, 60_000);
  store.markFailed("o1", "expired");
  const m = store.getMessage("out", "o1");
  assert.equal(m?.state, "failed");
  assert.equal(m?.lastError, "expired");
  assert.deepEqual(store.claimDue(1e12, 10, 1), []);
  assert.equal(store.counts().failed, 1);
  assert.deepEqual(store.listOutbox({ state: "failed" }).map((x) => x.id), ["o1"]);
});

test("markDelivered records the receipt; repeating it is a no-op; a delivered row never goes back", (t) => {
  const { store } = openTemp(t);
  store.enqueueOutbound(outbound("o1"), 100);
  store.claimDue(100, 10, 60_000);
  store.markDelivered("o1", RECEIPT, 300);
  const m = store.getMessage("out", "o1");
  assert.equal(m?.state, "delivered");
  assert.equal(m?.receipt, RECEIPT);
  assert.equal(m?.deliveredAt, 300);
  store.markDelivered("o1", '{"other":1}', 999);
  store.markRetry("o1", 1, "late error");
  store.markFailed("o1", "late failure");
  assert.deepEqual(store.getMessage("out", "o1"), m);
  assert.deepEqual(store.claimDue(1e12, 10, 1), []);
  store.markDelivered("no-such-id", RECEIPT, 1); // ignored
});

test("markDelivered without a receipt (a v1 peer) records state 'sent'", (t) => {
  const { store } = openTemp(t);
  store.enqueueOutbound(outbound("o1", { protocol: 1 }), 100);
  store.markDelivered("o1", null, 300);
  const m = store.getMessage("out", "o1");
  assert.equal(m?.state, "sent");
  assert.equal(m?.receipt, null);
  assert.equal(m?.deliveredAt, 300);
});

test("a receipt arriving for a row already marked failed still records the delivery (proof wins)", (t) => {
  const { store } = openTemp(t);
  store.enqueueOutbound(outbound("o1"), 100);
  store.markFailed("o1", "expired");
  store.markDelivered("o1", RECEIPT, 300);
  assert.equal(store.getMessage("out", "o1")?.state, "delivered");
});

test("listOutbox pages newest first and filters by state", (t) => {
  const { store } = openTemp(t);
  for (let i = 0; i < 5; i++) store.enqueueOutbound(outbound(`o${i}`, i < 2 ? { peer: PEER_B } : {}), i);
  store.markFailed("o1", "x");
  const page = store.listOutbox({ limit: 2 });
  assert.deepEqual(page.map((m) => m.id), ["o4", "o3"]);
  assert.deepEqual(store.listOutbox({ beforeSeq: page[1]?.seq }).map((m) => m.id), ["o2", "o1", "o0"]);
  assert.deepEqual(store.listOutbox({ state: "queued" }).map((m) => m.id), ["o4", "o3", "o2", "o0"]);
  assert.equal(store.counts().inbox, 0, "outbound rows are not in the inbox");
  assert.throws(() => store.enqueueOutbound(outbound("o9", { peer: undefined as unknown as string }), 1), {
    code: "P2P_ERR_BAD_ARGUMENT",
  });
});

test("rescheduleQueued makes waiting queued messages due now, and leaves delivered ones alone", (t) => {
  const { store } = openTemp(t);
  store.enqueueOutbound(outbound("waiting"), 100);
  store.markRetry("waiting", 600_000, "unreachable");
  store.enqueueOutbound(outbound("done"), 100);
  store.markDelivered("done", RECEIPT, 150);
  assert.equal(store.claimDue(200, 10, 1000).length, 0, "nothing is due before");
  assert.equal(store.rescheduleQueued(200), 1);
  assert.deepEqual(store.claimDue(200, 10, 1000).map((m) => m.id), ["waiting"]);
  assert.equal(store.getMessage("out", "done")!.state, "delivered");
});

test("rescheduleQueued for one peer moves only that peer's waiting messages", (t) => {
  const { store } = openTemp(t);
  store.enqueueOutbound(outbound("to-a"), 100);
  store.enqueueOutbound(outbound("to-b", { peer: PEER_B }), 100);
  for (const id of ["to-a", "to-b"]) store.markRetry(id, 600_000, "unreachable");
  assert.equal(store.rescheduleQueued(200, PEER_B), 1);
  assert.deepEqual(store.claimDue(200, 10, 1000).map((m) => m.id), ["to-b"]);
});

test("an outbound message is found by id alone through an index; inbound rows are not in that index (schema 4)", (t) => {
  const { dir, store } = openTemp(t);
  store.enqueueOutbound(outbound("o1"), 100);
  store.acceptInbound([inbound("o1", { storedAt: 200 })]); // the same id inbound: another row, another direction
  assert.equal(store.getMessage("out", "o1")?.direction, "out");
  assert.equal(store.getMessage("in", "o1")?.direction, "in");
  const { DatabaseSync } = process.getBuiltinModule("node:sqlite");
  const check = new DatabaseSync(`${dir}/peers.db`, { readOnly: true });
  t.after(() => check.close());
  const plan = (sql: string) => check.prepare(`EXPLAIN QUERY PLAN ${sql}`).all().map((r) => r.detail).join(" | ");
  // The shapes of the outbox's marks and of getMessage("out", id).
  assert.match(plan("UPDATE messages SET state = 'failed' WHERE direction = 'out' AND id = ? AND state = 'queued'"), /messages_out_id/);
  assert.match(plan("SELECT * FROM messages WHERE direction = 'out' AND id = ? ORDER BY seq LIMIT 1"), /messages_out_id/);
  const entries = check.prepare("SELECT count(*) AS n FROM messages INDEXED BY messages_out_id WHERE direction = 'out' AND id > ''").get()?.n;
  assert.equal(entries, 1, "only the outbound row is indexed by id");
});
