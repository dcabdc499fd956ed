/**
 * Child process for the store tests: inserts inbound messages into `<dataDir>` in batches and prints, after each
 * batch has committed, one line per message: `<id> new|dup`. Whatever it printed is durable.
 *
 *   node store-writer.ts <dataDir> <prefix> <count> <batch> [sharedCount]
 *
 * count 0 = write until killed. With sharedCount S, ids `shared-0..S-1` (the same in every writer) are mixed in,
 * one per batch, to race the duplicate check across processes. After opening the store it writes "ready" to stderr
 * and waits until stdin has data or is closed, so that a test can start several writers at the same instant.
 *
 * It pauses 1 ms between batches, as a network-paced writer does: SQLite's busy handler polls with growing sleeps,
 * so a writer that re-takes the lock in a tight loop starves the others (measured: the second writer waited for
 * the whole run of the first).
 */
import { readSync, writeSync } from "node:fs";
import { Store, type InboundItem } from "../../src/core/store.ts";

const [dataDir, prefix, countText, batchText, sharedText] = process.argv.slice(2);
if (dataDir === undefined || prefix === undefined || countText === undefined || batchText === undefined) {
  throw new Error("usage: store-writer.ts <dataDir> <prefix> <count> <batch> [sharedCount]");
}
const count = Number(countText);
const batchSize = Number(batchText);
const shared = Number(sharedText ?? "0");
const store = Store.open(dataDir);
writeSync(2, "ready\n");
readSync(0, Buffer.alloc(1)); // blocks until "go" or EOF
const pause = new Int32Array(new SharedArrayBuffer(4));
const peer = "200:1111:2222:3333:4444:5555:6666:7777";

let i = 0;
let s = 0;
while (count === 0 || i < count || s < shared) {
  const batch: InboundItem[] = [];
  if (s < shared) batch.push(item(`shared-${s++}`));
  while (batch.length < batchSize && (count === 0 || i < count)) batch.push(item(`${prefix}-${i++}`));
  const results = store.acceptInbound(batch);
  // writeSync: the line leaves this process before the next batch starts, so a SIGKILL cannot lose a printed line
  // and cannot print a line for an uncommitted batch.
  writeSync(1, batch.map((m, k) => `${m.id} ${results[k]?.duplicate ? "dup" : "new"}\n`).join(""));
  Atomics.wait(pause, 0, 0, 1);
}
store.close();

function item(id: string): InboundItem {
  const now = Date.now();
  return { id, peer, kind: "chat", content: `message ${id} `.repeat(8), ts: now, protocol: 2, storedAt: now };
}
