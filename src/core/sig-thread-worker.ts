/**
 * The worker side of sig-thread.ts: each message is a batch of jobs, answered with one message of results in order.
 * `workerData.seed` is the node's own key seed (for receipt signatures); it never leaves this process.
 */
import { parentPort, workerData } from "node:worker_threads";
import { keyPairFromSeed } from "./keys.ts";
import { runSigJob, type SigJob } from "./sig-thread.ts";

const self = keyPairFromSeed(new Uint8Array((workerData as { seed: Uint8Array }).seed));
parentPort!.on("message", (jobs: SigJob[]) => {
  parentPort!.postMessage(jobs.map((j) => runSigJob(self, j)));
});
