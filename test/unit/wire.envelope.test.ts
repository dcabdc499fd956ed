/**
 * docs/protocol.md section 6 (Envelope) and section 7: building, parsing and verifying v2 envelopes. The table test
 * lists malformed envelopes with the exact code each must be refused with; nothing may throw.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { P2PError, type ErrorCode } from "../../src/core/errors.ts";
import { keyPairFromSeed, signBytes } from "../../src/core/keys.ts";
import { Rng } from "../helpers/fuzz-gen.ts";
import {
  MAX_BODY_BYTES,
  MAX_CONTENT_BYTES,
  buildEnvelope,
  decodeCanonicalAddress,
  envelopeSigningBytes,
  newMessageId,
  parseEnvelope,
  verifyEnvelope,
  type Envelope,
} from "../../src/core/wire.ts";

function party(fill: number) {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(fill));
  return { ...kp, address: formatIPv6(deriveAddress(kp.publicKey)) };
}
const A = party(0x01);
const B = party(0x02);
const C = party(0x03);
const TS = 1795682838549;
const ID = "01a21709-a815-7d3c-9a1b-4f2e6d8c0b5a";
const good: Envelope = buildEnvelope(A, B.address, "chat", "héllo ✓", { id: ID, ts: TS });

/** A copy of the good envelope with fields replaced (undefined = removed). */
function mutate(changes: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...good };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Re-signs arbitrary (valid) fields with A's key, so a case can isolate one rule. */
function signed(fields: Omit<Envelope, "sig">): Envelope {
  return { ...fields, sig: Buffer.from(signBytes(A, envelopeSigningBytes(fields))).toString("base64") };
}

describe("a well-formed envelope", () => {
  test("parses to an equal, fresh object and verifies", () => {
    const r = parseEnvelope(JSON.parse(JSON.stringify(good)));
    assert.ok(r.ok);
    assert.deepEqual(r.value, good);
    assert.ok(verifyEnvelope(r.value));
  });

  test("survives JSON round trips of every kind of content", () => {
    for (const content of ["", "plain", "héllo ✓", "emoji 🦀 and \u0000 nul", "\"quotes\" \\ and \n newlines", "\u2028\u2029"]) {
      const e = buildEnvelope(A, B.address, "chat", content, { ts: TS });
      const r = parseEnvelope(JSON.parse(JSON.stringify(e)));
      assert.ok(r.ok, `content ${JSON.stringify(content)}`);
      assert.equal(r.value.content, content);
      assert.ok(verifyEnvelope(r.value));
    }
  });

  test("the parse result is not the input object (no aliasing of peer data)", () => {
    const input = JSON.parse(JSON.stringify(good));
    const r = parseEnvelope(input);
    assert.ok(r.ok);
    assert.notEqual(r.value, input);
  });

  test("buildEnvelope writes addresses in canonical form whatever text it is given", () => {
    const long = "0200:" + B.address.slice(4);
    const e = buildEnvelope({ ...A, address: A.address.toUpperCase() }, long, "chat", "x", { ts: TS });
    assert.equal(e.from, A.address);
    assert.equal(e.to, B.address);
    assert.ok(verifyEnvelope(e));
  });

  test("content of exactly MAX_CONTENT_BYTES UTF-8 bytes is accepted, one more byte is not", () => {
    const max = "é".repeat(MAX_CONTENT_BYTES / 2); // 2 bytes each
    assert.ok(parseEnvelope(signed({ ...good, content: max })).ok);
    const over = parseEnvelope({ ...good, content: max + "a" }); // cannot be signed: the encoder refuses it too
    assert.equal(over.ok ? "ok" : over.code, "P2P_ERR_CONTENT_TOO_LARGE");
  });

  test("a fresh id is a UUIDv7 carrying the timestamp", () => {
    const id = newMessageId(TS);
    assert.match(id, /^01a21709-a815-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(newMessageId(TS), id, "random bits differ");
    assert.match(buildEnvelope(A, B.address, "chat", "x").id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/);
  });
});

describe("signature checks (verifyEnvelope is signature-only and never throws)", () => {
  const tampered: Array<[string, Record<string, unknown>]> = [
    ["content changed", { content: "hello ✓" }],
    ["ts changed by 1 ms", { ts: TS + 1 }],
    ["to changed", { to: C.address }],
    ["from changed", { from: C.address }],
    ["id changed", { id: "01a21709-a815-7d3c-9a1b-4f2e6d8c0b5b" }],
    ["key replaced by another valid key", { key: Buffer.from(C.publicKey).toString("base64") }],
    ["signature of another envelope", { sig: buildEnvelope(A, B.address, "chat", "other", { id: ID, ts: TS }).sig }],
  ];
  for (const [what, change] of tampered) {
    test(`${what}: parses but does not verify`, () => {
      const r = parseEnvelope(mutate(change));
      assert.ok(r.ok);
      assert.equal(verifyEnvelope(r.value), false);
    });
  }

  test("a signature by the right key over the receipt-domain bytes does not verify", () => {
    const bytes = envelopeSigningBytes(good);
    const domain = Buffer.from("declaw/v2/envelope\0");
    const other = Buffer.concat([Buffer.from("declaw/v2/receipt\0"), bytes.subarray(domain.length)]);
    const r = parseEnvelope({ ...good, sig: Buffer.from(signBytes(A, other)).toString("base64") });
    assert.ok(r.ok);
    assert.equal(verifyEnvelope(r.value), false);
  });

  test("a signature over the bytes without any domain prefix does not verify", () => {
    const bytes = envelopeSigningBytes(good);
    const bare = bytes.subarray(Buffer.byteLength("declaw/v2/envelope\0"));
    const r = parseEnvelope({ ...good, sig: Buffer.from(signBytes(A, bare)).toString("base64") });
    assert.ok(r.ok);
    assert.equal(verifyEnvelope(r.value), false);
  });

  test("unvalidated garbage given to verifyEnvelope returns false", () => {
    assert.equal(verifyEnvelope({ ...good, id: "nope" }), false);
    assert.equal(verifyEnvelope({ ...good, v: 3 } as unknown as Envelope), false);
    assert.equal(verifyEnvelope({} as Envelope), false);
    assert.equal(verifyEnvelope(null as unknown as Envelope), false);
  });
});

const longString = "x".repeat(1_000_000);
const canonicalB = B.address; // e.g. 200:fd8d:11e2:af05:d141:52b9:5732:7967
const zeroGroups = "200:1:0:0:0:0:0:1";

// [description, input, expected code]
const MALFORMED: Array<[string, unknown, ErrorCode]> = [
  // --- not an object ---
  ["null body", null, "P2P_ERR_NOT_OBJECT"],
  ["array body", [good], "P2P_ERR_NOT_OBJECT"],
  ["empty array body", [], "P2P_ERR_NOT_OBJECT"],
  ["string body", JSON.stringify(good), "P2P_ERR_NOT_OBJECT"],
  ["number body", 2, "P2P_ERR_NOT_OBJECT"],
  ["boolean body", true, "P2P_ERR_NOT_OBJECT"],
  ["undefined", undefined, "P2P_ERR_NOT_OBJECT"],
  // --- version ---
  ["v missing", mutate({ v: undefined }), "P2P_ERR_MISSING_FIELD"],
  ["v = 1", mutate({ v: 1 }), "P2P_ERR_BAD_VERSION"],
  ["v = 3 with other fields (version reported first)", { ...mutate({ v: 3 }), extra: 1 }, "P2P_ERR_BAD_VERSION"],
  ['v = "2" (string)', mutate({ v: "2" }), "P2P_ERR_BAD_VERSION"],
  ["v = null", mutate({ v: null }), "P2P_ERR_BAD_VERSION"],
  ["v = 2.5", mutate({ v: 2.5 }), "P2P_ERR_BAD_VERSION"],
  // --- field set ---
  ["extra field", mutate({ extra: "x" }), "P2P_ERR_UNKNOWN_FIELD"],
  ['extra field "type"', mutate({ type: "message" }), "P2P_ERR_UNKNOWN_FIELD"],
  ["extra field __proto__ (own JSON member)", JSON.parse(`{"__proto__":{},${JSON.stringify(good).slice(1)}`), "P2P_ERR_UNKNOWN_FIELD"],
  ["id missing", mutate({ id: undefined }), "P2P_ERR_MISSING_FIELD"],
  ["from missing", mutate({ from: undefined }), "P2P_ERR_MISSING_FIELD"],
  ["sig missing", mutate({ sig: undefined }), "P2P_ERR_MISSING_FIELD"],
  ["content missing", mutate({ content: undefined }), "P2P_ERR_MISSING_FIELD"],
  ["only v", { v: 2 }, "P2P_ERR_MISSING_FIELD"],
  // --- id ---
  ["id uppercase", mutate({ id: ID.toUpperCase() }), "P2P_ERR_BAD_ID"],
  ["id without dashes", mutate({ id: ID.replaceAll("-", "") }), "P2P_ERR_BAD_ID"],
  ["id UUIDv4", mutate({ id: "01a21709-a815-4d3c-9a1b-4f2e6d8c0b5a" }), "P2P_ERR_BAD_ID"],
  ["id wrong variant (c)", mutate({ id: "01a21709-a815-7d3c-ca1b-4f2e6d8c0b5a" }), "P2P_ERR_BAD_ID"],
  ["id wrong variant (7)", mutate({ id: "01a21709-a815-7d3c-7a1b-4f2e6d8c0b5a" }), "P2P_ERR_BAD_ID"],
  ["id in braces", mutate({ id: `{${ID}}` }), "P2P_ERR_BAD_ID"],
  ["id number", mutate({ id: 12345 }), "P2P_ERR_BAD_ID"],
  ["id null", mutate({ id: null }), "P2P_ERR_BAD_ID"],
  ["id with trailing newline", mutate({ id: ID + "\n" }), "P2P_ERR_BAD_ID"],
  // --- addresses ---
  ["from with leading zeros (non-canonical)", mutate({ from: "0200:" + A.address.slice(4) }), "P2P_ERR_BAD_ADDRESS"],
  ["to uppercase (non-canonical)", mutate({ to: canonicalB.toUpperCase() }), "P2P_ERR_BAD_ADDRESS"],
  ["to with uncompressed zero run", mutate({ to: zeroGroups }), "P2P_ERR_BAD_ADDRESS"],
  ["to in brackets", mutate({ to: `[${canonicalB}]` }), "P2P_ERR_BAD_ADDRESS"],
  ["from with zone id", mutate({ from: `${A.address}%eth0` }), "P2P_ERR_BAD_ADDRESS"],
  ["from outside 200::/7 (fd00::1)", mutate({ from: "fd00::1" }), "P2P_ERR_BAD_ADDRESS"],
  ["to outside 200::/7 (::1)", mutate({ to: "::1" }), "P2P_ERR_BAD_ADDRESS"],
  ["to 400::1 (just above the range)", mutate({ to: "400::1" }), "P2P_ERR_BAD_ADDRESS"],
  ["from IPv4", mutate({ from: "10.0.0.1" }), "P2P_ERR_BAD_ADDRESS"],
  ["from as a number", mutate({ from: 512 }), "P2P_ERR_BAD_ADDRESS"],
  ["from as 16-byte array", mutate({ from: Array.from(deriveAddress(A.publicKey)) }), "P2P_ERR_BAD_ADDRESS"],
  ["to huge string", mutate({ to: longString }), "P2P_ERR_BAD_ADDRESS"],
  // --- key ---
  ["key 31 bytes", mutate({ key: Buffer.alloc(31, 1).toString("base64") }), "P2P_ERR_BAD_KEY"],
  ["key 33 bytes", mutate({ key: Buffer.alloc(33, 1).toString("base64") }), "P2P_ERR_BAD_KEY"],
  ["key without padding", mutate({ key: good.key.replace(/=+$/, "") }), "P2P_ERR_BAD_KEY"],
  ["key in the base64url alphabet", mutate({ key: Buffer.from(B.publicKey).toString("base64url") + "=" }), "P2P_ERR_BAD_KEY"],
  ["key with non-zero trailing bits (non-canonical)", mutate({ key: good.key.slice(0, 42) + nextB64(good.key[42]!) + "=" }), "P2P_ERR_BAD_KEY"],
  ["key with whitespace", mutate({ key: ` ${good.key.slice(1)}` }), "P2P_ERR_BAD_KEY"],
  ["key hex", mutate({ key: Buffer.from(A.publicKey).toString("hex") }), "P2P_ERR_BAD_KEY"],
  ["key as byte array", mutate({ key: Array.from(A.publicKey) }), "P2P_ERR_BAD_KEY"],
  ["key null", mutate({ key: null }), "P2P_ERR_BAD_KEY"],
  // --- ts ---
  ['ts string "1795682838549"', mutate({ ts: String(TS) }), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts negative", mutate({ ts: -1 }), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts -0", JSON.parse(JSON.stringify(good).replace(`"ts":${TS}`, '"ts":-0')), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts fractional", mutate({ ts: TS + 0.5 }), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts 2^53 (unsafe)", mutate({ ts: 2 ** 53 }), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts 1e400 (Infinity after JSON.parse)", JSON.parse(JSON.stringify(good).replace(`"ts":${TS}`, '"ts":1e400')), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts NaN", mutate({ ts: Number.NaN }), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts null", mutate({ ts: null }), "P2P_ERR_BAD_TIMESTAMP"],
  ["ts object", mutate({ ts: { ms: TS } }), "P2P_ERR_BAD_TIMESTAMP"],
  // --- kind ---
  ["kind uppercase", mutate({ kind: "Chat" }), "P2P_ERR_BAD_KIND"],
  ["kind empty", mutate({ kind: "" }), "P2P_ERR_BAD_KIND"],
  ["kind 33 characters", mutate({ kind: "a".repeat(33) }), "P2P_ERR_BAD_KIND"],
  ["kind starting with a digit", mutate({ kind: "1chat" }), "P2P_ERR_BAD_KIND"],
  ["kind with a space", mutate({ kind: "chat " }), "P2P_ERR_BAD_KIND"],
  ["kind non-ASCII", mutate({ kind: "chät" }), "P2P_ERR_BAD_KIND"],
  ["kind number", mutate({ kind: 1 }), "P2P_ERR_BAD_KIND"],
  ["kind well-formed but unsupported", mutate({ kind: "file" }), "P2P_ERR_UNSUPPORTED_KIND"],
  ["kind 32 characters, unsupported", mutate({ kind: "a".repeat(32) }), "P2P_ERR_UNSUPPORTED_KIND"],
  // --- content ---
  ["content number", mutate({ content: 42 }), "P2P_ERR_BAD_CONTENT"],
  ["content null", mutate({ content: null }), "P2P_ERR_BAD_CONTENT"],
  ["content object", mutate({ content: { text: "hi" } }), "P2P_ERR_BAD_CONTENT"],
  ["content array", mutate({ content: ["hi"] }), "P2P_ERR_BAD_CONTENT"],
  ["content lone high surrogate", JSON.parse(JSON.stringify(good).replace('"content":"héllo ✓"', '"content":"a\\ud800b"')), "P2P_ERR_BAD_CONTENT"],
  ["content lone low surrogate at the end", mutate({ content: "abc\udc00" }), "P2P_ERR_BAD_CONTENT"],
  ["content swapped surrogate pair", mutate({ content: "\udc00\ud800" }), "P2P_ERR_BAD_CONTENT"],
  ["content 32769 ASCII bytes", mutate({ content: "a".repeat(MAX_CONTENT_BYTES + 1) }), "P2P_ERR_CONTENT_TOO_LARGE"],
  ["content 10923 three-byte characters (32769 bytes)", mutate({ content: "✓".repeat(10923) }), "P2P_ERR_CONTENT_TOO_LARGE"],
  ["content one million characters", mutate({ content: longString }), "P2P_ERR_CONTENT_TOO_LARGE"],
  // --- sig ---
  ["sig 63 bytes", mutate({ sig: Buffer.alloc(63, 7).toString("base64") }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig 65 bytes", mutate({ sig: Buffer.alloc(65, 7).toString("base64") }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig without padding", mutate({ sig: good.sig.replace(/=+$/, "") }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig with non-zero trailing bits", mutate({ sig: good.sig.slice(0, 85) + nextB64(good.sig[85]!) + "==" }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig with an invalid character", mutate({ sig: "!" + good.sig.slice(1) }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig hex", mutate({ sig: Buffer.from(good.sig, "base64").toString("hex") }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig empty", mutate({ sig: "" }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig false", mutate({ sig: false }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ["sig huge string", mutate({ sig: longString }), "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  // --- order: the first failing field decides ---
  ["bad id and bad sig: id reported", mutate({ id: "x", sig: "y" }), "P2P_ERR_BAD_ID"],
  ["bad kind and oversized content: kind reported", mutate({ kind: "X", content: longString }), "P2P_ERR_BAD_KIND"],
  ["unknown field and missing field: unknown reported", mutate({ id: undefined, zzz: 1 }), "P2P_ERR_UNKNOWN_FIELD"],
];

/** The next base64 character: flips a low bit that the last data character does not carry. */
function nextB64(c: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  return alphabet[(alphabet.indexOf(c) + 1) % 64]!;
}

describe(`malformed envelopes are refused with their specific code (${MALFORMED.length} cases)`, () => {
  for (const [what, input, code] of MALFORMED) {
    test(`${what} -> ${code}`, () => {
      let r: ReturnType<typeof parseEnvelope> | undefined;
      assert.doesNotThrow(() => {
        r = parseEnvelope(input);
      });
      assert.ok(r && !r.ok, "refused");
      assert.equal(r.code, code, r.message);
      assert.equal(typeof r.message, "string");
      assert.ok(r.message.length < 300, "messages never echo long peer data");
      assert.equal("value" in r, false, "no half-decoded object");
    });
  }
});

describe("nothing throws, whatever the input", () => {
  // parseEnvelope turns an exception inside it into a refusal ("envelope could not be read"), so that a bug cannot
  // crash a receiver; for these plain JSON values that refusal would be a bug all the same, so it is checked for.
  test("random JSON-ish values and random mutations of a good envelope: each refused with its own code", () => {
    const pool: unknown[] = [null, true, false, 0, -0, 1e400, -1, 2 ** 64, 1.5, "", "x", "200::1", [], {}, [1, 2], { a: 1 }, "\ud800", longString.slice(0, 100_000)];
    const seed = Number(process.env.DECLAW_FUZZ_SEED ?? 12345);
    const rng = new Rng(seed);
    const fields = Object.keys(good);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const e: Record<string, unknown> = { ...good };
      for (let k = 1 + rng.int(3); k > 0; k--) {
        const f = rng.pick(fields);
        if (rng.bool(0.2)) delete e[f];
        else e[f] = rng.pick(pool);
      }
      let r: ReturnType<typeof parseEnvelope> | undefined;
      assert.doesNotThrow(() => {
        r = parseEnvelope(e);
        if (r.ok) verifyEnvelope(r.value);
      }, `seed ${seed}, iteration ${i}`);
      if (r && !r.ok) {
        assert.doesNotMatch(r.message, /could not be read/, `seed ${seed}, iteration ${i}: the parser threw on ${JSON.stringify(e).slice(0, 300)}`);
        seen.add(r.code);
      }
    }
    assert.ok(seen.size >= 8, `the mutations reached only ${[...seen].join(", ")}`);
    for (const v of pool) assert.doesNotThrow(() => parseEnvelope(v));
  });

  test("deeply nested values in a field", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 10_000; i++) deep = [deep];
    const r = parseEnvelope(mutate({ content: deep }));
    assert.equal(r.ok ? "ok" : r.code, "P2P_ERR_BAD_CONTENT");
  });
});

describe("buildEnvelope refuses caller mistakes with the field's code", () => {
  const cases: Array<[string, () => unknown, ErrorCode]> = [
    ["unsupported kind", () => buildEnvelope(A, B.address, "file", "x"), "P2P_ERR_UNSUPPORTED_KIND"],
    ["malformed kind", () => buildEnvelope(A, B.address, "Chat", "x"), "P2P_ERR_BAD_KIND"],
    ["recipient outside 200::/7", () => buildEnvelope(A, "fd00::1", "chat", "x"), "P2P_ERR_BAD_ADDRESS"],
    ["recipient not an address", () => buildEnvelope(A, "bob", "chat", "x"), "P2P_ERR_BAD_ADDRESS"],
    ["oversized content", () => buildEnvelope(A, B.address, "chat", "a".repeat(MAX_CONTENT_BYTES + 1)), "P2P_ERR_CONTENT_TOO_LARGE"],
    ["lone surrogate", () => buildEnvelope(A, B.address, "chat", "\ud800"), "P2P_ERR_BAD_CONTENT"],
    ["negative ts", () => buildEnvelope(A, B.address, "chat", "x", { ts: -5 }), "P2P_ERR_BAD_TIMESTAMP"],
    ["bad id", () => buildEnvelope(A, B.address, "chat", "x", { id: "not-a-uuid" }), "P2P_ERR_BAD_ID"],
    [
      "content that JSON escapes past the body cap",
      () => buildEnvelope(A, B.address, "chat", "\u0001".repeat(MAX_CONTENT_BYTES)),
      "P2P_ERR_CONTENT_TOO_LARGE",
    ],
  ];
  for (const [what, fn, code] of cases) {
    test(`${what} -> ${code}`, () => {
      assert.throws(fn, (err: unknown) => err instanceof P2PError && err.code === code);
    });
  }

  test("the body cap guard is real: the largest accepted envelope fits MAX_BODY_BYTES", () => {
    const e = buildEnvelope(A, B.address, "chat", "a".repeat(MAX_CONTENT_BYTES));
    assert.ok(Buffer.byteLength(JSON.stringify(e)) <= MAX_BODY_BYTES);
  });
});

describe("envelopeSigningBytes refuses unvalidated fields (caller misuse throws)", () => {
  test("bad address / id / key / ts throw RangeError", () => {
    assert.throws(() => envelopeSigningBytes({ ...good, from: "0200::1" }), RangeError);
    assert.throws(() => envelopeSigningBytes({ ...good, id: "x" }), RangeError);
    assert.throws(() => envelopeSigningBytes({ ...good, key: "AAAA" }), RangeError);
    assert.throws(() => envelopeSigningBytes({ ...good, ts: -1 }), RangeError);
  });
});

describe("decodeCanonicalAddress remembers valid texts without sharing its bytes", () => {
  test("a repeated text decodes the same; a caller changing the result changes nothing for the next", () => {
    const first = decodeCanonicalAddress(A.address)!;
    assert.deepEqual(first, deriveAddress(A.publicKey));
    first.fill(0);
    assert.deepEqual(decodeCanonicalAddress(A.address), deriveAddress(A.publicKey));
    assert.deepEqual(envelopeSigningBytes(good), envelopeSigningBytes({ ...good }));
    assert.equal(verifyEnvelope(good), true);
  });

  test("other spellings of a remembered address are still refused", () => {
    assert.ok(decodeCanonicalAddress(A.address));
    assert.equal(decodeCanonicalAddress(A.address.toUpperCase()), undefined);
    assert.equal(decodeCanonicalAddress(A.address.replace(/^2/, "02")), undefined);
    assert.equal(parseEnvelope(mutate({ from: A.address.toUpperCase() })).ok, false);
  });
});
