/**
 * Group commit: inbound messages that arrive together are written in one SQLite transaction (one fsync), and each
 * request is answered only after that transaction committed. This is what lets the node acknowledge only durable
 * messages and still keep up with many senders.
 *
 * Where a batch commits: a lone message (nothing else waiting or committing) on the calling thread, the shortest
 * path, unless the host shares its event loop (`loneInline: false`, OpenClaw's gateway); a batch of several in the
 * commit thread, a worker with its own connection (commit-thread-worker.ts), so that
 * the event loop (the gateway's, inside OpenClaw) goes on parsing the next requests instead of waiting for the fsync.
 * One batch commits at a time either way: what arrives meanwhile forms the next batch, so commits stay in arrival
 * order and never wait on each other's lock. Under load a small batch also waits, briefly, for the messages already
 * on their way (GATHER_MS at most): fewer, larger transactions cost less CPU per message. A worker that dies or errors
 * loses nothing: the batch it held is committed inline (rows it had already committed come back as duplicates with
 * their first storedAt). The worker's lifecycle is worker-slot.ts's: started on first use, stopped after 10 s without
 * batches, given up (the process stays inline) after repeated failures.
 */
import { dirname, extname } from "node:path";
import { fileURLToPath } from "node:url";
import { P2PError } from "./errors.ts";
import type { Store } from "./store.ts";
import { WorkerSlot } from "./worker-slot.ts";

type Item = Parameters<Store["acceptInbound"]>[0][number];
type Outcome = ReturnType<Store["acceptInbound"]>[number];
interface Entry {
  item: Item;
  resolve: (o: Outcome) => void;
  reject: (e: unknown) => void;
}

const MAX_BATCH = 256;
/**
 * Under load a batch for the commit thread waits, while more messages are on their way (options.coming), until it
 * holds GATHER_MESSAGES or its first message has waited GATHER_MS. Each commit costs about the same fixed CPU
 * (transaction, WAL frames of the shared index pages, fsync: ~86 µs for 1 message, ~47 µs per message for 8, ~37 for
 * 16, measured here), and without waiting the batches at 32 requests in flight held ~5 messages (many 1-3): the
 * commit thread was answering faster than the signature thread fed it. A lone message never waits: nothing is coming.
 */
const GATHER_MESSAGES = 16;
const GATHER_MS = 2;
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 };
const WORKER_URL = new URL(`./commit-thread-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export interface CommitBatcherOptions {
  /** Runs after each transaction (the peer server's checkpointer: checkpointer.ts). */
  afterCommit?: () => void;
  /** Commit batches of several in the commit thread (default true). */
  thread?: boolean;
  /**
   * A lone message (nothing else waiting or committing) commits on the calling thread, the shortest path (default
   * true). False sends it to the commit thread too: a host whose event loop runs other work (OpenClaw's gateway) then
   * never waits there on an fsync or on another process's write lock. Inline remains the fallback if the thread fails.
   */
  loneInline?: boolean;
  /** The commit thread connection's wal_autocheckpoint (the checkpointer's backstop); unset: SQLite's default. */
  walAutoCheckpoint?: number;
  /** For tests (a worker that fails); the default is commit-thread-worker next to this file. */
  workerUrl?: URL;
  /**
   * How many messages are on their way to add() (the peer server: known senders' messages whose signature is being
   * checked). While some are, a small batch waits for them (GATHER): see #flush.
   */
  coming?: () => number;
}

type Answer = { results?: Outcome[]; error?: string };

export class CommitBatcher {
  readonly #store: Store;
  readonly #o: CommitBatcherOptions;
  readonly #slot: WorkerSlot<Answer> | undefined;
  #queue: Entry[] = [];
  #scheduled = false;
  /** Set while a small batch waits for the messages on their way; once it fires, the next flush does not wait. */
  #gatherTimer: NodeJS.Timeout | undefined;
  #gatherExpired = false;
  /** The batch the commit thread holds; while set, arrivals wait for it. */
  #inWorker: Entry[] | undefined;
  #settled: (() => void) | undefined;
  #committedByThread = 0;
  #closed = false;

  constructor(store: Store, options: CommitBatcherOptions = {}) {
    this.#store = store;
    this.#o = options;
    this.#slot =
      options.thread === false
        ? undefined
        : new WorkerSlot({
            name: "declaw-commit",
            url: options.workerUrl ?? WORKER_URL,
            workerData: { dataDir: dirname(store.file), walAutoCheckpoint: options.walAutoCheckpoint },
            limits: WORKER_LIMITS,
            onMessage: (m) => this.#answered(m),
            onLost: () => this.#lost(),
          });
  }

  /** Messages whose transaction the commit thread ran (the rest ran inline). */
  get committedByThread(): number {
    return this.#committedByThread;
  }

  /** True when every batch commits inline: the thread is off (`thread: false`), or its workers kept failing. */
  get inlineOnly(): boolean {
    return this.#slot?.givenUp ?? true;
  }

  add(item: Item): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Lets a batch in the commit thread finish, then stops the thread; later batches commit inline. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#gatherTimer) {
      clearTimeout(this.#gatherTimer);
      this.#gatherTimer = undefined;
      this.#flush(); // the batch waiting for more commits now (inline, being closed), or after the thread's batch
    }
    if (this.#inWorker) await new Promise<void>((r) => (this.#settled = r));
    await this.#slot?.stop();
  }

  #schedule(): void {
    if (this.#scheduled || this.#inWorker || this.#queue.length === 0) return;
    this.#scheduled = true;
    // setImmediate lets every request whose body completed in this I/O turn join the batch.
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#inWorker) return; // its answer flushes what gathered meanwhile
    if (this.#gathering()) return;
    clearTimeout(this.#gatherTimer);
    this.#gatherTimer = undefined;
    this.#gatherExpired = false;
    const batch = this.#queue.splice(0, MAX_BATCH);
    if (batch.length === 0) return;
    if ((batch.length > 1 || this.#o.loneInline === false) && !this.#closed && this.#slot?.post(batch.map((b) => b.item))) {
      this.#inWorker = batch;
      return;
    }
    this.#commitInline(batch);
    // More waiting: yield before the next transaction so other processes (CLI commands) can take the write lock.
    this.#schedule();
  }

  /** True when the batch should wait for the messages on their way (GATHER_MS after the first wait, it goes). */
  #gathering(): boolean {
    if (this.#gatherExpired || this.#closed || this.#queue.length >= GATHER_MESSAGES || !(this.#o.coming?.() ?? 0)) return false;
    this.#gatherTimer ??= setTimeout(() => {
      this.#gatherTimer = undefined;
      this.#gatherExpired = true;
      this.#flush();
    }, GATHER_MS);
    return true;
  }

  #commitInline(batch: Entry[]): void {
    let results: Outcome[];
    try {
      results = this.#store.acceptInbound(batch.map((b) => b.item));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    this.#settle(batch, results);
  }

  #settle(batch: Entry[], results: Outcome[]): void {
    batch.forEach((b, i) => b.resolve(results[i]!));
    this.#o.afterCommit?.();
  }

  #answered(m: Answer): void {
    const batch = this.#inWorker;
    this.#inWorker = undefined;
    if (batch) {
      this.#slot!.succeeded();
      if (m.results) {
        this.#committedByThread += batch.length;
        this.#settle(batch, m.results);
      } else {
        // Not committed (disk full, read-only...): the same error the inline path gives, as a storage failure.
        const err = new P2PError("P2P_ERR_STORAGE", m.error ?? "the commit thread failed");
        for (const b of batch) b.reject(err);
      }
    }
    this.#next();
  }

  #lost(): void {
    const batch = this.#inWorker;
    this.#inWorker = undefined;
    if (batch) this.#commitInline(batch);
    this.#next();
  }

  /** After a batch left the commit thread: the next one, or the idle countdown. */
  #next(): void {
    const settled = this.#settled;
    this.#settled = undefined;
    settled?.();
    if (this.#queue.length > 0) this.#schedule();
    else if (!this.#closed) this.#slot?.idle();
  }
}
