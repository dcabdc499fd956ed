/**
 * Store: several processes on one data dir (the gateway service and CLI commands do this), and a writer killed
 * mid-stream. Child processes run test/helpers/store-writer.ts and store-claimer.ts with this Node.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { Store } from "../../src/core/store.ts";
import { completeLines, outbound, runHelper, startHelper, tempDir, type ChildResult } from "../helpers/store-fixture.ts";

test("two processes writing at once into a fresh data dir lose nothing and store nothing twice", async (t) => {
  const dir = tempDir(t);
  const PER_WRITER = 2000;
  const SHARED = 100; // ids both writers send: exactly one of them may store each
  // Both open the fresh file at once (racing the migration), then both start writing at the same instant.
  // ~350 fsync'd commits each: generous, because a loaded machine (the whole suite at once) makes fsync slow.
  const writers = ["a", "b"].map((p) => startHelper(t, "store-writer.ts", [dir, p, String(PER_WRITER), "8", String(SHARED)], { timeoutMs: 240_000 }));
  await Promise.all(writers.map((w) => w.ready));
  for (const w of writers) w.go();
  const [a, b] = (await Promise.all(writers.map((w) => w.done))) as [ChildResult, ChildResult];
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);

  const printed = [...completeLines(a.stdout), ...completeLines(b.stdout)].map((l) => l.split(" "));
  const newShared = printed.filter(([id, st]) => id?.startsWith("shared-") && st === "new").length;
  assert.equal(newShared, SHARED, "each shared id was new for exactly one writer");

  const store = Store.open(dir);
  t.after(() => store.close());
  const rows = store.listInbox({ limit: 10 * PER_WRITER }).reverse();
  const ids = rows.map((m) => m.id);
  const order = ids.map((id) => id[0]).filter((c) => c !== "s").join("");
  assert.ok((order.match(/ab|ba/g)?.length ?? 0) > 10, "the two writers' commits interleaved (the test raced them)");
  assert.equal(ids.length, 2 * PER_WRITER + SHARED);
  assert.equal(new Set(ids).size, ids.length, "no id twice");
  for (let i = 0; i < PER_WRITER; i++) {
    assert.ok(ids.includes(`a-${i}`) && ids.includes(`b-${i}`), `a-${i} and b-${i} present`);
  }
});

test("two processes claiming due rows at once never claim the same row", async (t) => {
  const dir = tempDir(t);
  const N = 1000;
  const store = Store.open(dir);
  for (let i = 0; i < N; i++) store.enqueueOutbound(outbound(`o${i}`), 0);
  store.close();
  const claimers = [0, 1].map(() => startHelper(t, "store-claimer.ts", [dir, "7"]));
  await Promise.all(claimers.map((c) => c.ready));
  for (const c of claimers) c.go();
  const [a, b] = (await Promise.all(claimers.map((c) => c.done))) as [ChildResult, ChildResult];
  const la = completeLines(a.stdout).length;
  assert.ok(la > 0 && la < N, `both claimers got rows (${la} and ${N - la})`);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const claimed = [...completeLines(a.stdout), ...completeLines(b.stdout)];
  assert.equal(claimed.length, N, "every row claimed exactly once");
  assert.equal(new Set(claimed).size, N);
});

test("a writer killed with SIGKILL mid-stream: every id it printed is stored, and the file is sound", async (t) => {
  const dir = tempDir(t);
  const r = await runHelper(t, "store-writer.ts", [dir, "k", "0", "8"], { killAfterLines: 3000 });
  assert.equal(r.signal, "SIGKILL", r.stderr);
  const printed = completeLines(r.stdout).map((l) => l.split(" ")[0] as string);
  assert.ok(printed.length >= 3000);

  // integrity first, on the file exactly as the killed writer left it (its WAL is recovered on this open)
  const raw = new DatabaseSync(join(dir, "peers.db"));
  assert.equal(raw.prepare("PRAGMA integrity_check").get()?.integrity_check, "ok");
  raw.close();

  const store = Store.open(dir);
  t.after(() => store.close());
  const stored = new Set(store.listInbox({ limit: 1e9 }).map((m) => m.id));
  for (const id of printed) assert.ok(stored.has(id), `${id} was acknowledged but is missing`);
  assert.ok(stored.size >= printed.length);
  assert.deepEqual(store.quickCheck(), []);
  // and the store keeps working where the writer stopped
  store.acceptInbound([{ id: "after", peer: "200::1", kind: "chat", content: "x", ts: 1, protocol: 2, storedAt: 1 }]);
});
