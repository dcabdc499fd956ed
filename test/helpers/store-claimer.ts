/**
 * Child process for the store tests: claims due outbound rows with a long lease until none are left, printing each
 * claimed id. Two of these racing on one data dir must never print the same id. Like store-writer.ts, it writes
 * "ready" to stderr after opening and waits for stdin before it starts.
 *
 *   node store-claimer.ts <dataDir> <limit>
 */
import { readSync, writeSync } from "node:fs";
import { Store } from "../../src/core/store.ts";

const [dataDir, limitText] = process.argv.slice(2);
if (dataDir === undefined || limitText === undefined) throw new Error("usage: store-claimer.ts <dataDir> <limit>");
const store = Store.open(dataDir);
writeSync(2, "ready\n");
readSync(0, Buffer.alloc(1));
const pause = new Int32Array(new SharedArrayBuffer(4));
const LEASE_MS = 600_000;
for (;;) {
  const rows = store.claimDue(Date.now(), Number(limitText), LEASE_MS);
  if (rows.length === 0) break;
  writeSync(1, rows.map((r) => `${r.id}\n`).join(""));
  Atomics.wait(pause, 0, 0, 1); // a real outbox sends between claims (see store-writer.ts on lock starvation)
}
store.close();
