/**
 * The outbox (docs/protocol.md section 8, sending; section 13, sending v1): what one attempt records in the store
 * when the message cannot be built, when a retry would fall after the maximum age, and which timestamp a v1 retry
 * signs. Attempts run against a real Store in a temp dir. The peer is a 200::/7 address, and the outbox binds its
 * connections to a source address this host does not have (UNBOUND), so connect() fails locally (EADDRNOTAVAIL) and
 * an attempt ends as "retry later" without any packet leaving the machine (this host may route 200::/7 out).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { DEFAULT_CONFIG } from "../../src/core/config.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { silentLogger } from "../../src/core/log.ts";
import {
  BACKOFF_MS,
  backoffDelay,
  DEFAULT_PEER_PORT,
  LEASE_MS,
  nextAttemptTime,
  Outbox,
  PLAUSIBLE_SINCE_MS,
  V1_TS_REUSE_MS,
  v1Timestamp,
} from "../../src/core/outbox.ts";
import { PEER_BLOCKED, PEER_REMOVED, type MessageRow, type Store } from "../../src/core/store.ts";
import { MAX_BODY_BYTES, MAX_CONTENT_BYTES, newMessageId } from "../../src/core/wire.ts";
import { v1MessageId } from "../../src/core/wire-v1.ts";
import { openTemp } from "../helpers/store-fixture.ts";

function party(fill: number) {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(fill));
  return { ...kp, address: formatIPv6(deriveAddress(kp.publicKey)) };
}
const SELF = party(0x11);
/** A valid peer address with no node behind it. */
const NOBODY = party(0x12).address;
const HOUR_MS = 3_600_000;
/** A source address no interface here has: every connection the outbox tries fails at bind. */
const UNBOUND = "200:dead:beef::1";

/** Queues a message to NOBODY as `send` would, with `attempts` failed attempts behind it, and claims it (the store holds no other queued row). */
function queued(store: Store, o: { content?: string; expiresAt: number; attempts?: number; lastError?: string; createdAt?: number }): MessageRow {
  const now = Date.now();
  const createdAt = o.createdAt ?? now;
  const id = newMessageId(createdAt);
  if (!store.getPeer(NOBODY)) store.upsertPeer({ address: NOBODY, trust: "trusted" });
  store.enqueueOutbound({ id, peer: NOBODY, kind: "chat", content: o.content ?? "hello", ts: createdAt, protocol: 2, expiresAt: o.expiresAt }, createdAt);
  for (let i = 0; i < (o.attempts ?? 0); i++) store.markRetry(id, createdAt, o.lastError ?? "earlier attempt failed");
  const [row] = store.claimDue(now, 10, LEASE_MS);
  assert.equal(row?.id, id, "claimed (the only queued row)");
  return row!;
}

function outbox(store: Store): Outbox {
  return new Outbox({ self: SELF, store, log: silentLogger, localAddress: UNBOUND });
}

test("a row whose content cannot be built into a message is failed with the reason, not left leased", async (t) => {
  const { store } = openTemp(t);
  // Under MAX_CONTENT_BYTES as UTF-8, but each U+0001 becomes a 6-byte \u0001 in JSON: far over MAX_BODY_BYTES.
  const content = "\u0001".repeat(MAX_CONTENT_BYTES);
  assert.ok(JSON.stringify(content).length > MAX_BODY_BYTES);
  const row = queued(store, { content, expiresAt: Date.now() + HOUR_MS });

  const r = await outbox(store).attempt(row);

  assert.equal(r.state, "failed");
  assert.match(r.state === "failed" ? r.reason : "", /^P2P_ERR_CONTENT_TOO_LARGE: /);
  const stored = store.getMessage("out", row.id);
  assert.equal(stored?.state, "failed");
  assert.match(stored?.lastError ?? "", /P2P_ERR_CONTENT_TOO_LARGE/);
  assert.equal(stored?.nextAttemptAt, null);
  assert.deepEqual(store.claimDue(Date.now() + 2 * LEASE_MS, 10, LEASE_MS), [], "never claimed again");
});

test("a retry that would fall after the maximum age is moved to the expiry: the last part of the age is tried", async (t) => {
  const { store } = openTemp(t);
  // Nine failed attempts: the next backoff is an hour (+-20%), far past an expiry one minute away.
  const expiresAt = Date.now() + 60_000;
  const row = queued(store, { expiresAt, attempts: 9 });
  assert.equal(BACKOFF_MS[9], HOUR_MS);

  const r = await outbox(store).attempt(row);

  assert.deepEqual(r.state === "queued" ? { state: r.state, nextAttemptAt: r.nextAttemptAt } : r, { state: "queued", nextAttemptAt: expiresAt });
  const stored = store.getMessage("out", row.id);
  assert.equal(stored?.state, "queued");
  assert.equal(stored?.nextAttemptAt, expiresAt);
  assert.equal(stored?.attempts, 10);
  assert.match(stored?.lastError ?? "", new RegExp(`port ${DEFAULT_PEER_PORT}`), "this attempt's network error");
});

test("the attempt due at expiry is made; only when it fails is the message failed as expired", async (t) => {
  const { store } = openTemp(t);
  const createdAt = Date.now() - 7 * 24 * HOUR_MS;
  // Claimed a moment after its expiry, as the worker claims the last attempt scheduled there.
  const row = queued(store, { createdAt, expiresAt: Date.now() - 1_000, attempts: 40, lastError: "P2P_ERR_BUSY: earlier" });

  const r = await outbox(store).attempt(row);

  assert.equal(r.state, "failed");
  const reason = r.state === "failed" ? r.reason : "";
  assert.match(reason, /^expired after 168 h without delivery/);
  assert.match(reason, new RegExp(`last error: ${NOBODY} port ${DEFAULT_PEER_PORT}: `), "the error of the attempt just made");
  const stored = store.getMessage("out", row.id);
  assert.equal(stored?.state, "failed");
  assert.equal(stored?.lastError, reason);
});

test("a row found long after its expiry (no node ran, or the clock was set forward) gets its last attempt first", async (t) => {
  const { store } = openTemp(t);
  // Queued "9 days ago": a week of downtime, or a clock 9 days behind at queue time that NTP has corrected since.
  const row = queued(store, { createdAt: Date.now() - 9 * 24 * HOUR_MS, expiresAt: Date.now() - 2 * 24 * HOUR_MS, attempts: 40, lastError: "P2P_ERR_BUSY: earlier" });

  const r = await outbox(store).attempt(row);

  assert.equal(r.state, "failed", "NOBODY does not answer: this last attempt fails, and only then the message");
  assert.match(r.state === "failed" ? r.reason : "", new RegExp(`^expired after 216 h without delivery.*; last error: ${NOBODY} port ${DEFAULT_PEER_PORT}: `), "the error of the attempt just made");
  assert.equal(store.getMessage("out", row.id)?.state, "failed");
});

test("a row queued while the clock was far behind (1970, before NTP) is tried, its maximum age counted from now", async (t) => {
  const { store } = openTemp(t);
  const maxAge = 7 * 24 * HOUR_MS;
  const createdAt = 5_000; // 1970-01-01T00:00:05Z: a board without a real-time clock, before its clock was set
  const row = queued(store, { createdAt, expiresAt: createdAt + maxAge });
  const before = Date.now();

  const r = await outbox(store).attempt(row);

  assert.equal(r.state, "queued", "attempted (NOBODY does not answer) and queued again, not failed as expired");
  const stored = store.getMessage("out", row.id)!;
  assert.ok(stored.expiresAt! >= before + maxAge && stored.expiresAt! <= Date.now() + maxAge, `expiry ${stored.expiresAt} is a maximum age from now`);
  assert.equal(stored.attempts, 1);

  // A row queued under a right clock long ago is still failed as expired (the test above): only pre-2026 times move.
  assert.ok(PLAUSIBLE_SINCE_MS > createdAt && PLAUSIBLE_SINCE_MS < before);
});

test("backoffDelay: the attempt's step of BACKOFF_MS, +-20%, the last step after that; a longer Retry-After wins", () => {
  for (let attempts = 0; attempts < BACKOFF_MS.length + 3; attempts++) {
    const step = BACKOFF_MS[Math.min(attempts, BACKOFF_MS.length - 1)]!;
    for (let i = 0; i < 20; i++) {
      const d = backoffDelay(attempts);
      assert.ok(d >= step * 0.8 - 1 && d <= step * 1.2 + 1, `attempt ${attempts}: ${d} ms for a ${step} ms step`);
    }
  }
  assert.ok(backoffDelay(0) < BACKOFF_MS[1]! * 0.8, "the first retry comes after the first step, not a later one");
  assert.equal(backoffDelay(0, 90_000), 90_000, "the receiver's Retry-After is honoured when it asks for longer");
  assert.ok(backoffDelay(5, 1_000) >= BACKOFF_MS[5]! * 0.8, "a shorter Retry-After does not hasten the backoff");
});

test("nextAttemptTime: backoff or Retry-After, but never past the expiry; an attempt ending at expiry was the last", () => {
  const done = 1_000_000;
  assert.equal(nextAttemptTime(done, 5_000, null), done + 5_000, "no maximum age");
  assert.equal(nextAttemptTime(done, 5_000, done + HOUR_MS), done + 5_000, "well before expiry");
  assert.equal(nextAttemptTime(done, HOUR_MS, done + 10 * 60_000), done + 10 * 60_000, "a 1 h backoff or Retry-After: 3600 with 10 min left");
  assert.equal(nextAttemptTime(done, 5_000, done + 1), done + 1);
  assert.equal(nextAttemptTime(done, 5_000, done), undefined, "ended at expiry");
  assert.equal(nextAttemptTime(done, 5_000, done - 1), undefined, "ended after expiry");
});

test("v1 retries sign the first timestamp while it is well inside the receiver's window, so they dedupe", (t) => {
  const { store } = openTemp(t);
  const row = queued(store, { expiresAt: Date.now() + HOUR_MS });
  const o = outbox(store);
  assert.ok(V1_TS_REUSE_MS <= DEFAULT_CONFIG.timestampWindowMs - 60_000, "a minute to spare for skew and transit");

  const first = o.v1Message(row, row.ts);
  const retry = o.v1Message(row, row.ts + 2_000);
  const late = o.v1Message(row, row.ts + V1_TS_REUSE_MS);
  assert.equal(retry.timestamp, row.ts);
  assert.deepEqual(retry, first, "the same signed bytes");
  assert.equal(v1MessageId(late), v1MessageId(first), "a receiver of ours stores it once");

  const stale = o.v1Message(row, row.ts + V1_TS_REUSE_MS + 1);
  assert.equal(stale.timestamp, row.ts + V1_TS_REUSE_MS + 1, "past the margin: signed with the current time, which the receiver accepts");
  assert.notEqual(v1MessageId(stale), v1MessageId(first));
});

test("v1Timestamp: a first timestamp up to V1_TS_REUSE_MS away either way is reused, else now", () => {
  const ts = 1_795_682_838_549;
  assert.equal(v1Timestamp(ts, ts), ts);
  assert.equal(v1Timestamp(ts, ts + V1_TS_REUSE_MS), ts);
  assert.equal(v1Timestamp(ts, ts - V1_TS_REUSE_MS), ts, "the clock went back a little");
  assert.equal(v1Timestamp(ts, ts + V1_TS_REUSE_MS + 1), ts + V1_TS_REUSE_MS + 1);
  assert.equal(v1Timestamp(ts, ts - V1_TS_REUSE_MS - 1), ts - V1_TS_REUSE_MS - 1);
});

test("a row claimed just before its peer was removed or blocked is failed with the reason, not sent", async (t) => {
  const { store } = openTemp(t);
  const far = Date.now() + HOUR_MS;
  const removed = queued(store, { expiresAt: far });
  store.removePeer(NOBODY);
  assert.deepEqual(await outbox(store).attempt(removed), { state: "failed", reason: PEER_REMOVED });
  const blocked = queued(store, { expiresAt: far });
  store.setTrust(NOBODY, "blocked");
  assert.deepEqual(await outbox(store).attempt(blocked), { state: "failed", reason: PEER_BLOCKED });
  assert.equal(store.getMessage("out", blocked.id)?.attempts, 0, "no attempt was made");
});
