/**
 * Signature work off the event loop when requests overlap. Under load the peer server's main thread was the
 * bottleneck (it verified every envelope and signed every receipt itself) while other cores idled; in the OpenClaw
 * gateway that main thread is also the gateway's. A single worker thread takes both jobs here, in batches: one
 * hand-off per event-loop turn carries every job that turn produced, so the hand-off cost is shared. Answers come
 * back one per job as each is done: a batch answered as a whole made its messages reach the commit together, and the
 * worker then idled while they were stored (per-job answers: +8% messages/s at 32 in flight, median of 12 rounds).
 *
 * One lifecycle path: the worker starts on first use, stops after IDLE_MS without jobs (its ~20 MB are given back
 * when the node is quiet) and on close(). Whatever happens to it, no job is lost or failed because of it: if the
 * worker dies or errors, its pending jobs are done inline, and so is every job past MAX_PENDING (which also gives a
 * flood the natural back-pressure of inline work); a worker that keeps failing is given up for the process. The
 * result is always the same as `verifyBytes` / `signBytes`.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { signBytes, verifyBytes, type KeyPair } from "./keys.ts";

/** Verify `sig` over `data` by `key`; if valid and `receipt` is given, also sign `receipt` with our key. */
export interface SigJob {
  key: Uint8Array;
  data: Uint8Array;
  sig: Uint8Array;
  receipt?: Uint8Array;
}
export interface SigResult {
  valid: boolean;
  /** Our signature over job.receipt (only when the job's signature was valid). */
  receiptSig?: Uint8Array;
}

const IDLE_MS = 10_000;
/**
 * Jobs waiting on the worker beyond which new ones are done inline. Small on purpose: honest load at 32 requests in
 * flight never reaches it, and a flood of forgeries cannot queue more than ~10 ms of verification ahead of a
 * trusted peer's message (past it, inline work slows the flood's intake instead).
 */
const MAX_PENDING = 64;
/** The worker holds no data: a small heap keeps its memory small (running out only means inline work, see above). */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };
/** Workers in a row that failed before answering anything, after which this process stays inline. */
const MAX_FAILED_STARTS = 3;
const WORKER_URL = new URL(`./sig-thread-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Pending {
  job: SigJob;
  resolve: (r: SigResult) => void;
}

/** The job done on the calling thread (also the worker's definition of it). */
export function runSigJob(self: KeyPair, job: SigJob): SigResult {
  const valid = verifyBytes(job.key, job.data, job.sig);
  return valid && job.receipt ? { valid, receiptSig: signBytes(self, job.receipt) } : { valid };
}

export class SignatureThread {
  readonly #self: KeyPair;
  readonly #workerUrl: URL;
  #failedInARow = 0;
  #worker: Worker | undefined;
  /** Batches posted to the worker, oldest first (it answers them in order). */
  #inWorker: Pending[][] = [];
  #next: Pending[] = [];
  #pending = 0;
  #answeredByWorker = 0;
  #flushScheduled = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /** `workerUrl` is for tests (a worker that fails); the default is sig-thread-worker next to this file. */
  constructor(self: KeyPair, options: { workerUrl?: URL } = {}) {
    this.#self = self;
    this.#workerUrl = options.workerUrl ?? WORKER_URL;
  }

  /** True once workers kept failing (MAX_FAILED_STARTS in a row): every job is then done inline. */
  get inlineOnly(): boolean {
    return this.#failedInARow >= MAX_FAILED_STARTS;
  }

  /** Jobs queued or in the worker. */
  get pending(): number {
    return this.#pending;
  }

  /** Jobs the worker has answered so far (the rest were done inline). */
  get answeredByWorker(): number {
    return this.#answeredByWorker;
  }

  run(job: SigJob): Promise<SigResult> {
    if (this.#closed || this.#pending >= MAX_PENDING) return Promise.resolve(runSigJob(this.#self, job));
    return new Promise((resolve) => {
      this.#next.push({ job, resolve });
      this.#pending++;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Stops the worker; jobs still pending are finished inline. */
  close(): void {
    this.#closed = true;
    this.#stop();
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#next;
    this.#next = [];
    if (batch.length === 0) return;
    const w = this.#closed || this.inlineOnly ? undefined : this.#ensureWorker();
    if (!w) return this.#inline(batch);
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#inWorker.push(batch);
    w.postMessage(batch.map((p) => p.job));
  }

  #ensureWorker(): Worker | undefined {
    if (this.#worker) return this.#worker;
    try {
      const w = new Worker(this.#workerUrl, { workerData: { seed: this.#self.seed }, resourceLimits: WORKER_LIMITS });
      w.unref();
      w.on("message", (r: SigResult) => {
        if (this.#worker === w) this.#answered(r);
      });
      // A crashed or failed worker: what it held is done inline; the next batch starts a new one.
      w.on("error", () => this.#lost(w, true));
      w.on("exit", () => this.#lost(w, true));
      this.#worker = w;
      return w;
    } catch {
      return undefined;
    }
  }

  #answered(r: SigResult): void {
    const batch = this.#inWorker[0];
    const p = batch?.shift();
    if (!p) return;
    if (batch!.length === 0) this.#inWorker.shift();
    this.#failedInARow = 0;
    this.#pending--;
    this.#answeredByWorker++;
    p.resolve(r.receiptSig ? { valid: r.valid, receiptSig: new Uint8Array(r.receiptSig) } : { valid: r.valid });
    if (this.#inWorker.length === 0 && this.#next.length === 0) {
      this.#idleTimer = setTimeout(() => this.#stop(), IDLE_MS);
      this.#idleTimer.unref();
    }
  }

  #lost(w: Worker, failed = false): void {
    if (this.#worker !== w) return;
    this.#worker = undefined;
    if (failed) this.#failedInARow++;
    const held = this.#inWorker.flat();
    this.#inWorker = [];
    this.#inline(held);
  }

  #inline(batch: Pending[]): void {
    for (const p of batch) {
      this.#pending--;
      p.resolve(runSigJob(this.#self, p.job));
    }
  }

  #stop(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const w = this.#worker;
    if (!w) return;
    this.#lost(w); // finishes what it held inline, before terminate() can drop it
    void w.terminate();
  }
}
