/**
 * The commit batcher answers each message only after its transaction committed, with the same outcome wherever the
 * transaction ran: inline for a lone message, in the commit thread for a batch, inline again if that thread fails.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CommitBatcher } from "../../src/core/batcher.ts";
import { Store } from "../../src/core/store.ts";
import { PEER_A, PEER_B, inbound, openTemp, tempDir } from "../helpers/store-fixture.ts";

/** 20 messages in one event-loop turn (one batch), the last two repeating ids of the first two. */
function batch() {
  const items = Array.from({ length: 18 }, (_, i) => inbound(`m${i}`, { peer: i % 2 ? PEER_A : PEER_B, storedAt: 1000 + i }));
  return [...items, inbound("m0", { peer: PEER_B, storedAt: 5000 }), inbound("m1", { peer: PEER_A, storedAt: 5000 })];
}
const expected = [
  ...Array.from({ length: 18 }, (_, i) => ({ duplicate: false, storedAt: 1000 + i })),
  { duplicate: true, storedAt: 1000 },
  { duplicate: true, storedAt: 1001 },
];

test("a batch commits in the commit thread; the answers are those of an inline commit and every row is readable", async (t) => {
  const { dir, store } = openTemp(t);
  let commits = 0;
  const b = new CommitBatcher(store, { afterCommit: () => commits++ });
  t.after(() => b.close());
  assert.deepEqual(await Promise.all(batch().map((i) => b.add(i))), expected);
  assert.equal(b.committedByThread, 20, "the thread, not the test's thread, ran the transaction");
  assert.equal(commits, 1, "one transaction for the batch");
  assert.equal(store.counts().inbox, 18, "this thread's connection sees the committed rows");

  // The same batch again, compared with a store that commits inline only.
  const inline = openTemp(t).store;
  const ib = new CommitBatcher(inline, { thread: false });
  assert.deepEqual(await Promise.all(batch().map((i) => ib.add(i))), expected);
  assert.equal(ib.committedByThread, 0);
  assert.deepEqual(
    store.listInbox({ limit: 100 }).map((m) => [m.id, m.peer, m.createdAt]),
    inline.listInbox({ limit: 100 }).map((m) => [m.id, m.peer, m.createdAt]),
  );
  const other = Store.open(dir);
  t.after(() => other.close());
  assert.equal(other.counts().inbox, 18);
});

test("a lone message commits inline (no hand-off on the shortest path), at once when nothing else is on its way", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] }); // no timer runs: the commit must not wait for one
  const { store } = openTemp(t);
  const b = new CommitBatcher(store, { coming: () => 0 });
  t.after(() => b.close());
  assert.deepEqual(await b.add(inbound("solo", { storedAt: 7 })), { duplicate: false, storedAt: 7 });
  assert.equal(b.committedByThread, 0);
  assert.equal(store.getMessage("in", "solo", inbound("x").peer)?.createdAt, 7);
});

test("a host sharing its event loop (loneInline: false) has a lone message committed in the commit thread too", async (t) => {
  const { store } = openTemp(t);
  const b = new CommitBatcher(store, { coming: () => 0, loneInline: false });
  t.after(() => b.close());
  assert.deepEqual(await b.add(inbound("solo", { storedAt: 7 })), { duplicate: false, storedAt: 7 });
  assert.equal(b.committedByThread, 1, "not on the caller's thread");
  assert.equal(store.getMessage("in", "solo", inbound("x").peer)?.createdAt, 7, "committed and visible here");
});

test("messages arriving while the thread commits form the next batch; all are stored once, in order", async (t) => {
  const { store } = openTemp(t);
  const b = new CommitBatcher(store);
  t.after(() => b.close());
  const first = batch().map((i) => b.add(i));
  await new Promise((r) => setImmediate(r)); // the first batch is now in the thread
  const second = Array.from({ length: 30 }, (_, i) => b.add(inbound(`n${i}`, { storedAt: 2000 + i })));
  assert.deepEqual(await Promise.all(first), expected);
  const out = await Promise.all(second);
  assert.ok(out.every((o, i) => !o.duplicate && o.storedAt === 2000 + i));
  assert.equal(store.counts().inbox, 48);
  assert.deepEqual(store.listInbox({ limit: 2 }).map((m) => m.id), ["n29", "n28"], "newest last committed");
});

test("a commit thread that cannot start: batches commit inline, nothing is lost, and after three failures it is not tried again", async (t) => {
  const { store } = openTemp(t);
  const broken = join(tempDir(t, "declaw-batcher-"), "broken-worker.mjs");
  writeFileSync(broken, 'throw new Error("this worker never starts");\n');
  const b = new CommitBatcher(store, { workerUrl: pathToFileURL(broken) });
  t.after(() => b.close());
  for (let round = 0; round < 3; round++) {
    const out = await Promise.all(Array.from({ length: 5 }, (_, i) => b.add(inbound(`r${round}-${i}`, { storedAt: 100 * round + i }))));
    assert.deepEqual(out.map((o) => o.storedAt), [0, 1, 2, 3, 4].map((i) => 100 * round + i), `round ${round + 1}`);
  }
  assert.equal(b.inlineOnly, true);
  assert.equal(b.committedByThread, 0);
  assert.equal(store.counts().inbox, 15);
});

test("a commit thread that dies after committing, before answering: the batch is committed again inline, stored once", async (t) => {
  const { store } = openTemp(t);
  const dying = join(tempDir(t, "declaw-batcher-"), "dying-worker.mjs");
  const storeUrl = new URL("../../src/core/store.ts", import.meta.url).href;
  writeFileSync(
    dying,
    `import { parentPort, workerData } from "node:worker_threads";
import { Store } from ${JSON.stringify(storeUrl)};
const store = Store.open(workerData.dataDir);
parentPort.on("message", (items) => { store.acceptInbound(items); process.exit(1); });
`,
  );
  const b = new CommitBatcher(store, { workerUrl: pathToFileURL(dying) });
  t.after(() => b.close());
  const out = await Promise.all(batch().map((i) => b.add(i)));
  // Every message is answered with the storedAt of the commit that really stored it (the thread's), as a duplicate.
  assert.deepEqual(out.map((o) => o.storedAt), expected.map((e) => e.storedAt));
  assert.ok(out.every((o) => o.duplicate));
  assert.equal(b.committedByThread, 0);
  assert.equal(store.counts().inbox, 18, "each message stored once");
});

test("a batch the thread could not commit is refused as a storage failure: nothing is acknowledged", async (t) => {
  const { store } = openTemp(t);
  const full = join(tempDir(t, "declaw-batcher-"), "full-disk-worker.mjs");
  writeFileSync(full, 'import { parentPort } from "node:worker_threads";\nparentPort.on("message", () => parentPort.postMessage({ error: "database or disk is full" }));\n');
  const b = new CommitBatcher(store, { workerUrl: pathToFileURL(full) });
  t.after(() => b.close());
  const out = await Promise.allSettled(batch().map((i) => b.add(i)));
  for (const o of out) {
    assert.equal(o.status, "rejected");
    assert.equal((o as PromiseRejectedResult).reason.code, "P2P_ERR_STORAGE");
    assert.match((o as PromiseRejectedResult).reason.message, /disk is full/);
  }
  assert.equal(b.inlineOnly, false, "an answered error is not a failed thread");
});

test("close lets the batch in the thread finish before it stops", async (t) => {
  const { store } = openTemp(t);
  const b = new CommitBatcher(store);
  const pending = Promise.all(batch().map((i) => b.add(i)));
  await new Promise((r) => setImmediate(r));
  await b.close();
  assert.deepEqual(await pending, expected);
  assert.equal(store.counts().inbox, 18);
  assert.deepEqual(await b.add(inbound("after", { storedAt: 9 })), { duplicate: false, storedAt: 9 }, "inline after close");
});

test("while more messages are on their way, a small batch waits for them and commits with them in one transaction", async (t) => {
  const { store } = openTemp(t);
  let coming = 2;
  let commits = 0;
  const b = new CommitBatcher(store, { coming: () => coming, afterCommit: () => commits++ });
  t.after(() => b.close());
  const first = b.add(inbound("g0", { storedAt: 1 }));
  await new Promise((r) => setImmediate(r));
  assert.equal(store.counts().inbox, 0, "not committed while two more are coming");
  coming = 1;
  const second = b.add(inbound("g1", { storedAt: 2 }));
  coming = 0;
  const third = b.add(inbound("g2", { storedAt: 3 }));
  assert.deepEqual(await Promise.all([first, second, third]), [1, 2, 3].map((s) => ({ duplicate: false, storedAt: s })));
  assert.equal(commits, 1, "one transaction for the three");
  assert.equal(b.committedByThread, 3);
});

test("a batch waiting for messages that never come commits at the wait's deadline; a full batch does not wait", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { store } = openTemp(t);
  let commits = 0;
  const b = new CommitBatcher(store, { coming: () => 5, afterCommit: () => commits++ });
  t.after(() => b.close());
  const alone = b.add(inbound("alone", { storedAt: 1 }));
  await new Promise((r) => setImmediate(r));
  assert.equal(commits, 0, "waiting for the five on their way");
  t.mock.timers.tick(2);
  assert.deepEqual(await alone, { duplicate: false, storedAt: 1 });
  const full = await Promise.all(Array.from({ length: 16 }, (_, i) => b.add(inbound(`f${i}`, { storedAt: 10 + i }))));
  assert.ok(full.every((o, i) => !o.duplicate && o.storedAt === 10 + i), "committed with no timer run");
  assert.equal(commits, 2, "the lone message, then the sixteen in one transaction");
  assert.equal(store.counts().inbox, 17);
});

test("close commits a batch that was waiting for more, without waiting for the deadline", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] }); // the wait's deadline never comes
  const { store } = openTemp(t);
  const b = new CommitBatcher(store, { coming: () => 3 });
  const pending = Promise.all([b.add(inbound("w0", { storedAt: 1 })), b.add(inbound("w1", { storedAt: 2 }))]);
  await new Promise((r) => setImmediate(r));
  await b.close();
  assert.deepEqual(await pending, [1, 2].map((s) => ({ duplicate: false, storedAt: s })));
  assert.equal(store.counts().inbox, 2);
});
