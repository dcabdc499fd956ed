/**
 * The outbox: every message is stored before the first attempt and stays queued until a verified receipt marks it
 * delivered, a peer refuses it for good, or it grows older than the maximum age. Attempts are leased in the database,
 * so a CLI `send` and a running node never send the same row at once; the receiver dedupes by id in any case.
 *
 * Each attempt signs the envelope afresh with the current time (same id), so a message queued for days still passes
 * the receiver's +-5 minute window.
 */
import { keyMatchesAddress, parseIPv6 } from "./address.ts";
import { deliverV1, deliverV2, type Delivery } from "./client.ts";
import type { KeyPair } from "./keys.ts";
import type { Logger } from "./log.ts";
import type { MessageRow, Store } from "./store.ts";
import { buildEnvelope } from "./wire.ts";
import { buildV1Message } from "./wire-v1.ts";

/** Retry delays by attempt number (the last repeats), each jittered by +-20%. */
export const BACKOFF_MS = [2_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000];
const JITTER = 0.2;
export const LEASE_MS = 60_000;
const POLL_INTERVAL_MS = 1_000;
const CLAIM_BATCH = 32;
export const DEFAULT_PEER_PORT = 8099;

export function backoffDelay(attempts: number, retryAfterMs?: number): number {
  const base = BACKOFF_MS[Math.min(Math.max(attempts, 0), BACKOFF_MS.length - 1)]!;
  const jittered = base * (1 - JITTER + Math.random() * 2 * JITTER);
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}

export type AttemptResult =
  | { state: "delivered"; deliveredAt: number; receipt: string }
  | { state: "sent"; sentAt: number }
  | { state: "queued"; reason: string; nextAttemptAt: number }
  | { state: "failed"; reason: string };

export interface OutboxOptions {
  self: KeyPair & { address: string };
  store: Store;
  log: Logger;
  /** Bind outgoing connections to this source (tests with several addresses in one namespace). */
  localAddress?: string;
}

export class Outbox {
  readonly #o: OutboxOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = true;
  #again = false;

  constructor(o: OutboxOptions) {
    this.#o = o;
  }

  /** One delivery attempt of a claimed row; records the outcome in the store. */
  async attempt(row: MessageRow): Promise<AttemptResult> {
    const { store, self, log } = this.#o;
    const now = Date.now();
    if (row.expiresAt !== null && now >= row.expiresAt) {
      const reason = `expired after ${Math.round((now - row.createdAt) / 3_600_000)} h without delivery; last error: ${row.lastError ?? "none"}`;
      store.markFailed(row.id, reason);
      return { state: "failed", reason };
    }
    const peer = store.getPeer(row.peer);
    const target = { address: row.peer, port: peer?.port ?? DEFAULT_PEER_PORT, localAddress: this.#o.localAddress };
    let d: Delivery;
    if (peer?.protocol === 1) d = await this.#sendV1(target, row);
    else {
      d = await deliverV2(target, buildEnvelope(self, row.peer, row.kind, row.content, { id: row.id, ts: Date.now() }), peer?.publicKey ?? null);
      if (d.kind === "v1-only") {
        log.info(`${row.peer} does not speak v2; using legacy v1 from now on`);
        store.upsertPeer({ address: row.peer, protocol: 1 });
        d = await this.#sendV1(target, row);
      }
    }
    const done = Date.now();
    switch (d.kind) {
      case "delivered": {
        const receipt = d.receipt ? JSON.stringify(d.receipt) : null;
        // A peer whose address is not derived from its app key (system-mode Yggdrasil) is pinned on first receipt.
        if (d.receipt && !peer?.publicKey) {
          const derived = keyMatchesAddress(Buffer.from(d.receipt.key, "base64"), parseIPv6(row.peer)!);
          store.bindKey(row.peer, d.receipt.key, derived ? "derived" : "tofu", done);
        }
        store.markDelivered(row.id, receipt, d.storedAt);
        // Without a receipt (legacy v1 peers) the store records "sent": accepted, but storage is not proven.
        return receipt ? { state: "delivered", deliveredAt: d.storedAt, receipt } : { state: "sent", sentAt: d.storedAt };
      }
      case "failed":
        store.markFailed(row.id, d.reason);
        log.warn(`message ${row.id} to ${row.peer} failed: ${d.reason}`);
        return { state: "failed", reason: d.reason };
      case "retry": {
        const nextAttemptAt = done + backoffDelay(row.attempts, d.retryAfterMs);
        if (row.expiresAt !== null && nextAttemptAt >= row.expiresAt) {
          const reason = `expired without delivery; last error: ${d.reason}`;
          store.markFailed(row.id, reason);
          return { state: "failed", reason };
        }
        store.markRetry(row.id, nextAttemptAt, d.reason);
        return { state: "queued", reason: d.reason, nextAttemptAt };
      }
      default:
        throw new Error("unreachable: v1-only handled above");
    }
  }

  #sendV1(target: { address: string; port: number; localAddress?: string }, row: MessageRow): Promise<Delivery> {
    if (row.kind !== "chat") return Promise.resolve({ kind: "failed", code: "P2P_ERR_UNSUPPORTED_KIND", reason: `legacy v1 peers only take chat messages, not ${row.kind}` });
    return deliverV1(target, buildV1Message(this.#o.self, row.content, Date.now()));
  }

  /** Starts the background worker (one per node process). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Wakes the worker now (a new message was queued). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#running) this.#again = true;
    else this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#running = this.#drain().finally(() => {
        this.#running = undefined;
        if (!this.#stopped) this.#schedule(this.#again ? 0 : POLL_INTERVAL_MS);
        this.#again = false;
      });
    }, ms);
    this.#timer.unref?.();
  }

  async #drain(): Promise<void> {
    while (!this.#stopped) {
      let rows: MessageRow[];
      try {
        rows = this.#o.store.claimDue(Date.now(), CLAIM_BATCH, LEASE_MS);
      } catch (err) {
        this.#o.log.warn(`outbox: cannot read the queue: ${(err as Error).message}`);
        return;
      }
      if (rows.length === 0) return;
      await Promise.all(
        rows.map((row) =>
          this.attempt(row).catch((err) => {
            // Leave the row leased: it is retried when the lease runs out, never lost.
            this.#o.log.error(`outbox: attempt for ${row.id} failed unexpectedly: ${(err as Error).message}`);
          }),
        ),
      );
    }
  }
}
