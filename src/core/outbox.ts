/**
 * The outbox: every message is stored before the first attempt and stays queued until a verified receipt marks it
 * delivered, a peer refuses it for good, or it grows older than the maximum age. Attempts are leased in the database,
 * so a CLI `send` and a running node never send the same row at once; the receiver dedupes by id in any case.
 *
 * Each attempt signs the envelope afresh with the current time (same id), so a message queued for days still passes
 * the receiver's +-5 minute window. (Legacy v1 attempts keep the first timestamp while it is fresh: see v1Timestamp.)
 *
 * The maximum age is tried out: a retry that would fall after `expiresAt` is moved to `expiresAt`, and only an
 * attempt that ends at or after `expiresAt` without delivery marks the message failed as expired. A message found
 * long past its expiry (no node ran then, or the clock was set forward: a board that booted with a stale clock and
 * queued it before NTP corrected the time) still gets that last attempt: it is never failed without one.
 */
import { keyMatchesAddress, parseIPv6 } from "./address.ts";
import { deliverV1, deliverV2, speaksOnlyV1, type Delivery } from "./client.ts";
import { P2PError } from "./errors.ts";
import type { KeyPair } from "./keys.ts";
import type { Logger } from "./log.ts";
import { PEER_BLOCKED, PEER_REMOVED, type MessageRow, type Store } from "./store.ts";
import { buildEnvelope } from "./wire.ts";
import { buildV1Message, type V1Message } from "./wire-v1.ts";

/** Retry delays by attempt number (the last repeats), each jittered by +-20%. */
export const BACKOFF_MS = [2_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000];
const JITTER = 0.2;
export const LEASE_MS = 60_000;
const POLL_INTERVAL_MS = 1_000;
const CLAIM_BATCH = 32;
export const DEFAULT_PEER_PORT = 8099;
/**
 * A v1 retry reuses the message's first timestamp while it is at most this old. Receivers of ours accept v1 only
 * within +-5 min (docs/protocol.md section 13, `timestamp_window_seconds`); the minute to spare covers clock skew
 * between the nodes and the time in transit.
 */
export const V1_TS_REUSE_MS = 4 * 60_000;
/**
 * No message of this software was queued before this time. A row created earlier was queued while the clock was far
 * behind (a board without a real-time clock, before NTP set it; such clocks start in 1970 or at the build date):
 * its real age is unknown, so it is given its maximum age again from the first attempt that sees the clock right,
 * instead of being failed as long expired without ever being tried.
 */
export const PLAUSIBLE_SINCE_MS = Date.UTC(2026, 0, 1);

export function backoffDelay(attempts: number, retryAfterMs?: number): number {
  const base = BACKOFF_MS[Math.min(Math.max(attempts, 0), BACKOFF_MS.length - 1)]!;
  const jittered = base * (1 - JITTER + Math.random() * 2 * JITTER);
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}

/**
 * When to try a message again after an attempt that failed for now and ended at `done`: after `delayMs`, but never
 * after `expiresAt` (the last attempt is made at expiry). `undefined` when this attempt ended at or after expiry: it
 * was the last one, and the message has expired.
 */
export function nextAttemptTime(done: number, delayMs: number, expiresAt: number | null): number | undefined {
  if (expiresAt === null) return done + delayMs;
  if (done >= expiresAt) return undefined;
  return Math.min(done + delayMs, expiresAt);
}

/**
 * The timestamp a v1 attempt signs. v1 has no message id: a receiver of ours dedupes v1 by (key, signature)
 * (`v1MessageId`), and Ed25519 signatures are deterministic, so only a retry that signs the very same bytes is
 * recognised when an earlier attempt was stored but its answer was lost. Hence the first timestamp (`rowTs`) is
 * reused while it is well inside the receiver's +-5 min window (V1_TS_REUSE_MS; backoff puts the first five or six
 * retries there). Past that the receiver would refuse it as stale, so the current time is signed; a copy stored by an
 * attempt whose answer was lost can then be stored again. v1 cannot do better: nothing else in it identifies a
 * message. (The original 0.1.2-0.2.3 nodes check neither the window nor replays; for them the timestamp is moot.)
 */
export function v1Timestamp(rowTs: number, now: number): number {
  return Math.abs(now - rowTs) <= V1_TS_REUSE_MS ? rowTs : now;
}

/** "3 h" / "12 min" for a reason text. */
function duration(ms: number): string {
  return ms >= 3_600_000 ? `${Math.round(ms / 3_600_000)} h` : `${Math.max(0, Math.round(ms / 60_000))} min`;
}

/**
 * Builds the message an attempt sends. A P2PError there (content too large once JSON-escaped, a field this node
 * cannot sign) comes out the same on every attempt, so it becomes a permanent failure of the row, not an exception
 * that would leave the row leased, to be claimed and thrown again every lease period until it expires.
 */
function build<T>(make: () => T): { value: T } | { failed: Delivery } {
  try {
    return { value: make() };
  } catch (err) {
    if (!(err instanceof P2PError)) throw err;
    return { failed: { kind: "failed", code: err.code, reason: `${err.code}: this node cannot build the message: ${err.message}` } };
  }
}

function expiredReason(row: MessageRow, now: number, lastError: string | null): string {
  return `expired after ${duration(now - row.createdAt)} without delivery (the maximum message age); last error: ${lastError ?? "none"}`;
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
  async attempt(claimed: MessageRow): Promise<AttemptResult> {
    const { store, self, log } = this.#o;
    const now = Date.now();
    let row = claimed;
    if (row.expiresAt !== null && row.createdAt < PLAUSIBLE_SINCE_MS && now >= PLAUSIBLE_SINCE_MS) {
      const expiresAt = now + Math.max(0, row.expiresAt - row.createdAt);
      row = { ...row, expiresAt };
      store.setExpiry(row.id, expiresAt);
      log.info(`message ${row.id} to ${row.peer} was queued while the clock read ${new Date(row.createdAt).toISOString()}: its maximum age counts from now`);
    }
    const peer = store.getPeer(row.peer);
    // removePeer and block fail what is queued; this covers a row claimed just before (nothing is sent to either).
    if (!peer || peer.trust === "blocked") {
      const reason = peer ? PEER_BLOCKED : PEER_REMOVED;
      store.markFailed(row.id, reason);
      return { state: "failed", reason };
    }
    const target = { address: row.peer, port: peer?.port ?? DEFAULT_PEER_PORT, localAddress: this.#o.localAddress };
    let d: Delivery;
    if (peer?.protocol === 1) d = await this.#sendV1(target, row);
    else {
      const env = build(() => buildEnvelope(self, row.peer, row.kind, row.content, { id: row.id, ts: Date.now() }));
      d = "failed" in env ? env.failed : await deliverV2(target, env.value, peer?.publicKey ?? null);
      if (d.kind === "v1-only") {
        // A 404 alone could be any program on the port (while the peer's node is down, say): the peer is switched to
        // v1 (no receipts) only when its /peer/ping answers as a v1 node does, and does not list v2.
        const v1 = await speaksOnlyV1(target);
        if (v1 !== true) d = { kind: "retry", reason: `P2P_ERR_BAD_RESPONSE: HTTP 404 for a v2 message, and ${v1}`, code: "P2P_ERR_BAD_RESPONSE" };
        else {
          log.info(`${row.peer} does not speak v2; using legacy v1 until it sends us a v2 message`);
          store.setPeerProtocol(row.peer, 1); // a peer removed meanwhile stays removed
          d = await this.#sendV1(target, row);
        }
      }
    }
    const done = Date.now();
    switch (d.kind) {
      case "delivered": {
        const receipt = d.receipt ? JSON.stringify(d.receipt) : null;
        // A peer whose address is not derived from its app key (system-mode Yggdrasil) is pinned on first receipt;
        // one the user removed while the message was on its way is not re-created. A peer whose key was pinned
        // already (deliverV2 checked the receipt against it) is only marked seen: a receipt is a sign of life too.
        if (d.receipt) {
          const derived = keyMatchesAddress(Buffer.from(d.receipt.key, "base64"), parseIPv6(row.peer)!);
          const bound = store.bindReceiptKey(row.peer, d.receipt.key, derived ? "derived" : "tofu", done);
          if (bound && !bound.ok && bound.reason === "mismatch") {
            // Another key was pinned for the peer while this message was on its way: this receipt proves nothing.
            const reason = "P2P_ERR_KEY_MISMATCH: the receipt is signed by another key than the one pinned for the peer meanwhile";
            log.warn(`message ${row.id} to ${row.peer}: ${reason}; it is retried`);
            return this.#retry(row, done, reason);
          }
          if (bound && !bound.ok && !peer?.publicKey) log.warn(`${row.peer}: the receipt's key was not pinned (the peer is blocked)`);
        }
        store.markDelivered(row.id, receipt, d.storedAt);
        // The peer is reachable again: what is still queued to it follows now, not after its backoff (up to an hour),
        // so that older messages do not arrive long after this newer one (order is close, not strict: README). Best
        // effort: this message is delivered whatever happens here, and the others keep their schedule if it fails.
        try {
          store.rescheduleQueued(done, row.peer);
        } catch (err) {
          log.warn(`${row.peer}: could not move its waiting messages forward: ${(err as Error).message}`);
        }
        // Without a receipt (legacy v1 peers) the store records "sent": accepted, but storage is not proven.
        return receipt ? { state: "delivered", deliveredAt: d.storedAt, receipt } : { state: "sent", sentAt: d.storedAt };
      }
      case "failed":
        store.markFailed(row.id, d.reason);
        log.warn(`message ${row.id} to ${row.peer} failed: ${d.reason}`);
        return { state: "failed", reason: d.reason };
      case "retry":
        // Shown by status as a key mismatch, as one on an incoming message is (bindReceiptKey records it).
        if (d.otherKey !== undefined) store.bindReceiptKey(row.peer, d.otherKey, "tofu", done);
        return this.#retry(row, done, d.reason, d.retryAfterMs);
      default:
        throw new Error("unreachable: v1-only handled above");
    }
  }

  /** Another attempt after the backoff (or the peer's Retry-After), or failed when that would come past expiry. */
  #retry(row: MessageRow, now: number, why: string, retryAfterMs?: number): AttemptResult {
    const { store, log } = this.#o;
    const nextAttemptAt = nextAttemptTime(now, backoffDelay(row.attempts, retryAfterMs), row.expiresAt);
    if (nextAttemptAt === undefined) {
      const reason = expiredReason(row, now, why);
      store.markFailed(row.id, reason);
      log.warn(`message ${row.id} to ${row.peer} failed: ${reason}`);
      return { state: "failed", reason };
    }
    store.markRetry(row.id, nextAttemptAt, why);
    if (retryAfterMs !== undefined) {
      // The peer's Retry-After holds for everything queued to it: a backlog (the peer was offline) is not sent into
      // its rate limit one refusal at a time, each counting an attempt and growing its backoff.
      try {
        store.postponeQueued(row.peer, now + retryAfterMs, now);
      } catch (err) {
        log.warn(`${row.peer}: could not postpone its other queued messages: ${(err as Error).message}`);
      }
    }
    return { state: "queued", reason: why, nextAttemptAt };
  }

  /** The v1 message an attempt at `now` sends for `row` (see v1Timestamp for its timestamp). */
  v1Message(row: MessageRow, now: number): V1Message {
    return buildV1Message(this.#o.self, row.content, v1Timestamp(row.ts, now));
  }

  #sendV1(target: { address: string; port: number; localAddress?: string }, row: MessageRow): Promise<Delivery> {
    if (row.kind !== "chat") return Promise.resolve({ kind: "failed", code: "P2P_ERR_UNSUPPORTED_KIND", reason: `legacy v1 peers only take chat messages, not ${row.kind}` });
    const m = build(() => this.v1Message(row, Date.now()));
    return "failed" in m ? Promise.resolve(m.failed) : deliverV1(target, m.value);
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
