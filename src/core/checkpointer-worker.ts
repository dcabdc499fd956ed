/**
 * The worker side of checkpointer.ts: its own connection to peers.db; each message asks for one PASSIVE checkpoint
 * (copy what the WAL holds into the database file and fsync it, without waiting for readers or writers) and is
 * answered with SQLite's result row, or `{ error }`.
 */
import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";

const db = new DatabaseSync((workerData as { file: string }).file, { enableForeignKeyConstraints: false });
db.exec("PRAGMA trusted_schema = OFF");
db.exec("PRAGMA synchronous = FULL");
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
parentPort!.on("message", () => {
  try {
    parentPort!.postMessage({ ...checkpoint.get() });
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
});
