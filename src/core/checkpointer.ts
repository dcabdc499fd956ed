/**
 * WAL checkpoints off the request path. In WAL mode SQLite copies the log back into the database file (and fsyncs
 * it) every 1000 pages, inside whichever COMMIT crossed that size: on the node that is a message's commit, and its
 * sender waited for the whole copy (it was most of the node's p99 at 1 in flight, and ~9 ms stalls for batches at 32).
 * Here a worker thread with its own connection runs a PASSIVE checkpoint shortly after writes instead, which does not
 * block the writer; while it keeps up, the node's own connection only checkpoints past BACKSTOP_PAGES (a worker that
 * stalls cannot let the log grow without bound).
 *
 * The worker's lifecycle is worker-slot.ts's, as for the other helper threads: started on the first write, stopped
 * after 10 s without writes and on close(). A worker that fails or dies changes nothing for durability (commits are
 * fsynced by the writer either way); once the slot gives up after repeated failures, the process keeps SQLite's own
 * checkpointing.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Store } from "./store.ts";
import { WorkerSlot } from "./worker-slot.ts";

/**
 * After a write, the checkpoint waits this long, so that the writes of a busy moment share one (each checkpoint is two
 * more fsyncs competing with the commits': at 1 message in flight, 100 ms gave a lower p99 than 20 ms). At up to
 * ~40k WAL pages/s that is still under BACKSTOP_PAGES.
 */
const DELAY_MS = 100;
/** SQLite's default wal_autocheckpoint, restored when this checkpointer is not working. */
const DEFAULT_PAGES = 1000;
const BACKSTOP_PAGES = 4000;
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
  readonly #slot: WorkerSlot<CheckpointResult>;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #again = false;
  #failing = false;
  #checkpoints = 0;
  #closed = false;

  /** `workerUrl` is for tests (a worker that fails); the default is checkpointer-worker next to this file. */
  constructor(store: Store, options: { workerUrl?: URL } = {}) {
    this.#store = store;
    this.#slot = new WorkerSlot({
      name: "declaw-ckpt",
      url: options.workerUrl ?? WORKER_URL,
      workerData: { file: store.file },
      limits: WORKER_LIMITS,
      onMessage: (r) => this.#answered(r),
      onLost: () => this.#lost(),
    });
  }

  /** Checkpoints the worker has completed. */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /** True once workers kept failing: SQLite checkpoints inside commits again, as without this class. */
  get givenUp(): boolean {
    return this.#slot.givenUp;
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
    this.#running = false;
    await this.#slot.stop();
    this.#setPages(DEFAULT_PAGES);
  }

  #run(): void {
    this.#timer = undefined;
    if (this.#closed) return;
    if (this.#slot.post(0)) this.#running = true;
    else this.#failed();
  }

  #answered(r: CheckpointResult): void {
    this.#running = false;
    if (r.error !== undefined) {
      // A checkpoint that failed (I/O error, a file gone): SQLite's own checkpointing is still the backstop.
      this.#slot.failed();
      this.#failed();
    } else {
      if (this.#failing || this.#checkpoints === 0) this.#setPages(BACKSTOP_PAGES);
      this.#failing = false;
      this.#slot.succeeded();
      this.#checkpoints++;
    }
    if (this.#again) {
      this.#again = false;
      this.written();
    } else if (!this.#closed) {
      this.#slot.idle();
    }
  }

  #lost(): void {
    this.#running = false;
    this.#failed();
    if (this.#again) {
      this.#again = false;
      this.written();
    }
  }

  /** A worker that could not start, was lost or could not checkpoint: SQLite checkpoints inside commits meanwhile. */
  #failed(): void {
    this.#failing = true;
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
}
