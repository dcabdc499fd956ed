/**
 * The worker side of the commit thread (batcher.ts): its own Store connection; each message is one batch of inbound
 * items, answered once its transaction committed (fsynced) with the outcomes, or with `{ error }` if it did not.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Store } from "./store.ts";

const { dataDir, walAutoCheckpoint } = workerData as { dataDir: string; walAutoCheckpoint?: number };
const store = Store.open(dataDir);
if (walAutoCheckpoint !== undefined) store.setWalAutoCheckpoint(walAutoCheckpoint);
parentPort!.on("message", (items: Parameters<Store["acceptInbound"]>[0]) => {
  try {
    parentPort!.postMessage({ results: store.acceptInbound(items) });
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
});
