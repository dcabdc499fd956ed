/**
 * Signature work off the event loop when requests overlap. Under load the peer server's main thread was the
 * bottleneck (it verified every envelope and signed every receipt itself) while other cores idled; in the OpenClaw
 * gateway that main thread is also the gateway's. A single worker thread takes both jobs here, in batches: one
 * hand-off per event-loop turn carries every job that turn produced, so the hand-off cost is shared. Answers come
 * back in groups of ANSWER_GROUP jobs as they are done (and the rest at the end of a batch): a batch answered as a
 * whole made its messages reach the commit together, and the worker then idled while they were stored (per-job
 * answers: +8% messages/s at 32 in flight, median of 12 rounds); groups of 4 then cut the node's CPU per message by
 * 5-7% against answers one by one (three A/B runs of 12-14 rounds at 32 in flight), each answer being a message to post
 * on one side and to dispatch on the other, while the commit batcher waits for known senders' jobs anyway.
 * A batch crosses as one packed buffer, moved (not copied) to the worker (packJobs), and each answer is a small object
 * with the receipt signature already as base64 text: structured clone otherwise makes a new ArrayBuffer for every
 * byte array on both sides, four per job plus one per answer.
 *
 * Who waits for whom. A job is "known" when its sender has proved a key before (the server decides; in practice a
 * source whose last signature verified): known jobs go ahead of unknown ones, and at most MAX_IN_WORKER jobs sit in
 * the worker at a time, so a known sender's message waits behind at most that much verification, however many
 * forgeries arrived first. Unknown jobs wait in order; past MAX_WAITING of them, run() answers "busy" without
 * checking anything (the server answers 503 with Retry-After; an honest sender retries). None of this work happens on
 * the event loop, which stays free for the gateway and for parsing the next request.
 *
 * The worker's lifecycle is worker-slot.ts's (started on first use, stopped after 10 s without jobs, so its ~20 MB
 * are given back when the node is quiet, and on close(); given up after repeated failures). Whatever happens to it, no
 * job is lost or failed because of it: if the worker dies or errors, the jobs it held are done inline, and once the
 * slot has given up (or the thread is closed) every job is done inline. The result is always the same as
 * `verifyBytes` / `signBytes`.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { encodeBase64 } from "./encoding.ts";
import { signBytes, verifyBytes, type KeyPair } from "./keys.ts";
import { WorkerSlot } from "./worker-slot.ts";

/** Verify `sig` over `data` by `key`; if valid and `receipt` is given, also sign `receipt` with our key. */
export interface SigJob {
  key: Uint8Array;
  data: Uint8Array;
  sig: Uint8Array;
  receipt?: Uint8Array;
}
export interface SigResult {
  valid: boolean;
  /** Our signature over job.receipt, as base64 (only when the job's signature was valid). */
  receiptSig?: string;
}

/**
 * Jobs handed to the worker at a time: a known sender's job waits behind at most this many (~8 ms of verification at
 * ~250 µs each); enough that honest load at 32 requests in flight keeps the worker busy.
 */
export const MAX_IN_WORKER = 32;
/** Unknown senders' jobs that may wait for the worker; past it they are answered "busy" (~64 ms of verification). */
export const MAX_WAITING = 256;
/** The worker answers this many jobs per message (fewer at the end of a batch). */
export const ANSWER_GROUP = 4;
/** The worker holds no data: a small heap keeps its memory small (running out only means inline work, see above). */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };
const WORKER_URL = new URL(`./sig-thread-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Pending {
  job: SigJob;
  known: boolean;
  resolve: (r: SigResult | "busy") => void;
}

/** The job done on the calling thread (also the worker's definition of it). */
export function runSigJob(self: KeyPair, job: SigJob): SigResult {
  const valid = verifyBytes(job.key, job.data, job.sig);
  return valid && job.receipt ? { valid, receiptSig: encodeBase64(signBytes(self, job.receipt)) } : { valid };
}

/**
 * Jobs as one buffer, each `u32 key length, key, u32 sig length, sig, u32 data length, data, u32 receipt length + 1
 * (0: no receipt), receipt` (lengths little-endian). Both ends are in this process, so the layout is private.
 */
export function packJobs(jobs: readonly SigJob[]): Uint8Array<ArrayBuffer> {
  let size = 0;
  for (const j of jobs) size += 16 + j.key.length + j.sig.length + j.data.length + (j.receipt?.length ?? 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  const put = (b: Uint8Array | undefined, lengthBias: number) => {
    view.setUint32(at, b ? b.length + lengthBias : 0, true);
    at += 4;
    if (b) {
      out.set(b, at);
      at += b.length;
    }
  };
  for (const j of jobs) {
    put(j.key, 0);
    put(j.sig, 0);
    put(j.data, 0);
    put(j.receipt, 1);
  }
  return out;
}

/** The jobs of packJobs' buffer (views into it, no copies). */
export function unpackJobs(packed: Uint8Array): SigJob[] {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const jobs: SigJob[] = [];
  let at = 0;
  const take = (lengthBias: number): Uint8Array | undefined => {
    const n = view.getUint32(at, true);
    at += 4;
    if (n === 0 && lengthBias > 0) return undefined;
    const b = packed.subarray(at, at + n - lengthBias);
    at += n - lengthBias;
    return b;
  };
  while (at < packed.length) {
    const key = take(0)!;
    const sig = take(0)!;
    const data = take(0)!;
    const receipt = take(1);
    jobs.push(receipt ? { key, sig, data, receipt } : { key, sig, data });
  }
  return jobs;
}

export class SignatureThread {
  readonly #self: KeyPair;
  readonly #slot: WorkerSlot<SigResult[]>;
  /** Batches posted to the worker, oldest first (it answers them job by job, in order). */
  #inWorker: Pending[][] = [];
  #known: Pending[] = [];
  #unknown: Pending[] = [];
  #answeredByWorker = 0;
  #flushScheduled = false;
  #closed = false;

  /** `workerUrl` is for tests (a worker that fails); the default is sig-thread-worker next to this file. */
  constructor(self: KeyPair, options: { workerUrl?: URL } = {}) {
    this.#self = self;
    this.#slot = new WorkerSlot({
      name: "declaw-sig",
      url: options.workerUrl ?? WORKER_URL,
      workerData: { seed: self.seed },
      limits: WORKER_LIMITS,
      onMessage: (rs) => rs.forEach((r) => this.#answered(r)),
      onLost: () => this.#inlineHeld(),
    });
  }

  /** True once workers kept failing: every job is then done inline. */
  get inlineOnly(): boolean {
    return this.#slot.givenUp;
  }

  /** Jobs waiting or in the worker. */
  get pending(): number {
    return this.#inWorkerCount() + this.#waiting();
  }

  /** Known senders' jobs waiting or in the worker: messages that will (if valid) reach their commit soon. */
  get knownPending(): number {
    let n = this.#known.length;
    for (const b of this.#inWorker) for (const p of b) if (p.known) n++;
    return n;
  }

  /** Jobs the worker has answered so far (the rest were done inline, or answered "busy"). */
  get answeredByWorker(): number {
    return this.#answeredByWorker;
  }

  /** The job's answer, or "busy" for an unknown sender's job when MAX_WAITING of them already wait. */
  run(job: SigJob, known = false): Promise<SigResult | "busy"> {
    if (this.#closed || this.#slot.givenUp) return Promise.resolve(runSigJob(this.#self, job));
    if (!known && this.#unknown.length >= MAX_WAITING) return Promise.resolve("busy");
    return new Promise((resolve) => {
      (known ? this.#known : this.#unknown).push({ job, known, resolve });
      this.#scheduleFlush();
    });
  }

  /** Stops the worker; jobs still waiting or in it are finished inline. */
  close(): void {
    this.#closed = true;
    this.#inlineHeld(); // before terminate() can drop them
    this.#inline(this.#known.splice(0));
    this.#inline(this.#unknown.splice(0));
    void this.#slot.stop();
  }

  /** One hand-off per event-loop turn, for what that turn queued. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const room = MAX_IN_WORKER - this.#inWorkerCount();
    if (room <= 0 || this.#closed) return;
    const batch = this.#known.splice(0, room);
    if (batch.length < room) batch.push(...this.#unknown.splice(0, room - batch.length));
    if (batch.length === 0) return;
    const packed = packJobs(batch.map((p) => p.job));
    if (!this.#slot.post(packed, [packed.buffer])) {
      // No worker (it could not start, or the slot gave up): this batch inline, the rest on later turns.
      this.#inline(batch);
      if (this.#waiting() > 0) this.#scheduleFlush();
      return;
    }
    this.#inWorker.push(batch);
  }

  #answered(r: SigResult): void {
    const batch = this.#inWorker[0];
    const p = batch?.shift();
    if (!p) return;
    if (batch!.length === 0) this.#inWorker.shift();
    this.#slot.succeeded();
    this.#answeredByWorker++;
    p.resolve(r);
    if (this.#waiting() > 0) this.#scheduleFlush();
    else if (this.#inWorker.length === 0) this.#slot.idle();
  }

  /** What the worker held (it was lost, or the thread is closing), done inline; waiting jobs go to the next worker. */
  #inlineHeld(): void {
    const held = this.#inWorker.flat();
    this.#inWorker = [];
    this.#inline(held);
    if (this.#waiting() > 0 && !this.#closed) this.#scheduleFlush();
  }

  #inWorkerCount(): number {
    let n = 0;
    for (const b of this.#inWorker) n += b.length;
    return n;
  }

  #waiting(): number {
    return this.#known.length + this.#unknown.length;
  }

  #inline(batch: Pending[]): void {
    for (const p of batch) p.resolve(runSigJob(this.#self, p.job));
  }
}
