/**
 * Per-source token buckets (src/core/rate-limit.ts), on an explicit clock: the burst, the refill, the wait a refused
 * source is told, dropping at accept only a source that was told and keeps coming, the debt of a penalty, and the
 * bound on how many sources are remembered.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { MAX_TRACKED_SOURCES, RateLimiter } from "../../src/core/rate-limit.ts";

test("a source gets its burst at once, then one request per 1/perSecond; a refusal says how many seconds to wait", () => {
  const l = new RateLimiter({ perSecond: 2, burst: 3 });
  assert.deepEqual([l.take("a", 0), l.take("a", 0), l.take("a", 0)], [0, 0, 0]);
  assert.equal(l.take("a", 0), 1, "out of tokens: come back in a second");
  assert.equal(l.take("a", 499), 1, "half a token is not a token");
  assert.equal(l.take("a", 1_000), 0, "refilled at perSecond");
  assert.equal(l.take("b", 1_000), 0, "another source has its own bucket");
  assert.equal(l.take("a", 60_000), 0);
  assert.deepEqual([l.take("a", 60_000), l.take("a", 60_000), l.take("a", 60_000)], [0, 0, 1], "a refill never exceeds the burst");
});

test("connections are dropped at accept only from a source that was refused and keeps coming before it refilled", () => {
  const l = new RateLimiter({ perSecond: 1, burst: 1 });
  assert.equal(l.shouldDrop("a", 0), false, "unknown source");
  l.take("a", 0);
  assert.equal(l.shouldDrop("a", 0), false, "out of tokens, but not told yet: it gets its 429");
  assert.equal(l.take("a", 0), 1);
  assert.equal(l.shouldDrop("a", 500), true, "told, and still out");
  assert.equal(l.shouldDrop("a", 1_000), false, "a token again: served");
});

test("a penalty is a debt in requests: the source is dropped until it is repaid at the configured rate", () => {
  const l = new RateLimiter({ perSecond: 10, burst: 20 });
  l.penalize("forger", 500, 0);
  assert.equal(l.shouldDrop("forger", 0), true);
  assert.equal(l.shouldDrop("forger", 49_000), true, "500 requests at 10/s: 50 s");
  assert.equal(l.shouldDrop("forger", 50_100), false);
  assert.equal(l.shouldDrop("honest", 0), false, "others are not affected");
});

test(`at most ${MAX_TRACKED_SOURCES} sources are remembered; the one refilled least recently is forgotten first`, () => {
  const l = new RateLimiter({ perSecond: 1, burst: 1 });
  l.take("old", 0);
  l.take("kept", 0);
  assert.equal(l.take("old", 0), 1);
  assert.equal(l.take("kept", 0), 1);
  for (let i = 0; i < MAX_TRACKED_SOURCES - 1; i++) {
    if (i === 10) l.take("kept", 1); // used again: now among the most recent
    l.take(`s${i}`, 1);
  }
  assert.equal(l.take("old", 2), 0, "forgotten: it starts again with a full bucket");
  assert.equal(l.take("kept", 2), 1, "still remembered: still out of tokens");
});
