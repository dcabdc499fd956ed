/**
 * The worker side of sig-thread.ts: each message is a batch of jobs (packJobs' buffer), answered with one message per
 * job, in order, as soon as that job is done (a message moves on to its commit without waiting for the rest of its
 * batch).
 * `workerData.seed` is the node's own key seed (for receipt signatures); it never leaves this process.
 */
import { parentPort, workerData } from "node:worker_threads";
import { keyPairFromSeed } from "./keys.ts";
import { runSigJob, unpackJobs } from "./sig-thread.ts";

const self = keyPairFromSeed(new Uint8Array((workerData as { seed: Uint8Array }).seed));
parentPort!.on("message", (packed: Uint8Array) => {
  for (const j of unpackJobs(packed)) parentPort!.postMessage(runSigJob(self, j));
});
