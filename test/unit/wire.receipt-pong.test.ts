/**
 * docs/protocol.md sections 10 (Receipts) and 11 (Ping): the recipient's signed receipt and the signed ping proof,
 * each under its own domain; validated like envelopes, with `type` checked first.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { deriveAddress, formatIPv6, keyMatchesAddress } from "../../src/core/address.ts";
import { P2PError, type ErrorCode } from "../../src/core/errors.ts";
import { keyPairFromSeed, signBytes } from "../../src/core/keys.ts";
import {
  SUPPORTED_VERSIONS,
  buildEnvelope,
  buildPingProof,
  buildReceipt,
  envelopeSigningBytes,
  newNonce,
  parseNonce,
  parsePingProof,
  parseReceipt,
  pingProofSigningBytes,
  receiptSigningBytes,
  verifyPingProof,
  verifyReceipt,
  type PingProof,
  type Receipt,
} from "../../src/core/wire.ts";

function party(fill: number) {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(fill));
  return { ...kp, address: formatIPv6(deriveAddress(kp.publicKey)) };
}
const A = party(0x01);
const B = party(0x02);
const TS = 1795682838549;
const env = buildEnvelope(A, B.address, "chat", "hi", { ts: TS });
const receipt = buildReceipt(B, env, TS + 12);
const NONCE = Buffer.from(Array.from({ length: 16 }, (_, i) => i)).toString("base64url");
const pong = buildPingProof(B, NONCE, TS);

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
const without = <T extends object>(o: T, k: string) => Object.fromEntries(Object.entries(o).filter(([x]) => x !== k));

function code(r: { ok: boolean; code?: string }): string {
  return r.ok ? "ok" : r.code!;
}

describe("receipts (section 10)", () => {
  test("a receipt names the message, the sender, the recipient and the recipient's key", () => {
    assert.equal(receipt.type, "receipt");
    assert.equal(receipt.id, env.id);
    assert.equal(receipt.from, A.address);
    assert.equal(receipt.to, B.address);
    assert.equal(receipt.key, b64(B.publicKey));
    assert.equal(receipt.stored, TS + 12);
  });

  test("it parses and verifies, and the sender's binding check holds", () => {
    const r = parseReceipt(JSON.parse(JSON.stringify(receipt)));
    assert.ok(r.ok);
    assert.deepEqual(r.value, receipt);
    assert.ok(verifyReceipt(r.value));
    assert.ok(keyMatchesAddress(Buffer.from(r.value.key, "base64"), deriveAddress(B.publicKey)));
  });

  test("rebuilding with the same stored time gives the identical receipt (duplicates get the original)", () => {
    assert.deepEqual(buildReceipt(B, { id: env.id, from: env.from }, TS + 12), receipt);
    assert.notEqual(buildReceipt(B, env, TS + 13).sig, receipt.sig);
  });

  test("changing any signed field breaks the signature", () => {
    const changes: Array<Partial<Receipt>> = [
      { stored: TS + 13 },
      { from: B.address },
      { to: A.address },
      { id: env.id.slice(0, -1) + (env.id.endsWith("0") ? "1" : "0") },
      { key: b64(A.publicKey) },
    ];
    for (const c of changes) {
      const r = parseReceipt({ ...receipt, ...c });
      assert.ok(r.ok);
      assert.equal(verifyReceipt(r.value), false, JSON.stringify(c));
    }
  });

  test("an envelope signature cannot pass as a receipt signature (domain separation)", () => {
    // Same key, same id/from/to/key bytes; only the domain and trailing fields differ.
    const sigOverEnvelopeDomain = b64(signBytes(B, Buffer.concat([Buffer.from("declaw/v2/envelope\0"), receiptSigningBytes(receipt).subarray(18)])));
    const r = parseReceipt({ ...receipt, sig: sigOverEnvelopeDomain });
    assert.ok(r.ok);
    assert.equal(verifyReceipt(r.value), false);
    // And an envelope's own signature does not verify as anything else.
    const r2 = parseReceipt({ ...receipt, key: env.key, sig: env.sig });
    assert.ok(r2.ok);
    assert.equal(verifyReceipt(r2.value), false);
    assert.ok(envelopeSigningBytes(env).length > 0);
  });

  const bad: Array<[string, unknown, ErrorCode]> = [
    ["array", [receipt], "P2P_ERR_NOT_OBJECT"],
    ["null", null, "P2P_ERR_NOT_OBJECT"],
    ["v = 1", { ...receipt, v: 1 }, "P2P_ERR_BAD_VERSION"],
    ["type missing", without(receipt, "type"), "P2P_ERR_MISSING_FIELD"],
    ['type "pong"', { ...receipt, type: "pong" }, "P2P_ERR_BAD_TYPE"],
    ["type number", { ...receipt, type: 1 }, "P2P_ERR_BAD_TYPE"],
    ["an envelope posted as a receipt", env, "P2P_ERR_MISSING_FIELD"],
    ["extra field", { ...receipt, duplicate: false }, "P2P_ERR_UNKNOWN_FIELD"],
    ["stored missing", without(receipt, "stored"), "P2P_ERR_MISSING_FIELD"],
    ["bad id", { ...receipt, id: "x" }, "P2P_ERR_BAD_ID"],
    ["non-canonical from", { ...receipt, from: "0" + receipt.from }, "P2P_ERR_BAD_ADDRESS"],
    ["to outside 200::/7", { ...receipt, to: "2001:db8::1" }, "P2P_ERR_BAD_ADDRESS"],
    ["short key", { ...receipt, key: "AAAA" }, "P2P_ERR_BAD_KEY"],
    ["stored as string", { ...receipt, stored: "1" }, "P2P_ERR_BAD_TIMESTAMP"],
    ["stored negative", { ...receipt, stored: -1 }, "P2P_ERR_BAD_TIMESTAMP"],
    ["sig short", { ...receipt, sig: "AAAA" }, "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ];
  for (const [what, input, expected] of bad) {
    test(`malformed receipt: ${what} -> ${expected}`, () => {
      assert.equal(code(parseReceipt(input)), expected);
    });
  }
});

describe("ping proofs (section 11)", () => {
  test("a proof carries the node's address, key, versions, time and the echoed nonce", () => {
    assert.equal(pong.type, "pong");
    assert.equal(pong.address, B.address);
    assert.equal(pong.key, b64(B.publicKey));
    assert.deepEqual(pong.versions, [...SUPPORTED_VERSIONS]);
    assert.equal(pong.nonce, NONCE);
  });

  test("it parses and verifies against the nonce that was sent, and no other", () => {
    const r = parsePingProof(JSON.parse(JSON.stringify(pong)));
    assert.ok(r.ok);
    assert.deepEqual(r.value, pong);
    assert.ok(verifyPingProof(r.value, NONCE));
    assert.equal(verifyPingProof(r.value, newNonce()), false);
    // A proof whose nonce field was rewritten to the asker's nonce fails on the signature.
    const other = newNonce();
    const moved = parsePingProof({ ...pong, nonce: other });
    assert.ok(moved.ok);
    assert.equal(verifyPingProof(moved.value, other), false);
  });

  test("changing versions, ts, address or key breaks the signature", () => {
    const changes: Array<Partial<PingProof>> = [{ versions: [2] }, { ts: TS + 1 }, { address: A.address }, { key: b64(A.publicKey) }];
    for (const c of changes) {
      const r = parsePingProof({ ...pong, ...c });
      assert.ok(r.ok, JSON.stringify(c));
      assert.equal(verifyPingProof(r.value, NONCE), false, JSON.stringify(c));
    }
  });

  test("the signed bytes end with the nonce length and the raw nonce", () => {
    const bytes = pingProofSigningBytes(pong);
    assert.equal(Buffer.from(bytes.subarray(-17)).toString("hex"), "10000102030405060708090a0b0c0d0e0f");
    assert.equal(Buffer.from(bytes.subarray(0, 15)).toString(), "declaw/v2/pong\0");
  });

  const bad: Array<[string, unknown, ErrorCode]> = [
    ["string", "pong", "P2P_ERR_NOT_OBJECT"],
    ["v = 3", { ...pong, v: 3 }, "P2P_ERR_BAD_VERSION"],
    ['type "receipt"', { ...pong, type: "receipt" }, "P2P_ERR_BAD_TYPE"],
    ["a receipt given as a proof", receipt, "P2P_ERR_BAD_TYPE"],
    ["extra field", { ...pong, ok: true }, "P2P_ERR_UNKNOWN_FIELD"],
    ["nonce missing", without(pong, "nonce"), "P2P_ERR_MISSING_FIELD"],
    ["address non-canonical", { ...pong, address: pong.address.toUpperCase() }, "P2P_ERR_BAD_ADDRESS"],
    ["versions empty", { ...pong, versions: [] }, "P2P_ERR_BAD_VERSION"],
    ["versions not ascending", { ...pong, versions: [2, 1] }, "P2P_ERR_BAD_VERSION"],
    ["versions repeated", { ...pong, versions: [2, 2] }, "P2P_ERR_BAD_VERSION"],
    ["versions without 2", { ...pong, versions: [1] }, "P2P_ERR_BAD_VERSION"],
    ["versions 256", { ...pong, versions: [2, 256] }, "P2P_ERR_BAD_VERSION"],
    ["versions 0", { ...pong, versions: [0, 2] }, "P2P_ERR_BAD_VERSION"],
    ["versions strings", { ...pong, versions: ["1", "2"] }, "P2P_ERR_BAD_VERSION"],
    ["versions object", { ...pong, versions: { 0: 2 } }, "P2P_ERR_BAD_VERSION"],
    ["versions too long", { ...pong, versions: Array.from({ length: 17 }, (_, i) => i + 1) }, "P2P_ERR_BAD_VERSION"],
    ["ts fractional", { ...pong, ts: 1.5 }, "P2P_ERR_BAD_TIMESTAMP"],
    ["nonce 15 bytes", { ...pong, nonce: Buffer.alloc(15).toString("base64url") }, "P2P_ERR_BAD_NONCE"],
    ["nonce 65 bytes", { ...pong, nonce: Buffer.alloc(65).toString("base64url") }, "P2P_ERR_BAD_NONCE"],
    ["nonce padded", { ...pong, nonce: NONCE + "==" }, "P2P_ERR_BAD_NONCE"],
    ["nonce standard alphabet", { ...pong, nonce: "+/" + NONCE.slice(2) }, "P2P_ERR_BAD_NONCE"],
    ["sig missing padding", { ...pong, sig: pong.sig.slice(0, -2) }, "P2P_ERR_BAD_SIGNATURE_ENCODING"],
  ];
  for (const [what, input, expected] of bad) {
    test(`malformed proof: ${what} -> ${expected}`, () => {
      assert.equal(code(parsePingProof(input)), expected);
    });
  }

  test("verifyPingProof never throws on garbage", () => {
    assert.equal(verifyPingProof(null as unknown as PingProof, NONCE), false);
    assert.equal(verifyPingProof({ ...pong, versions: null } as unknown as PingProof, NONCE), false);
    assert.equal(verifyPingProof(pong, undefined as unknown as string), false);
  });
});

describe("nonces", () => {
  test("newNonce gives 32 random bytes of unpadded base64url that parseNonce accepts", () => {
    const n = newNonce();
    assert.match(n, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(parseNonce(n).ok);
    assert.notEqual(newNonce(), n);
  });

  test("parseNonce accepts exactly canonical base64url of 16..64 bytes", () => {
    assert.ok(parseNonce(Buffer.alloc(16, 0xff).toString("base64url")).ok);
    assert.ok(parseNonce(Buffer.alloc(64, 0xff).toString("base64url")).ok);
    for (const bad of [null, 5, "", "abc", Buffer.alloc(15).toString("base64url"), Buffer.alloc(65).toString("base64url"), "AAECAwQFBgcICQoLDA0ODx", "A".repeat(10_000), "AAECAwQFBgcICQoLDA0OD w"]) {
      assert.equal(code(parseNonce(bad)), "P2P_ERR_BAD_NONCE", String(bad).slice(0, 40));
    }
  });

  test("buildPingProof refuses an invalid nonce with P2P_ERR_BAD_NONCE", () => {
    assert.throws(() => buildPingProof(B, "short"), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_BAD_NONCE");
  });
});
