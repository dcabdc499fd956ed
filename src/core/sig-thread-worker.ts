/**
 * The worker side of sig-thread.ts: each message is a batch of jobs (packJobs' buffer), answered in order, in messages
 * of ANSWER_GROUP results as soon as that many are done, and the rest at the end of the batch (a message moves on to
 * its commit without waiting for the whole batch).
 * `workerData.seed` is the node's own key seed (for receipt signatures); it never leaves this process.
 */
import { parentPort, workerData } from "node:worker_threads";
import { keyPairFromSeed } from "./keys.ts";
import { ANSWER_GROUP, runSigJob, unpackJobs, type SigResult } from "./sig-thread.ts";

const self = keyPairFromSeed(new Uint8Array((workerData as { seed: Uint8Array }).seed));
parentPort!.on("message", (packed: Uint8Array) => {
  let done: SigResult[] = [];
  for (const j of unpackJobs(packed)) {
    done.push(runSigJob(self, j));
    if (done.length === ANSWER_GROUP) {
      parentPort!.postMessage(done);
      done = [];
    }
  }
  if (done.length > 0) parentPort!.postMessage(done);
});
