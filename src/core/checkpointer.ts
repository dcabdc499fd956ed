/**
 * WAL checkpoints off the request path. In WAL mode SQLite copies the log back into the database file (and fsyncs
 * it) every 1000 pages, inside whichever COMMIT crossed that size: on the node that is a message's commit, and its
 * sender waited for the whole copy (it was most of the node's p99 at 1 in flight, and ~9 ms stalls for batches at 32).
 * Here a worker thread with its own connection runs a PASSIVE checkpoint shortly after writes instead, which does not
 * block the writer; while it keeps up, the node's own connection only checkpoints past BACKSTOP_PAGES (a worker that
 * stalls cannot let the log grow without bound).
 *
 * One lifecycle path, as for the signature thread: the worker starts on the first write, stops after IDLE_MS without
 * writes and on close(). A worker that fails or dies changes nothing for durability (commits are fsynced by the
 * writer either way); after MAX_FAILED_STARTS failures in a row the process keeps SQLite's own checkpointing.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Store } from "./store.ts";

/**
 * After a write, the checkpoint waits this long, so that the writes of a busy moment share one (each checkpoint is two
 * more fsyncs competing with the commits': at 1 message in flight, 100 ms gave a lower p99 than 20 ms). At up to
 * ~40k WAL pages/s that is still under BACKSTOP_PAGES.
 */
const DELAY_MS = 100;
const IDLE_MS = 10_000;
/** SQLite's default wal_autocheckpoint, restored when this checkpointer is not working. */
const DEFAULT_PAGES = 1000;
const BACKSTOP_PAGES = 4000;
const MAX_FAILED_STARTS = 3;
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };
const WORKER_URL = new URL(`./checkpointer-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface CheckpointResult {
  busy?: number;
  log?: number;
  checkpointed?: number;
  error?: string;
}

export class Checkpointer {
  /** The wal_autocheckpoint of connections that leave checkpoints to this class (also the commit thread's). */
  static readonly BACKSTOP_PAGES = BACKSTOP_PAGES;
  readonly #store: Store;
  readonly #workerUrl: URL;
  #worker: Worker | undefined;
  #timer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #running = false;
  #again = false;
  #failedInARow = 0;
  #checkpoints = 0;
  #closed = false;

  /** `workerUrl` is for tests (a worker that fails); the default is checkpointer-worker next to this file. */
  constructor(store: Store, options: { workerUrl?: URL } = {}) {
    this.#store = store;
    this.#workerUrl = options.workerUrl ?? WORKER_URL;
  }

  /** Checkpoints the worker has completed. */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /** True once workers kept failing: SQLite checkpoints inside commits again, as without this class. */
  get givenUp(): boolean {
    return this.#failedInARow >= MAX_FAILED_STARTS;
  }

  /** Call after a commit: a checkpoint follows DELAY_MS later (one at a time; writes meanwhile ask for another). */
  written(): void {
    if (this.#closed || this.givenUp) return;
    if (this.#running) this.#again = true;
    else this.#timer ??= setTimeout(() => this.#run(), DELAY_MS).unref();
  }

  /** Stops the worker and hands checkpointing back to SQLite. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#idleTimer);
    await this.#stop();
    this.#setPages(DEFAULT_PAGES);
  }

  #run(): void {
    this.#timer = undefined;
    const w = this.#closed ? undefined : this.#ensureWorker();
    if (!w) return;
    clearTimeout(this.#idleTimer);
    this.#running = true;
    w.postMessage(0);
  }

  #ensureWorker(): Worker | undefined {
    if (this.#worker) return this.#worker;
    try {
      const w = new Worker(this.#workerUrl, { workerData: { file: this.#store.file }, resourceLimits: WORKER_LIMITS });
      w.unref();
      w.on("message", (r: CheckpointResult) => {
        if (this.#worker === w) this.#answered(r);
      });
      w.on("error", () => this.#lost(w));
      w.on("exit", () => this.#lost(w));
      this.#worker = w;
      return w;
    } catch {
      this.#failed();
      return undefined;
    }
  }

  #answered(r: CheckpointResult): void {
    this.#running = false;
    if (r.error !== undefined) {
      // A checkpoint that failed (I/O error, a file gone): SQLite's own checkpointing is still the backstop.
      this.#failed();
    } else {
      if (this.#failedInARow > 0 || this.#checkpoints === 0) this.#setPages(BACKSTOP_PAGES);
      this.#failedInARow = 0;
      this.#checkpoints++;
    }
    if (this.#again) {
      this.#again = false;
      this.written();
    } else if (!this.#closed) {
      this.#idleTimer = setTimeout(() => void this.#stop(), IDLE_MS).unref();
    }
  }

  #lost(w: Worker): void {
    if (this.#worker !== w) return;
    this.#worker = undefined;
    this.#running = false;
    this.#failed();
    if (this.#again) {
      this.#again = false;
      this.written();
    }
  }

  #failed(): void {
    this.#failedInARow++;
    this.#setPages(DEFAULT_PAGES);
  }

  /** Runs in worker event handlers, where a throw would take the process down: a store that refuses keeps its size. */
  #setPages(pages: number): void {
    try {
      this.#store.setWalAutoCheckpoint(pages);
    } catch {
      // the connection is failing anyway; its own commits report that
    }
  }

  async #stop(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    this.#running = false;
    if (w) await w.terminate();
  }
}
