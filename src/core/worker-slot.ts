/**
 * The one lifecycle of the node's helper threads (the signature thread, the commit thread, the checkpointer): a
 * worker started on first use, unref'd (it never keeps the process alive), stopped after IDLE_MS without work and on
 * stop(). A worker that errors or exits is reported once, through `onLost`, and the next post starts a new one; its
 * owner decides what becomes of the work it held (each owner redoes it inline). Failures in a row (a worker that
 * could not be created, was lost, or answered with a failure: `failed()`) add up; after MAX_FAILURES_IN_A_ROW the slot
 * gives up for the process and post() answers false, so the owner works inline from then on. Any good answer
 * (`succeeded()`) starts the count again.
 */
import { Worker, type ResourceLimits, type Transferable } from "node:worker_threads";

const IDLE_MS = 10_000;
const MAX_FAILURES_IN_A_ROW = 3;

export interface WorkerSlotOptions<Out> {
  /** The thread's name, as `top -H` and `ps -T` show it (Linux keeps 15 characters). */
  name: string;
  url: URL;
  workerData: unknown;
  limits: ResourceLimits;
  /** Every message of the current worker (messages of a worker already replaced or stopped are dropped). */
  onMessage: (m: Out) => void;
  /** The current worker errored or exited on its own (not after stop()). */
  onLost: () => void;
  /** How long an idle worker lives (default IDLE_MS; tests shorten it). */
  idleMs?: number;
}

export class WorkerSlot<Out> {
  readonly #o: WorkerSlotOptions<Out>;
  #worker: Worker | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #failedInARow = 0;

  constructor(options: WorkerSlotOptions<Out>) {
    this.#o = options;
  }

  /** True once workers kept failing: the owner does the work inline for the rest of the process. */
  get givenUp(): boolean {
    return this.#failedInARow >= MAX_FAILURES_IN_A_ROW;
  }

  /**
   * Hands `m` to the worker, starting one if needed; false when there is none (given up, or it could not start).
   * What `transfer` lists is moved to the worker only when this answers true.
   */
  post(m: unknown, transfer?: readonly Transferable[]): boolean {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const w = this.#worker ?? this.#start();
    if (!w) return false;
    w.postMessage(m, transfer);
    return true;
  }

  /** A good answer: failures in a row start from zero again. */
  succeeded(): void {
    this.#failedInARow = 0;
  }

  /** A failure the owner saw in an answer; counts like a lost worker. */
  failed(): void {
    this.#failedInARow++;
  }

  /** The owner holds no work on the worker: it stops after IDLE_MS unless posted to meanwhile. */
  idle(): void {
    if (!this.#worker) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => void this.stop(), this.#o.idleMs ?? IDLE_MS).unref();
  }

  /** Stops the worker now, without onLost: whatever it held is the owner's to finish first. */
  async stop(): Promise<void> {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const w = this.#worker;
    this.#worker = undefined;
    if (w) await w.terminate();
  }

  #start(): Worker | undefined {
    if (this.givenUp) return undefined;
    try {
      const w = new Worker(this.#o.url, { name: this.#o.name, workerData: this.#o.workerData, resourceLimits: this.#o.limits });
      w.unref();
      w.on("message", (m: Out) => {
        if (this.#worker === w) this.#o.onMessage(m);
      });
      const lost = () => {
        if (this.#worker !== w) return;
        this.#worker = undefined;
        this.#failedInARow++;
        this.#o.onLost();
      };
      w.on("error", lost);
      w.on("exit", lost);
      this.#worker = w;
      return w;
    } catch {
      this.#failedInARow++;
      return undefined;
    }
  }
}
