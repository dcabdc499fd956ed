/**
 * docs/protocol.md section 15: the checked-in vectors. Every signed byte and every signature is recomputed from the
 * seeds and compared, so any change to an encoding fails here. The signed bytes are also assembled a second time in
 * this file straight from section 7, independently of the implementation.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { createPublicKey, verify } from "node:crypto";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import {
  buildEnvelope,
  buildPingProof,
  buildReceipt,
  envelopeSigningBytes,
  parseEnvelope,
  parsePingProof,
  parseReceipt,
  pingProofSigningBytes,
  receiptSigningBytes,
  verifyEnvelope,
  verifyPingProof,
  verifyReceipt,
  type Envelope,
  type PingProof,
  type Receipt,
} from "../../src/core/wire.ts";
import { buildV1Message, parseV1Message, v1MessageId, v1SigningBytes, verifyV1, type V1Message } from "../../src/core/wire-v1.ts";

const root = join(import.meta.dirname, "..", "..");
const load = (name: string) => JSON.parse(readFileSync(join(root, "test", "vectors", name), "utf8"));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const ascii = (s: string): string => Buffer.from(s, "utf8").toString("hex");
const b64hex = (s: string): string => Buffer.from(s, "base64").toString("hex");

interface PartyJson {
  seedHex: string;
  publicKeyHex: string;
  publicKeyBase64: string;
  address: string;
}
interface Field {
  field: string;
  hex: string;
}

function signer(p: PartyJson) {
  const kp = keyPairFromSeed(Buffer.from(p.seedHex, "hex"));
  return { ...kp, address: formatIPv6(deriveAddress(kp.publicKey)) };
}

/** Ed25519 verification with node:crypto directly (not through keys.ts), from the raw public key. */
function rawVerify(publicKeyHex: string, signedHex: string, sigBase64: string): boolean {
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(publicKeyHex, "hex")]);
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  return verify(null, Buffer.from(signedHex, "hex"), key, Buffer.from(sigBase64, "base64"));
}

const envV = load("envelope.json");
const recV = load("receipt.json");
const pongV = load("pong.json");
const v1V = load("v1-message.json");

describe("vector parties (seeds 0x01 x 32 and 0x02 x 32)", () => {
  for (const p of [envV.sender, envV.recipient] as PartyJson[]) {
    test(`seed ${p.seedHex.slice(0, 2)}.. gives the recorded key and derived address`, () => {
      const s = signer(p);
      assert.equal(hex(s.publicKey), p.publicKeyHex);
      assert.equal(Buffer.from(s.publicKey).toString("base64"), p.publicKeyBase64);
      assert.equal(s.address, p.address);
    });
  }
});

describe("envelope vector (section 7, Envelope)", () => {
  const env = envV.envelope as Envelope;

  test("section 7 assembled by hand equals the recorded signed bytes", () => {
    const contentUtf8 = Buffer.from(env.content, "utf8");
    const expected =
      ascii("declaw/v2/envelope") +
      "00" +
      "02" +
      env.id.replaceAll("-", "") +
      hex(deriveAddress(Buffer.from(envV.sender.publicKeyHex, "hex"))) +
      hex(deriveAddress(Buffer.from(envV.recipient.publicKeyHex, "hex"))) +
      b64hex(env.key) +
      env.ts.toString(16).padStart(16, "0") +
      "04" +
      ascii("chat") +
      contentUtf8.length.toString(16).padStart(8, "0") +
      hex(contentUtf8);
    assert.equal(expected, envV.signedBytesHex);
    assert.equal((envV.signedFields as Field[]).map((f) => f.hex).join(""), envV.signedBytesHex);
  });

  test("the implementation produces exactly the recorded signed bytes", () => {
    assert.equal(hex(envelopeSigningBytes(env)), envV.signedBytesHex);
  });

  test("content is non-ASCII, so the vector pins the UTF-8 encoding", () => {
    assert.equal(env.content, "héllo ✓");
    assert.ok(envV.signedBytesHex.endsWith("0000000a68c3a96c6c6f20e29c93"));
  });

  test("rebuilding from the seed gives the identical envelope and signature (Ed25519 is deterministic)", () => {
    const rebuilt = buildEnvelope(signer(envV.sender), env.to, env.kind, env.content, { id: env.id, ts: env.ts });
    assert.deepEqual(rebuilt, env);
    assert.equal(rebuilt.sig, envV.signatureBase64);
    assert.equal(JSON.stringify(rebuilt), JSON.stringify(env), "field order too");
  });

  test("the signature verifies with plain node:crypto and with verifyEnvelope", () => {
    assert.ok(rawVerify(envV.sender.publicKeyHex, envV.signedBytesHex, envV.signatureBase64));
    const parsed = parseEnvelope(env);
    assert.ok(parsed.ok);
    assert.ok(verifyEnvelope(parsed.value));
  });

  test("a signature by the same key over the same fields under the receipt domain does not verify", () => {
    const cross = envV.crossDomain;
    assert.equal(cross.signedBytesHex, ascii("declaw/v2/receipt") + envV.signedBytesHex.slice(ascii("declaw/v2/envelope").length));
    assert.ok(rawVerify(envV.sender.publicKeyHex, cross.signedBytesHex, cross.envelope.sig), "it is a real signature by A");
    const parsed = parseEnvelope(cross.envelope);
    assert.ok(parsed.ok, "and it is well-formed");
    assert.equal(verifyEnvelope(parsed.value), false);
  });
});

describe("receipt vector (section 7, Receipt)", () => {
  const rec = recV.receipt as Receipt;

  test("section 7 assembled by hand equals the recorded signed bytes", () => {
    const expected =
      ascii("declaw/v2/receipt") +
      "00" +
      "02" +
      rec.id.replaceAll("-", "") +
      hex(deriveAddress(Buffer.from(envV.sender.publicKeyHex, "hex"))) +
      hex(deriveAddress(Buffer.from(envV.recipient.publicKeyHex, "hex"))) +
      recV.signer.publicKeyHex +
      rec.stored.toString(16).padStart(16, "0");
    assert.equal(expected, recV.signedBytesHex);
    assert.equal((recV.signedFields as Field[]).map((f) => f.hex).join(""), recV.signedBytesHex);
  });

  test("the implementation produces the recorded bytes, receipt and signature", () => {
    assert.equal(hex(receiptSigningBytes(rec)), recV.signedBytesHex);
    const rebuilt = buildReceipt(signer(recV.signer), { id: envV.envelope.id, from: envV.envelope.from }, rec.stored);
    assert.equal(JSON.stringify(rebuilt), JSON.stringify(rec));
    assert.equal(rebuilt.sig, recV.signatureBase64);
  });

  test("it names the envelope vector's message and verifies", () => {
    assert.equal(rec.id, envV.envelope.id);
    assert.equal(rec.from, envV.envelope.from);
    assert.equal(rec.to, envV.envelope.to);
    assert.ok(rawVerify(recV.signer.publicKeyHex, recV.signedBytesHex, recV.signatureBase64));
    const parsed = parseReceipt(rec);
    assert.ok(parsed.ok);
    assert.ok(verifyReceipt(parsed.value));
  });
});

describe("ping proof vector (section 7, Ping proof)", () => {
  const pong = pongV.pong as PingProof;

  test("section 7 assembled by hand equals the recorded signed bytes", () => {
    const nonce = Buffer.from(pongV.nonce, "base64url");
    const expected =
      ascii("declaw/v2/pong") +
      "00" +
      "02" +
      hex(deriveAddress(Buffer.from(pongV.signer.publicKeyHex, "hex"))) +
      pongV.signer.publicKeyHex +
      "02" +
      "01" +
      "02" +
      pong.ts.toString(16).padStart(16, "0") +
      nonce.length.toString(16).padStart(2, "0") +
      hex(nonce);
    assert.equal(expected, pongV.signedBytesHex);
    assert.equal((pongV.signedFields as Field[]).map((f) => f.hex).join(""), pongV.signedBytesHex);
  });

  test("the implementation produces the recorded bytes, proof and signature", () => {
    assert.equal(hex(pingProofSigningBytes(pong)), pongV.signedBytesHex);
    const rebuilt = buildPingProof(signer(pongV.signer), pongV.nonce, pong.ts);
    assert.equal(JSON.stringify(rebuilt), JSON.stringify(pong));
    assert.equal(rebuilt.sig, pongV.signatureBase64);
  });

  test("it verifies against the asker's nonce and against no other", () => {
    assert.ok(rawVerify(pongV.signer.publicKeyHex, pongV.signedBytesHex, pongV.signatureBase64));
    const parsed = parsePingProof(pong);
    assert.ok(parsed.ok);
    assert.ok(verifyPingProof(parsed.value, pongV.nonce));
    assert.equal(verifyPingProof(parsed.value, "AAECAwQFBgcICQoLDA0OEA"), false);
  });
});

describe("legacy v1 vector (section 13)", () => {
  const m = v1V.message as V1Message;

  test("the signed bytes are the UTF-8 of the sorted compact JSON, non-ASCII raw", () => {
    assert.equal(
      v1V.signedText,
      `{"content":"héllo ✓","event":"chat","fromYgg":"${m.fromYgg}","publicKey":"${m.publicKey}","timestamp":1795682838549}`,
    );
    assert.equal(ascii(v1V.signedText), v1V.signedBytesHex);
    assert.equal(hex(v1SigningBytes(m)), v1V.signedBytesHex);
  });

  test("rebuilding from the seed gives the identical message and signature", () => {
    const rebuilt = buildV1Message(signer(v1V.sender), m.content, m.timestamp);
    assert.deepEqual(rebuilt, m);
    assert.equal(rebuilt.signature, v1V.signatureBase64);
  });

  test("the signature verifies with plain node:crypto and with verifyV1", () => {
    assert.ok(rawVerify(v1V.sender.publicKeyHex, v1V.signedBytesHex, v1V.signatureBase64));
    const parsed = parseV1Message(m);
    assert.ok(parsed.ok);
    assert.ok(verifyV1(parsed.value));
  });

  test("the dedupe id is sha256 of the domain, key and signature, shaped as a UUIDv8", async () => {
    const { createHash } = await import("node:crypto");
    assert.equal(v1V.messageIdInputHex, ascii("declaw/v1/replay") + "00" + v1V.sender.publicKeyHex + b64hex(m.signature));
    const h = createHash("sha256").update(Buffer.from(v1V.messageIdInputHex, "hex")).digest();
    h[6] = 0x80 | (h[6]! & 0x0f);
    h[8] = 0x80 | (h[8]! & 0x3f);
    const x = h.subarray(0, 16).toString("hex");
    const expected = `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
    assert.equal(expected, v1V.messageId);
    assert.equal(v1MessageId(m), v1V.messageId);
  });
});

describe("docs/protocol.md prints the same vectors", () => {
  const doc = readFileSync(join(root, "docs", "protocol.md"), "utf8");
  const unwrapped = doc.replace(/\n(?=[0-9a-f]{2,64}\n)/g, ""); // hex blocks are wrapped at 64 characters
  const strings: Array<[string, string]> = [
    ["envelope signed bytes", envV.signedBytesHex],
    ["envelope signature", envV.signatureBase64],
    ["cross-domain signature", envV.crossDomain.envelope.sig],
    ["receipt signed bytes", recV.signedBytesHex],
    ["receipt signature", recV.signatureBase64],
    ["pong signed bytes", pongV.signedBytesHex],
    ["pong signature", pongV.signatureBase64],
    ["v1 signed text", v1V.signedText],
    ["v1 signed bytes", v1V.signedBytesHex],
    ["v1 signature", v1V.signatureBase64],
    ["v1 message id", v1V.messageId],
    ["sender public key", envV.sender.publicKeyBase64],
    ["recipient address", envV.recipient.address],
  ];
  for (const [what, s] of strings) {
    test(`${what} appears in the spec`, () => {
      assert.ok(doc.includes(s) || unwrapped.includes(s), `docs/protocol.md lacks the ${what}; run test/vectors/generate.ts`);
    });
  }
});
