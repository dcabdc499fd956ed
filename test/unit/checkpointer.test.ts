/**
 * The checkpointer copies the WAL into the database file from its own thread after writes, so that no commit has to;
 * whatever happens to its worker, nothing written is lost and SQLite's own checkpointing takes over again.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Checkpointer } from "../../src/core/checkpointer.ts";
import { Store } from "../../src/core/store.ts";
import { inbound, openTemp, tempDir } from "../helpers/store-fixture.ts";

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Writes `n` messages in transactions of 10, telling the checkpointer after each, as the commit batcher does. */
function write(store: Store, cp: Checkpointer, from: number, n: number): void {
  for (let i = from; i < from + n; i += 10) {
    store.acceptInbound(Array.from({ length: 10 }, (_, j) => inbound(`m${i + j}`, { storedAt: 1000 + i + j })));
    cp.written();
  }
}

test("after writes, its worker moves the WAL into the database file; the writer's own checkpoints are only a backstop", async (t) => {
  const { dir, store } = openTemp(t);
  const cp = new Checkpointer(store);
  t.after(() => cp.close());
  const dbBytes = () => statSync(join(dir, "peers.db")).size;
  assert.equal(store.walAutoCheckpoint, 1000, "SQLite's default until the worker has shown it works");

  const before = dbBytes();
  write(store, cp, 0, 200); // well under 1000 WAL pages: SQLite itself would not have checkpointed yet
  await until("a checkpoint", () => cp.checkpoints >= 1);
  assert.ok(dbBytes() > before, `the database file grew from the WAL (${before} -> ${dbBytes()} bytes)`);
  assert.equal(store.walAutoCheckpoint, 4000);

  // Writes during and after a checkpoint get a later one; nothing is lost or doubled.
  write(store, cp, 200, 200);
  await until("a second checkpoint", () => cp.checkpoints >= 2);
  assert.equal(store.counts().inbox, 400);
  const other = Store.open(dir);
  try {
    assert.equal(other.counts().inbox, 400, "another connection reads every message");
    assert.equal(other.listInbox({ limit: 1 })[0]!.id, "m399");
  } finally {
    other.close();
  }

  await cp.close();
  assert.equal(store.walAutoCheckpoint, 1000, "closed: the checkpointing is SQLite's again");
  cp.written(); // a no-op once closed
  assert.equal(cp.checkpoints, 2);
});

test("a worker that cannot start is given up after three tries; writes go on with SQLite's own checkpointing", async (t) => {
  const { store } = openTemp(t);
  const broken = join(tempDir(t, "declaw-ckpt-"), "broken-worker.mjs");
  writeFileSync(broken, 'throw new Error("this worker never starts");\n');
  const cp = new Checkpointer(store, { workerUrl: pathToFileURL(broken) });
  t.after(() => cp.close());
  for (let round = 0; round < 3; round++) {
    assert.equal(cp.givenUp, false, `still trying before write round ${round + 1}`);
    write(store, cp, round * 10, 10);
    await new Promise((r) => setTimeout(r, 300)); // the timer fires, a worker starts and fails
  }
  await until("giving up", () => cp.givenUp);
  assert.equal(cp.checkpoints, 0);
  assert.equal(store.walAutoCheckpoint, 1000);
  write(store, cp, 30, 10); // no new worker, no error
  assert.equal(store.counts().inbox, 40);
});
