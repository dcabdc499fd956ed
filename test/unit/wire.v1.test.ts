/**
 * docs/protocol.md section 13 (Legacy v1): byte-exact with declaw 0.1.2-0.2.3 (/work/shared/docs/declaw-v1-wire.md),
 * plus what we add to make accepting it safe (a dedupe id from the key and signature).
 */
import assert from "node:assert/strict";
import { createPublicKey, verify } from "node:crypto";
import { describe, test } from "node:test";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { P2PError, type ErrorCode } from "../../src/core/errors.ts";
import { keyPairFromSeed, signBytes } from "../../src/core/keys.ts";
import { MAX_CONTENT_BYTES } from "../../src/core/wire.ts";
import { buildV1Message, parseV1Message, v1MessageId, v1SigningBytes, verifyV1, type V1Message } from "../../src/core/wire-v1.ts";

function party(fill: number) {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(fill));
  return { ...kp, address: formatIPv6(deriveAddress(kp.publicKey)) };
}
const A = party(0x01);
const B = party(0x02);
const TS = 1795682838549;
const good = buildV1Message(A, "héllo ✓", TS);

/** What an original v1 node does to sign: sort the five keys, JSON.stringify, UTF-8, Ed25519. */
function originalV1Sign(m: Omit<V1Message, "signature">): string {
  const fields: Record<string, unknown> = { fromYgg: m.fromYgg, publicKey: m.publicKey, event: m.event, content: m.content, timestamp: m.timestamp };
  const sorted = JSON.stringify(fields, Object.keys(fields).sort());
  return Buffer.from(signBytes(A, Buffer.from(sorted, "utf8"))).toString("base64");
}

function originalV1Verify(m: V1Message): boolean {
  const fields: Record<string, unknown> = { fromYgg: m.fromYgg, publicKey: m.publicKey, event: m.event, content: m.content, timestamp: m.timestamp };
  const sorted = JSON.stringify(fields, Object.keys(fields).sort());
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(m.publicKey, "base64")]);
  return verify(null, Buffer.from(sorted), createPublicKey({ key: spki, format: "der", type: "spki" }), Buffer.from(m.signature, "base64"));
}

describe("v1 signatures interoperate with the original implementation", () => {
  test("the signed bytes are compact JSON with sorted keys, non-ASCII raw", () => {
    assert.equal(
      Buffer.from(v1SigningBytes(good)).toString("utf8"),
      `{"content":"héllo ✓","event":"chat","fromYgg":"${A.address}","publicKey":"${good.publicKey}","timestamp":${TS}}`,
    );
  });

  test("only U+0000-U+001F, quote and backslash are escaped in the signed text: DEL, C1 controls and U+2028/9 stay raw", () => {
    const m = buildV1Message(A, "a\u007fb\u0085c\u2028d\u2029e\u0001f\tg", TS);
    const text = Buffer.from(v1SigningBytes(m)).toString("utf8");
    assert.ok(text.startsWith('{"content":"a\u007fb\u0085c\u2028d\u2029e\\u0001f\\tg","event"'), JSON.stringify(text));
    assert.ok(originalV1Verify(m));
  });

  test("a message we build verifies the way a v1 node verifies it", () => {
    assert.ok(originalV1Verify(good));
  });

  test("a message a v1 node builds (compressed non-canonical fromYgg too) verifies here", () => {
    for (const fromYgg of [A.address, A.address.toUpperCase(), "0200:" + A.address.slice(4)]) {
      const unsigned = { fromYgg, publicKey: good.publicKey, event: "chat" as const, content: 'with "quotes", \\, \n and \u0007', timestamp: TS };
      const m = { ...unsigned, signature: originalV1Sign(unsigned) };
      const r = parseV1Message(JSON.parse(JSON.stringify(m)));
      assert.ok(r.ok, fromYgg);
      assert.equal(r.value.fromYgg, fromYgg, "kept exactly as received: it is what was signed");
      assert.ok(verifyV1(r.value));
    }
  });

  test("extra fields are ignored and dropped; they are not signed", () => {
    const r = parseV1Message({ ...good, extra: "x", signatureAlg: "ed25519" });
    assert.ok(r.ok);
    assert.deepEqual(Object.keys(r.value).sort(), ["content", "event", "fromYgg", "publicKey", "signature", "timestamp"]);
    assert.ok(verifyV1(r.value));
  });

  test("any change to a signed field breaks the signature", () => {
    for (const c of [{ content: "hello ✓" }, { timestamp: TS + 1 }, { fromYgg: B.address }, { publicKey: Buffer.from(B.publicKey).toString("base64") }]) {
      const r = parseV1Message({ ...good, ...c });
      assert.ok(r.ok);
      assert.equal(verifyV1(r.value), false, JSON.stringify(c));
    }
  });

  test("verifyV1 never throws on garbage", () => {
    assert.equal(verifyV1({ ...good, signature: "x" }), false);
    assert.equal(verifyV1(null as unknown as V1Message), false);
  });
});

describe("v1 dedupe id", () => {
  test("is a deterministic UUIDv8 of (publicKey, signature)", () => {
    const id = v1MessageId(good);
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(v1MessageId({ ...good }), id);
    assert.notEqual(v1MessageId(buildV1Message(A, "héllo ✓", TS + 1)), id);
  });

  test("does not depend on unsigned presentation (extra fields, fromYgg text form)", () => {
    const r = parseV1Message({ ...good, extra: 1 });
    assert.ok(r.ok);
    assert.equal(v1MessageId(r.value), v1MessageId(good));
  });

  test("throws on an unparsed message (caller misuse)", () => {
    assert.throws(() => v1MessageId({ ...good, signature: "x" }), RangeError);
  });
});

const huge = "x".repeat(1_000_000);
const MALFORMED: Array<[string, unknown, ErrorCode]> = [
  ["null", null, "P2P_ERR_NOT_OBJECT"],
  ["array", [good], "P2P_ERR_NOT_OBJECT"],
  ["string", "hi", "P2P_ERR_NOT_OBJECT"],
  ["fromYgg missing", { ...good, fromYgg: undefined }, "P2P_ERR_MISSING_FIELD"],
  ["signature missing", Object.fromEntries(Object.entries(good).filter(([k]) => k !== "signature")), "P2P_ERR_MISSING_FIELD"],
  ["fromYgg outside 200::/7", { ...good, fromYgg: "fe80::1" }, "P2P_ERR_BAD_ADDRESS"],
  ["fromYgg in brackets", { ...good, fromYgg: `[${A.address}]` }, "P2P_ERR_BAD_ADDRESS"],
  ["fromYgg not IPv6", { ...good, fromYgg: "alice" }, "P2P_ERR_BAD_ADDRESS"],
  ["fromYgg number", { ...good, fromYgg: 1 }, "P2P_ERR_BAD_ADDRESS"],
  ["publicKey 31 bytes", { ...good, publicKey: Buffer.alloc(31).toString("base64") }, "P2P_ERR_BAD_KEY"],
  ["publicKey unpadded", { ...good, publicKey: good.publicKey.replace(/=$/, "") }, "P2P_ERR_BAD_KEY"],
  ["event not a string", { ...good, event: 1 }, "P2P_ERR_BAD_KIND"],
  ['event "announce"', { ...good, event: "announce" }, "P2P_ERR_UNSUPPORTED_KIND"],
  ["content number", { ...good, content: 1 }, "P2P_ERR_BAD_CONTENT"],
  ["content lone surrogate", { ...good, content: "\ud800" }, "P2P_ERR_BAD_CONTENT"],
  ["content oversized", { ...good, content: "a".repeat(MAX_CONTENT_BYTES + 1) }, "P2P_ERR_CONTENT_TOO_LARGE"],
  ["content huge", { ...good, content: huge }, "P2P_ERR_CONTENT_TOO_LARGE"],
  ["timestamp string", { ...good, timestamp: String(TS) }, "P2P_ERR_BAD_TIMESTAMP"],
  ["timestamp fractional", { ...good, timestamp: 1.5 }, "P2P_ERR_BAD_TIMESTAMP"],
  ["timestamp Infinity", { ...good, timestamp: Infinity }, "P2P_ERR_BAD_TIMESTAMP"],
  ["signature 63 bytes", { ...good, signature: Buffer.alloc(63).toString("base64") }, "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["signature huge", { ...good, signature: huge }, "P2P_ERR_BAD_SIGNATURE_ENCODING"],
];

describe("malformed v1 messages are refused with their specific code", () => {
  for (const [what, input, code] of MALFORMED) {
    test(`${what} -> ${code}`, () => {
      const clean = input && typeof input === "object" && !Array.isArray(input) ? JSON.parse(JSON.stringify(input)) : input;
      const r = parseV1Message(what === "timestamp Infinity" ? input : clean);
      assert.equal(r.ok ? "ok" : r.code, code);
    });
  }
});

describe("buildV1Message", () => {
  test("uses the canonical address, the standard base64 key and event chat", () => {
    assert.equal(good.fromYgg, A.address);
    assert.equal(good.publicKey, Buffer.from(A.publicKey).toString("base64"));
    assert.equal(good.event, "chat");
  });

  test("refuses invalid content with the content codes", () => {
    assert.throws(() => buildV1Message(A, "\udfff"), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_BAD_CONTENT");
    assert.throws(
      () => buildV1Message(A, "a".repeat(MAX_CONTENT_BYTES + 1)),
      (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_CONTENT_TOO_LARGE",
    );
  });
});
