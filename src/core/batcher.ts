/**
 * Group commit: inbound messages that arrive together are written in one SQLite transaction (one fsync), and each
 * request is answered only after that transaction committed. This is what lets the node acknowledge only durable
 * messages and still keep up with many senders.
 */
import type { Store } from "./store.ts";

type Item = Parameters<Store["acceptInbound"]>[0][number];
type Outcome = ReturnType<Store["acceptInbound"]>[number];

const MAX_BATCH = 256;

export class CommitBatcher {
  readonly #store: Store;
  readonly #afterCommit: (() => void) | undefined;
  #queue: { item: Item; resolve: (o: Outcome) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;

  /** `afterCommit` runs after each transaction (the peer server's checkpointer: checkpointer.ts). */
  constructor(store: Store, afterCommit?: () => void) {
    this.#store = store;
    this.#afterCommit = afterCommit;
  }

  add(item: Item): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // setImmediate lets every request whose body completed in this I/O turn join the batch.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    const batch = this.#queue.splice(0, MAX_BATCH);
    // More waiting: yield before the next transaction so other processes (CLI commands) can take the write lock.
    if (this.#queue.length > 0) setImmediate(() => this.#flush());
    else this.#scheduled = false;
    let results: Outcome[];
    try {
      results = this.#store.acceptInbound(batch.map((b) => b.item));
    } catch (err) {
      for (const b of batch) b.reject(err);
      return;
    }
    batch.forEach((b, i) => b.resolve(results[i]!));
    this.#afterCommit?.();
  }
}
