/**
 * Seeded fuzzing of the pure envelope parsers (docs/protocol.md sections 4, 6, 10, 11, 13), as the server runs them:
 * bytes -> decodeJsonBody -> parse -> verify. Oracles:
 *   - nothing throws, whatever the input (nor inside the parser: its catch-all refusal never shows);
 *   - a refusal carries a code of the error table with status 400;
 *   - an accepted object satisfies every field rule, checked here independently, and survives a JSON round trip;
 *   - an object that verifies is field-for-field the one that was signed (no mutation yields a different valid
 *     message: "zero invalid messages accepted").
 * The seed is printed; replay a failure with DECLAW_FUZZ_SEED=<seed>. DECLAW_FUZZ_MS sets the time budget.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { canonicalAddress, isYggdrasilAddress, parseIPv6 } from "../../src/core/address.ts";
import { ERROR_TABLE, isErrorCode, type Result } from "../../src/core/errors.ts";
import {
  MAX_CONTENT_BYTES,
  SUPPORTED_KINDS,
  buildEnvelope,
  buildPingProof,
  buildReceipt,
  decodeJsonBody,
  isMessageId,
  newMessageId,
  newNonce,
  parseEnvelope,
  parseNonce,
  parsePingProof,
  parseReceipt,
  verifyEnvelope,
  verifyPingProof,
  verifyReceipt,
} from "../../src/core/wire.ts";
import { buildV1Message, parseV1Message, v1MessageId, verifyV1 } from "../../src/core/wire-v1.ts";
import { Rng, duplicateMember, fuzzBudgetMs, fuzzIdentity, fuzzSeed, mutateBytes, mutateObject, randomValue } from "../helpers/fuzz-gen.ts";

const SEED = fuzzSeed();
const BUDGET_MS = fuzzBudgetMs(15_000);
console.log(`# fuzz.parsers seed=${SEED} (replay: DECLAW_FUZZ_SEED=${SEED}) budget=${BUDGET_MS} ms`);

const enc = new TextEncoder();

function b64(text: string, bytes: number): boolean {
  const b = Buffer.from(text, "base64");
  return b.length === bytes && b.toString("base64") === text;
}
function addr(text: string): boolean {
  const b = parseIPv6(text);
  return b !== undefined && isYggdrasilAddress(b) && canonicalAddress(text) === text;
}
function tsOk(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && !Object.is(n, -0);
}
function contentOk(s: string): boolean {
  return s.isWellFormed() && Buffer.byteLength(s, "utf8") <= MAX_CONTENT_BYTES;
}

/** The input of one case, kept to describe a failure. */
function show(bytes: Uint8Array): string {
  const t = Buffer.from(bytes).toString("utf8");
  return t.length > 400 ? `${t.slice(0, 400)}... (${bytes.length} bytes)` : t;
}

/** Makes the candidate bytes for one case from an original object. */
function candidate(rng: Rng, original: Record<string, unknown>): Uint8Array {
  switch (rng.int(6)) {
    case 0:
    case 1:
      return enc.encode(JSON.stringify(mutateObject(rng, original)));
    case 2:
      return enc.encode(duplicateMember(rng, original));
    case 3:
    case 4:
      return mutateBytes(rng, enc.encode(JSON.stringify(original)));
    default:
      return rng.bool(0.8) ? enc.encode(JSON.stringify(original)) : enc.encode(JSON.stringify(randomValue(rng)) ?? "undefined");
  }
}

interface Kind<T> {
  name: string;
  originals: Record<string, unknown>[];
  parse: (v: unknown) => Result<T>;
  verify: (t: T, original: Record<string, unknown>) => boolean;
  invariants: (t: T) => string | undefined;
  /** Fields that must equal the original when the object verifies. */
  signedFields: readonly string[];
}

function runKind<T>(k: Kind<T>, rng: Rng, deadline: number): { cases: number; accepted: number; verified: number } {
  let cases = 0;
  let accepted = 0;
  let verified = 0;
  while (performance.now() < deadline || cases < 200) {
    cases++;
    const original = rng.pick(k.originals);
    const bytes = candidate(rng, original);
    const where = () => `${k.name} case ${cases}, seed ${SEED}: ${show(bytes)}`;
    let json: Result<unknown>;
    let parsed: Result<T>;
    try {
      json = decodeJsonBody(bytes);
      parsed = json.ok ? k.parse(json.value) : json;
    } catch (err) {
      assert.fail(`parser threw (${(err as Error).message}) on ${where()}`);
    }
    if (!parsed.ok) {
      assert.ok(isErrorCode(parsed.code), `unknown code ${parsed.code} on ${where()}`);
      assert.equal(ERROR_TABLE[parsed.code].status, 400, `${parsed.code} is not a 400 on ${where()}`);
      // The parsers turn an exception inside them into "... could not be read" so that a bug cannot crash a receiver;
      // for input that came out of JSON.parse that refusal means the parser threw: a bug all the same.
      assert.doesNotMatch(parsed.message, /could not be read/, `the parser threw inside on ${where()}`);
      continue;
    }
    accepted++;
    const problem = k.invariants(parsed.value);
    assert.equal(problem, undefined, `accepted an object breaking a field rule (${problem}) on ${where()}`);
    const again = k.parse(JSON.parse(JSON.stringify(parsed.value)));
    assert.ok(again.ok, `accepted object does not survive a JSON round trip on ${where()}`);
    assert.deepEqual(again.value, parsed.value);
    let good: boolean;
    try {
      good = k.verify(parsed.value, original);
    } catch (err) {
      assert.fail(`verify threw (${(err as Error).message}) on ${where()}`);
    }
    if (good) {
      verified++;
      const v = parsed.value as Record<string, unknown>;
      for (const f of k.signedFields) {
        assert.deepEqual(v[f], original[f], `a mutated ${k.name} verified with a different "${f}" on ${where()}`);
      }
    }
  }
  return { cases, accepted, verified };
}

describe(`parser fuzz (seed ${SEED})`, { timeout: BUDGET_MS * 3 + 60_000 }, () => {
  const rng = new Rng(SEED);
  const A = fuzzIdentity(rng);
  const B = fuzzIdentity(rng);
  const now = Date.now();
  const contents = ["", "hi", "héllo ✓ \u{1f600}", "\"\\\n\u0000", "x".repeat(MAX_CONTENT_BYTES), "é".repeat(MAX_CONTENT_BYTES / 2)];
  const envelopes = contents.map((c, i) => buildEnvelope(i % 2 ? B : A, i % 2 ? A.address : B.address, "chat", c, { id: newMessageId(now + i), ts: now + i }));
  const nonce = newNonce();
  // The share of time per kind: envelopes matter most (that is what peers send us).
  const share = { envelope: 0.45, receipt: 0.2, pong: 0.15, v1: 0.15, nonce: 0.05 };

  test("envelopes: no throw, coded 400 refusals, accepted ones are well-formed, only the signed one verifies", () => {
    const r = runKind({
      name: "envelope",
      originals: envelopes as unknown as Record<string, unknown>[],
      parse: parseEnvelope,
      verify: (e) => verifyEnvelope(e),
      invariants: (e) =>
        e.v !== 2 ? "v" : !isMessageId(e.id) ? "id" : !addr(e.from) ? "from" : !addr(e.to) ? "to" : !b64(e.key, 32) ? "key"
        : !tsOk(e.ts) ? "ts" : !SUPPORTED_KINDS.includes(e.kind) ? "kind" : !contentOk(e.content) ? "content" : !b64(e.sig, 64) ? "sig"
        : Object.keys(e).length !== 9 ? "field set" : undefined,
      signedFields: ["v", "id", "from", "to", "key", "ts", "kind", "content", "sig"],
    }, rng.fork(), performance.now() + BUDGET_MS * share.envelope);
    console.log(`# envelope: ${r.cases} cases, ${r.accepted} parsed, ${r.verified} verified (all equal to a signed original)`);
    assert.ok(r.verified > 0, "the fuzz never produced a valid envelope: the oracle is not exercised");
  });

  test("receipts", () => {
    const receipts = envelopes.map((e, i) => buildReceipt(i % 2 ? A : B, { id: e.id, from: e.from }, now + 5 + i));
    const r = runKind({
      name: "receipt",
      originals: receipts as unknown as Record<string, unknown>[],
      parse: parseReceipt,
      verify: (x) => verifyReceipt(x),
      invariants: (x) =>
        x.type !== "receipt" ? "type" : !isMessageId(x.id) ? "id" : !addr(x.from) ? "from" : !addr(x.to) ? "to" : !b64(x.key, 32) ? "key"
        : !tsOk(x.stored) ? "stored" : !b64(x.sig, 64) ? "sig" : undefined,
      signedFields: ["v", "type", "id", "from", "to", "key", "stored", "sig"],
    }, rng.fork(), performance.now() + BUDGET_MS * share.receipt);
    console.log(`# receipt: ${r.cases} cases, ${r.accepted} parsed, ${r.verified} verified`);
    assert.ok(r.verified > 0);
  });

  test("ping proofs (verified against the asker's nonce)", () => {
    const proofs = [buildPingProof(A, nonce, now), buildPingProof(B, nonce, now + 1)];
    const r = runKind({
      name: "pong",
      originals: proofs as unknown as Record<string, unknown>[],
      parse: parsePingProof,
      verify: (p) => verifyPingProof(p, nonce),
      invariants: (p) =>
        p.type !== "pong" ? "type" : !addr(p.address) ? "address" : !b64(p.key, 32) ? "key" : !tsOk(p.ts) ? "ts"
        : !parseNonce(p.nonce).ok ? "nonce" : !p.versions.includes(2) ? "versions" : !b64(p.sig, 64) ? "sig" : undefined,
      signedFields: ["v", "type", "address", "key", "versions", "ts", "nonce", "sig"],
    }, rng.fork(), performance.now() + BUDGET_MS * share.pong);
    console.log(`# pong: ${r.cases} cases, ${r.accepted} parsed, ${r.verified} verified`);
    assert.ok(r.verified > 0);
  });

  test("legacy v1 messages (extra members ignored, the six fields must match when it verifies)", () => {
    const v1 = contents.slice(0, 4).map((c, i) => buildV1Message(i % 2 ? B : A, c, now + i));
    const r = runKind({
      name: "v1",
      originals: v1 as unknown as Record<string, unknown>[],
      parse: parseV1Message,
      verify: (m, o) => verifyV1(m) && v1MessageId(m) === v1MessageId(o as never),
      invariants: (m) => {
        const a = parseIPv6(m.fromYgg);
        return !a || !isYggdrasilAddress(a) ? "fromYgg" : !b64(m.publicKey, 32) ? "publicKey" : m.event !== "chat" ? "event"
          : !contentOk(m.content) ? "content" : !tsOk(m.timestamp) ? "timestamp" : !b64(m.signature, 64) ? "signature" : undefined;
      },
      signedFields: ["fromYgg", "publicKey", "event", "content", "timestamp", "signature"],
    }, rng.fork(), performance.now() + BUDGET_MS * share.v1);
    console.log(`# v1: ${r.cases} cases, ${r.accepted} parsed, ${r.verified} verified`);
    assert.ok(r.verified > 0);
  });

  test("nonces (query parameter of /v2/ping)", () => {
    const local = rng.fork();
    const deadline = performance.now() + BUDGET_MS * share.nonce;
    let n = 0;
    while (performance.now() < deadline || n < 200) {
      n++;
      const base = local.bool(0.3) ? nonce : Buffer.from(local.bytes(local.int(80))).toString(local.bool() ? "base64url" : "base64");
      const text = local.bool(0.5) ? Buffer.from(mutateBytes(local, enc.encode(base))).toString("latin1") : base;
      const r = parseNonce(text);
      if (r.ok) {
        const b = Buffer.from(text, "base64url");
        assert.ok(b.length >= 16 && b.length <= 64 && b.toString("base64url") === text, `accepted nonce ${JSON.stringify(text)} (seed ${SEED})`);
      } else assert.equal(r.code, "P2P_ERR_BAD_NONCE");
    }
  });
});
