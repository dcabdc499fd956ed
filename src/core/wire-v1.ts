/**
 * The legacy v1 message (docs/protocol.md section 13), byte-exact with the original declaw 0.1.2-0.2.3 nodes so
 * that they can keep talking to us on `POST /peer/message`. Pure; peer input never throws.
 *
 * v1 has no recipient binding, no replay protection and no domain separation. The receiver makes it safe enough by
 * checking the TCP source, a +-5 min timestamp window and a dedupe of (publicKey, signature) keyed by v1MessageId.
 */
import { createHash } from "node:crypto";
import { PUBLIC_KEY_BYTES, canonicalAddress, isYggdrasilAddress, parseIPv6 } from "./address.ts";
import { decodeBase64Exact, encodeBase64, encodeUtf8 } from "./encoding.ts";
import { P2PError, fail, ok, type Result } from "./errors.ts";
import { SIGNATURE_BYTES, signBytes, verifyBytes } from "./keys.ts";
import { checkContent, formatUuid, type Refusal, type SignedParts, type Signer } from "./wire.ts";

export interface V1Message {
  fromYgg: string;
  publicKey: string;
  event: "chat";
  content: string;
  timestamp: number;
  signature: string;
}

export const V1_EVENT = "chat";
/** Prefix of the hash behind v1MessageId, so these ids cannot collide with any other use of sha256 over keys. */
export const V1_REPLAY_DOMAIN = "declaw/v1/replay";

const V1_FIELDS = ["fromYgg", "publicKey", "event", "content", "timestamp", "signature"] as const;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value.length <= 64 ? JSON.stringify(value) : `a string of ${value.length} characters`;
  return typeof value === "number" && Number.isFinite(value) ? String(value) : `a ${typeof value}`;
}

/** Any IPv6 text of a 200::/7 address (v1 nodes send the compressed form; others are accepted, compared as bytes). */
export function v1AddressBytes(text: unknown): Uint8Array | undefined {
  if (typeof text !== "string" || text.startsWith("[")) return undefined; // bare address text, no URL brackets
  const b = parseIPv6(text);
  return b !== undefined && isYggdrasilAddress(b) ? b : undefined;
}

function check(o: Record<string, unknown>): Refusal | undefined {
  if (v1AddressBytes(o["fromYgg"]) === undefined) {
    return { code: "P2P_ERR_BAD_ADDRESS", message: `"fromYgg" must be IPv6 text of a 200::/7 address, got ${describe(o["fromYgg"])}` };
  }
  if (decodeBase64Exact(o["publicKey"], PUBLIC_KEY_BYTES) === undefined) {
    return { code: "P2P_ERR_BAD_KEY", message: `"publicKey" must be ${PUBLIC_KEY_BYTES} bytes of canonical padded base64` };
  }
  if (typeof o["event"] !== "string") {
    return { code: "P2P_ERR_BAD_KIND", message: `"event" must be a string, got ${describe(o["event"])}` };
  }
  if (o["event"] !== V1_EVENT) {
    return { code: "P2P_ERR_UNSUPPORTED_KIND", message: `"event" ${describe(o["event"])} is not supported (only "chat")` };
  }
  const content = checkContent(o["content"]);
  if (content !== undefined) return content;
  const ts = o["timestamp"];
  if (typeof ts !== "number" || !Number.isSafeInteger(ts) || ts < 0 || Object.is(ts, -0)) {
    return { code: "P2P_ERR_BAD_TIMESTAMP", message: `"timestamp" must be a non-negative safe integer of ms, got ${describe(ts)}` };
  }
  if (decodeBase64Exact(o["signature"], SIGNATURE_BYTES) === undefined) {
    return { code: "P2P_ERR_BAD_SIGNATURE_ENCODING", message: `"signature" must be ${SIGNATURE_BYTES} bytes of canonical padded base64` };
  }
  return undefined;
}

/** Structure and encodings only. Extra fields are ignored (as v1 does; they are not signed) and dropped. */
export function parseV1Message(input: unknown): Result<V1Message> {
  try {
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      return fail("P2P_ERR_NOT_OBJECT", `expected a JSON object, got ${describe(input)}`);
    }
    const o = input as Record<string, unknown>;
    for (const f of V1_FIELDS) {
      if (!Object.hasOwn(o, f)) return fail("P2P_ERR_MISSING_FIELD", `missing field "${f}"`);
    }
    const r = check(o);
    if (r !== undefined) return fail(r.code, r.message);
    return ok<V1Message>({
      fromYgg: o["fromYgg"] as string,
      publicKey: o["publicKey"] as string,
      event: V1_EVENT,
      content: o["content"] as string,
      timestamp: o["timestamp"] as number,
      signature: o["signature"] as string,
    });
  } catch {
    return fail("P2P_ERR_NOT_OBJECT", "message could not be read");
  }
}

/**
 * UTF-8 of the compact JSON of exactly content, event, fromYgg, publicKey, timestamp in that (sorted) key order, as
 * `JSON.stringify` writes it (non-ASCII raw, lone surrogates escaped; numbers as integers).
 */
export function v1SigningBytes(m: Omit<V1Message, "signature">): Uint8Array {
  return encodeUtf8(
    JSON.stringify({
      content: m.content,
      event: m.event,
      fromYgg: m.fromYgg,
      publicKey: m.publicKey,
      timestamp: m.timestamp,
    }),
  );
}

/** Signature only; never throws. The receiver also checks source, window, key binding and replay. */
export function verifyV1(m: V1Message): boolean {
  const parts = v1SignedParts(m);
  return parts !== undefined && verifyBytes(parts.key, parts.data, parts.sig);
}

/** What verifyV1 checks (key, signature, signed bytes), to check elsewhere; undefined when malformed. */
export function v1SignedParts(m: V1Message): SignedParts | undefined {
  try {
    const key = decodeBase64Exact(m.publicKey, PUBLIC_KEY_BYTES);
    const sig = decodeBase64Exact(m.signature, SIGNATURE_BYTES);
    if (key === undefined || sig === undefined) return undefined;
    return { key, sig, data: v1SigningBytes(m) };
  } catch {
    return undefined;
  }
}

/** A v1 message as a 0.1.2-0.2.3 node would send it (used to talk to peers known to speak only v1). */
export function buildV1Message(id: Signer, content: string, ts: number = Date.now()): V1Message {
  const unsigned: Omit<V1Message, "signature"> = {
    fromYgg: canonicalAddress(id.address) ?? id.address,
    publicKey: encodeBase64(id.publicKey),
    event: V1_EVENT,
    content,
    timestamp: ts,
  };
  const r = parseV1Message({ ...unsigned, signature: encodeBase64(new Uint8Array(SIGNATURE_BYTES)) });
  if (!r.ok) throw new P2PError(r.code, r.message);
  return { ...unsigned, signature: encodeBase64(signBytes(id, v1SigningBytes(unsigned))) };
}

/**
 * Replay-dedupe id of a v1 message: sha256("declaw/v1/replay" 0x00 || publicKey 32 bytes || signature 64 bytes),
 * first 16 bytes, with the RFC 9562 version nibble set to 8 and the variant to 10 (a UUIDv8), as 8-4-4-4-12 hex.
 * Version 8 keeps these ids disjoint from v2's UUIDv7 ids in the same store. Ed25519 as verified by OpenSSL refuses
 * non-canonical S, so one (key, message) has exactly one accepted signature and the id is a sound dedupe key.
 * Throws RangeError on an unvalidated message.
 */
export function v1MessageId(m: V1Message): string {
  const key = decodeBase64Exact(m.publicKey, PUBLIC_KEY_BYTES);
  const sig = decodeBase64Exact(m.signature, SIGNATURE_BYTES);
  if (key === undefined || sig === undefined) throw new RangeError("v1MessageId needs a parsed v1 message");
  const h = createHash("sha256").update(encodeUtf8(V1_REPLAY_DOMAIN)).update(Uint8Array.of(0)).update(key).update(sig).digest();
  const b = new Uint8Array(h.subarray(0, 16));
  b[6] = 0x80 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  return formatUuid(b);
}

