/**
 * Per-source token buckets. Bounded: the least recently refilled source is forgotten first, so a flood of distinct
 * source addresses cannot grow memory without limit (a forgotten source merely starts again with a full bucket).
 */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

const MAX_TRACKED_SOURCES = 16_384;

export class RateLimiter {
  readonly #limit: RateLimit;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(limit: RateLimit) {
    this.#limit = limit;
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
      b = { tokens: burst, at: nowMs };
      if (this.#buckets.size >= MAX_TRACKED_SOURCES) this.#buckets.delete(this.#buckets.keys().next().value!);
    }
    this.#buckets.set(source, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / perSecond));
  }
}
