/**
 * Per-source token buckets. Bounded: the least recently refilled source is forgotten first, so a flood of distinct
 * source addresses cannot grow memory without limit (a forgotten source merely starts again with a full bucket).
 */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export const MAX_TRACKED_SOURCES = 16_384;

export class RateLimiter {
  readonly #limit: RateLimit;
  /** `told`: a 429 went out since the bucket last had a token. */
  readonly #buckets = new Map<string, { tokens: number; at: number; told: boolean }>();

  constructor(limit: RateLimit) {
    this.#limit = limit;
  }

  /**
   * Whether to drop a new connection from `source` without any HTTP: it is out of tokens and was already answered
   * 429 while out of tokens (so it knows, and keeps going anyway). Consumes nothing.
   */
  shouldDrop(source: string, nowMs = performance.now()): boolean {
    const b = this.#buckets.get(source);
    if (!b || !b.told) return false;
    return b.tokens + ((nowMs - b.at) / 1000) * this.#limit.perSecond < 1;
  }

  /**
   * Charges `source` `tokens` requests' worth of its budget (its bucket goes into debt) and marks it as told: its
   * next connections are dropped at accept until the debt is repaid. For proof of bad faith (a forged signature),
   * not for mistakes. In requests, not seconds, so the cost scales with the configured rate.
   */
  penalize(source: string, tokens: number, nowMs = performance.now()): void {
    this.take(source, nowMs);
    const b = this.#buckets.get(source)!;
    b.tokens = Math.min(b.tokens, 1 - tokens);
    b.told = true;
  }

  /** Takes one token for `source`. Returns 0 when allowed, else the whole seconds to wait (>= 1). */
  take(source: string, nowMs = performance.now()): number {
    const { perSecond, burst } = this.#limit;
    let b = this.#buckets.get(source);
    if (b) {
      this.#buckets.delete(source); // re-insert below: Map order doubles as LRU order
      b.tokens = Math.min(burst, b.tokens + ((nowMs - b.at) / 1000) * perSecond);
      b.at = nowMs;
    } else {
      b = { tokens: burst, at: nowMs, told: false };
      if (this.#buckets.size >= MAX_TRACKED_SOURCES) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    this.#buckets.set(source, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.told = false;
      return 0;
    }
    b.told = true;
    return Math.max(1, Math.ceil((1 - b.tokens) / perSecond));
  }
}
