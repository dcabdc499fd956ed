/**
 * declaw wire protocol v2 (docs/protocol.md is the spec; section numbers below refer to it). Pure: encode, decode,
 * sign, verify; no I/O, no clocks except where a default timestamp is asked for.
 *
 * Two kinds of failure, kept apart on purpose:
 * - peer input (`parse*`, `verify*`, `decodeJsonBody`) never throws; refusals carry a stable `P2P_ERR_*` code and a
 *   failed parse never yields a half-decoded object;
 * - caller misuse (`build*` with an invalid field, `*SigningBytes` on an unvalidated object) throws at once
 *   (`P2PError` with the field's code from `build*`, `RangeError` from the byte encoders).
 */
import { randomBytes } from "node:crypto";
import { PUBLIC_KEY_BYTES, canonicalAddress, formatIPv6, isYggdrasilAddress, parseIPv6 } from "./address.ts";
import {
  decodeBase64Exact,
  decodeBase64UrlRange,
  decodeUtf8Strict,
  encodeBase64,
  encodeBase64Url,
  encodeUtf8,
  encodeUtf8Into,
  toHex,
  utf8ByteLength,
} from "./encoding.ts";
import { P2PError, fail, ok, type ErrorCode, type Result } from "./errors.ts";
import { SIGNATURE_BYTES, signBytes, verifyBytes, type KeyPair } from "./keys.ts";

// --- constants (docs/protocol.md section 2) ---

export const PROTOCOL_VERSION = 2;
/** Versions a node of this implementation speaks: v1 on the legacy endpoints, v2 on `/v2/*`. */
export const SUPPORTED_VERSIONS: readonly number[] = [1, 2];
/** UTF-8 bytes of `content`. */
export const MAX_CONTENT_BYTES = 32768;
/** Request body cap of the peer server, checked before parsing (413). */
export const MAX_BODY_BYTES = 65536;
/** Receivers accept `ts` within this distance of their clock (403 P2P_ERR_STALE_TIMESTAMP). */
export const TIMESTAMP_WINDOW_MS = 5 * 60 * 1000;
export const SUPPORTED_KINDS: readonly string[] = ["chat"];
export const MAX_KIND_BYTES = 32;
export const ID_BYTES = 16;
export const NONCE_MIN_BYTES = 16;
export const NONCE_MAX_BYTES = 64;
/** What `newNonce` draws. */
export const NONCE_DEFAULT_BYTES = 32;
/** At most this many entries in a ping proof's `versions`. */
export const MAX_VERSIONS = 16;
/** Largest `ts`/`stored` (2^53 - 1 ms, i.e. year 287396): JSON numbers beyond it lose integer precision. */
export const MAX_TIMESTAMP_MS = Number.MAX_SAFE_INTEGER;

/** Domain prefixes (section 7): ASCII, followed by one 0x00 byte in the signed bytes. */
export const ENVELOPE_DOMAIN = "declaw/v2/envelope";
export const RECEIPT_DOMAIN = "declaw/v2/receipt";
export const PONG_DOMAIN = "declaw/v2/pong";

// --- types (the contract) ---

export interface Envelope {
  v: 2;
  id: string;
  from: string;
  to: string;
  key: string;
  ts: number;
  kind: string;
  content: string;
  sig: string;
}

export interface Receipt {
  v: 2;
  type: "receipt";
  id: string;
  from: string;
  to: string;
  key: string;
  stored: number;
  sig: string;
}

export interface PingProof {
  v: 2;
  type: "pong";
  address: string;
  key: string;
  versions: number[];
  ts: number;
  nonce: string;
  sig: string;
}

/** Who signs: a key pair and the canonical address it speaks from (an Identity fits). */
export type Signer = KeyPair & { address: string };

// Field lists in wire order; parse results are rebuilt in this order.
const ENVELOPE_FIELDS = ["v", "id", "from", "to", "key", "ts", "kind", "content", "sig"] as const;
const RECEIPT_FIELDS = ["v", "type", "id", "from", "to", "key", "stored", "sig"] as const;
const PONG_FIELDS = ["v", "type", "address", "key", "versions", "ts", "nonce", "sig"] as const;

// Section 6, "Message ids": RFC 9562 UUIDv7, lowercase 8-4-4-4-12, version nibble 7, variant bits 10.
const UUID_V7_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Section 6, "Kinds": a lowercase ASCII token, 1..32 bytes.
const KIND_RE = /^[a-z][a-z0-9_.-]{0,31}$/;
const UUID_V7_MAX_MS = 2 ** 48 - 1;

// --- ids and nonces ---

/** A fresh UUIDv7 (RFC 9562 section 5.7): 48-bit ms timestamp, version 7, 74 random bits, variant 10. */
export function newMessageId(nowMs: number = Date.now()): string {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs > UUID_V7_MAX_MS) {
    throw new RangeError(`UUIDv7 timestamp must be an integer in 0..2^48-1 ms, got ${nowMs}`);
  }
  const b = randomBytes(ID_BYTES);
  // 48-bit big-endian milliseconds; split because bitwise operators work on 32 bits.
  const hi = Math.floor(nowMs / 2 ** 32);
  const lo = nowMs >>> 0;
  b[0] = (hi >>> 8) & 0xff;
  b[1] = hi & 0xff;
  b[2] = (lo >>> 24) & 0xff;
  b[3] = (lo >>> 16) & 0xff;
  b[4] = (lo >>> 8) & 0xff;
  b[5] = lo & 0xff;
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  return formatUuid(b);
}

/** 8-4-4-4-12 lowercase hex of 16 bytes. */
export function formatUuid(bytes: Uint8Array): string {
  if (bytes.length !== ID_BYTES) throw new RangeError("a UUID is 16 bytes");
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function isMessageId(text: unknown): text is string {
  return typeof text === "string" && UUID_V7_RE.test(text);
}

/** A fresh ping nonce: 32 random bytes, unpadded base64url. */
export function newNonce(): string {
  return encodeBase64Url(randomBytes(NONCE_DEFAULT_BYTES));
}

/**
 * A query string as `name=value` pairs joined by `&` (percent-decoded). Refused as P2P_ERR_BAD_QUERY: an empty pair
 * (`a&&b`), a pair without `=`, a bad percent escape, or a name given twice (which one would count is ambiguous).
 * Other names are kept, unused. Never throws.
 */
export function parseQuery(query: string): Result<Map<string, string>> {
  const out = new Map<string, string>();
  if (query === "") return ok(out);
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) return fail("P2P_ERR_BAD_QUERY", "query string must be name=value pairs joined by &");
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(pair.slice(0, eq).replaceAll("+", " "));
      value = decodeURIComponent(pair.slice(eq + 1).replaceAll("+", " "));
    } catch {
      return fail("P2P_ERR_BAD_QUERY", "query string has a malformed percent escape");
    }
    if (out.has(name)) return fail("P2P_ERR_BAD_QUERY", `query parameter ${JSON.stringify(name.slice(0, 32))} is given more than once`);
    out.set(name, value);
  }
  return ok(out);
}

/** Validates a nonce text (the `nonce` query parameter of GET /v2/ping): canonical base64url of 16..64 bytes. */
export function parseNonce(input: unknown): Result<string> {
  if (decodeBase64UrlRange(input, NONCE_MIN_BYTES, NONCE_MAX_BYTES) === undefined) {
    return fail("P2P_ERR_BAD_NONCE", `nonce must be unpadded base64url of ${NONCE_MIN_BYTES} to ${NONCE_MAX_BYTES} bytes`);
  }
  return ok(input as string);
}

// --- JSON bodies ---

/** Strict UTF-8 (no BOM, no invalid sequences) then JSON.parse. Never throws. */
export function decodeJsonBody(body: Uint8Array): Result<unknown> {
  const text = decodeUtf8Strict(body);
  if (text === undefined) return fail("P2P_ERR_BAD_JSON", "body is not valid UTF-8");
  try {
    return ok(JSON.parse(text) as unknown);
  } catch {
    return fail("P2P_ERR_BAD_JSON", "body is not valid JSON");
  }
}

// --- field validators (sections 4 and 6). Each returns a refusal or undefined. ---

/** A coded refusal from one field check (turned into a failed Result by the parsers). */
export type Refusal = { code: ErrorCode; message: string };

function refuse(code: ErrorCode, message: string): Refusal {
  return { code, message };
}

/** A short, safe description of a JSON value for error messages (never echoes long peer data). */
function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return value.length <= 64 ? JSON.stringify(value) : `a string of ${value.length} characters`;
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "a non-finite number";
  return `a ${typeof value}`;
}

function fieldName(key: string): string {
  return key.length <= 64 ? JSON.stringify(key) : `${JSON.stringify(key.slice(0, 64))}...`;
}

/**
 * Shape checks shared by every v2 object, in this order: an object; `v` present and equal to 2 (checked before the
 * field set so a future version is reported as such); `type` when the object has one; no unknown field; no missing
 * field.
 */
function checkShape(input: unknown, fields: readonly string[], type: string | undefined): Refusal | undefined {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return refuse("P2P_ERR_NOT_OBJECT", `expected a JSON object, got ${describe(input)}`);
  }
  const o = input as Record<string, unknown>;
  if (!Object.hasOwn(o, "v")) return refuse("P2P_ERR_MISSING_FIELD", 'missing field "v"');
  if (o["v"] !== PROTOCOL_VERSION) {
    return refuse("P2P_ERR_BAD_VERSION", `"v" must be ${PROTOCOL_VERSION}, got ${describe(o["v"])}`);
  }
  if (type !== undefined) {
    if (!Object.hasOwn(o, "type")) return refuse("P2P_ERR_MISSING_FIELD", 'missing field "type"');
    if (o["type"] !== type) return refuse("P2P_ERR_BAD_TYPE", `"type" must be "${type}", got ${describe(o["type"])}`);
  }
  for (const key of Object.keys(o)) {
    if (!fields.includes(key)) return refuse("P2P_ERR_UNKNOWN_FIELD", `unknown field ${fieldName(key)}`);
  }
  for (const f of fields) {
    if (!Object.hasOwn(o, f)) return refuse("P2P_ERR_MISSING_FIELD", `missing field "${f}"`);
  }
  return undefined;
}

function checkId(value: unknown, field: string): Refusal | undefined {
  if (isMessageId(value)) return undefined;
  return refuse("P2P_ERR_BAD_ID", `"${field}" must be a lowercase UUIDv7, got ${describe(value)}`);
}

// Canonical address texts already decoded: each message names two (sender and us), checked and encoded several
// times (parse, signature, receipt), and the same few peers keep writing. Bounded; holds only valid entries.
const CANONICAL_CACHE_MAX = 1024;
const canonicalCache = new Map<string, Uint8Array>();

/**
 * Decodes the canonical RFC 5952 text of a 200::/7 address; anything else is undefined. `copy: false` (this module's
 * encoders only) may return the cache's own bytes, which must not be modified.
 */
export function decodeCanonicalAddress(value: unknown, copy = true): Uint8Array | undefined {
  if (typeof value !== "string") return undefined;
  const known = canonicalCache.get(value);
  if (known) return copy ? known.slice() : known;
  const bytes = parseIPv6(value);
  if (bytes === undefined || !isYggdrasilAddress(bytes) || formatIPv6(bytes) !== value) return undefined;
  if (canonicalCache.size >= CANONICAL_CACHE_MAX) canonicalCache.delete(canonicalCache.keys().next().value!);
  canonicalCache.set(value, bytes.slice());
  return bytes;
}

function checkAddress(value: unknown, field: string): Refusal | undefined {
  if (decodeCanonicalAddress(value, false) !== undefined) return undefined;
  if (typeof value === "string") {
    const bytes = parseIPv6(value);
    if (bytes !== undefined && !isYggdrasilAddress(bytes)) {
      return refuse("P2P_ERR_BAD_ADDRESS", `"${field}" is not in 200::/7: ${describe(value)}`);
    }
    if (bytes !== undefined) {
      return refuse("P2P_ERR_BAD_ADDRESS", `"${field}" is not canonical RFC 5952 text (expected "${formatIPv6(bytes)}")`);
    }
  }
  return refuse("P2P_ERR_BAD_ADDRESS", `"${field}" must be IPv6 text of a 200::/7 address, got ${describe(value)}`);
}

function checkKey(value: unknown, field: string): Refusal | undefined {
  if (decodeKey(value) !== undefined) return undefined;
  return refuse("P2P_ERR_BAD_KEY", `"${field}" must be ${PUBLIC_KEY_BYTES} bytes of canonical padded base64 (44 characters)`);
}

function checkTimestamp(value: unknown, field: string): Refusal | undefined {
  // -0 is refused so that re-serializing a parsed object gives back the same text as every other field does.
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && !Object.is(value, -0)) return undefined;
  return refuse("P2P_ERR_BAD_TIMESTAMP", `"${field}" must be a non-negative safe integer of ms, got ${describe(value)}`);
}

function checkKind(value: unknown): Refusal | undefined {
  if (typeof value !== "string" || !KIND_RE.test(value)) {
    return refuse("P2P_ERR_BAD_KIND", `"kind" must match ${KIND_RE.source}, got ${describe(value)}`);
  }
  if (!SUPPORTED_KINDS.includes(value)) {
    return refuse("P2P_ERR_UNSUPPORTED_KIND", `kind ${describe(value)} is not supported (supported: ${SUPPORTED_KINDS.join(", ")})`);
  }
  return undefined;
}

/** Content rules shared with v1: a well-formed Unicode string of at most MAX_CONTENT_BYTES UTF-8 bytes. */
export function checkContent(value: unknown): Refusal | undefined {
  if (typeof value !== "string") return refuse("P2P_ERR_BAD_CONTENT", `"content" must be a string, got ${describe(value)}`);
  // Cheap bound first: every UTF-16 unit is at least one UTF-8 byte.
  if (value.length > MAX_CONTENT_BYTES || utf8ByteLength(value) > MAX_CONTENT_BYTES) {
    return refuse("P2P_ERR_CONTENT_TOO_LARGE", `"content" exceeds ${MAX_CONTENT_BYTES} UTF-8 bytes`);
  }
  // A lone surrogate has no UTF-8 form: the signed bytes would not round-trip (it would become U+FFFD).
  if (!value.isWellFormed()) return refuse("P2P_ERR_BAD_CONTENT", `"content" contains a lone surrogate`);
  return undefined;
}

function checkSig(value: unknown): Refusal | undefined {
  if (decodeBase64Exact(value, SIGNATURE_BYTES) !== undefined) return undefined;
  return refuse("P2P_ERR_BAD_SIGNATURE_ENCODING", `"sig" must be ${SIGNATURE_BYTES} bytes of canonical padded base64 (88 characters)`);
}

function checkNonceField(value: unknown): Refusal | undefined {
  const r = parseNonce(value);
  return r.ok ? undefined : refuse(r.code, `"nonce": ${r.message}`);
}

function checkVersions(value: unknown): Refusal | undefined {
  const bad = refuse(
    "P2P_ERR_BAD_VERSION",
    `"versions" must be a strictly ascending array of 1..${MAX_VERSIONS} integers in 1..255, including ${PROTOCOL_VERSION}`,
  );
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_VERSIONS) return bad;
  let prev = 0;
  for (const x of value as unknown[]) {
    if (typeof x !== "number" || !Number.isInteger(x) || x <= prev || x > 255) return bad;
    prev = x;
  }
  // A pong is only ever served by a v2 endpoint, so a list without 2 is self-contradictory.
  if (!(value as number[]).includes(PROTOCOL_VERSION)) return bad;
  return undefined;
}

/** Wraps a parser so that nothing escapes as an exception, whatever the input. */
function guarded<T>(what: string, parse: () => Result<T>): Result<T> {
  try {
    return parse();
  } catch {
    return fail("P2P_ERR_NOT_OBJECT", `${what} could not be read`);
  }
}

// --- envelope ---

/** Structure, types, lengths and encodings only; the receiver's policy checks follow (section 9). */
export function parseEnvelope(input: unknown): Result<Envelope> {
  return guarded("envelope", () => {
    const shape = checkShape(input, ENVELOPE_FIELDS, undefined);
    if (shape) return fail(shape.code, shape.message);
    const o = input as Record<string, unknown>;
    const r =
      checkId(o["id"], "id") ??
      checkAddress(o["from"], "from") ??
      checkAddress(o["to"], "to") ??
      checkKey(o["key"], "key") ??
      checkTimestamp(o["ts"], "ts") ??
      checkKind(o["kind"]) ??
      checkContent(o["content"]) ??
      checkSig(o["sig"]);
    if (r) return fail(r.code, r.message);
    return ok<Envelope>({
      v: PROTOCOL_VERSION,
      id: o["id"] as string,
      from: o["from"] as string,
      to: o["to"] as string,
      key: o["key"] as string,
      ts: o["ts"] as number,
      kind: o["kind"] as string,
      content: o["content"] as string,
      sig: o["sig"] as string,
    });
  });
}

/**
 * The bytes an envelope signature covers (section 7, "Envelope"):
 * "declaw/v2/envelope" 0x00 | v u8 | id 16 | from 16 | to 16 | key 32 | ts u64be | kind u8 len + ASCII |
 * content u32be len + UTF-8. Throws RangeError on fields that `parseEnvelope` would refuse.
 */
export function envelopeSigningBytes(e: Omit<Envelope, "sig">): Uint8Array {
  const w = new ByteWriter(ENVELOPE_DOMAIN);
  w.u8(versionByte(e.v));
  w.raw(uuidBytes(e.id));
  w.raw(addressBytes(e.from));
  w.raw(addressBytes(e.to));
  w.raw(keyBytes(e.key));
  w.u64(e.ts);
  w.short(kindBytes(e.kind));
  w.longUtf8(checkedContent(e.content));
  return w.bytes();
}

/** Signature check only; never throws. The receiver's other checks are its own (section 9). */
export function verifyEnvelope(e: Envelope): boolean {
  return verifySigned(e, () => envelopeSigningBytes(e));
}

/** What verifyEnvelope checks (key, signature, signed bytes), to check elsewhere; undefined when malformed. */
export function envelopeSignedParts(e: Envelope): SignedParts | undefined {
  return signedParts(e, () => envelopeSigningBytes(e));
}

/**
 * Builds and signs an envelope from `id`'s address to `to` (either address may be given in any IPv6 text form; the
 * envelope carries the canonical text). Throws P2PError with the field's code when a field is invalid, and
 * P2P_ERR_CONTENT_TOO_LARGE when the JSON body would exceed MAX_BODY_BYTES (content made of characters JSON escapes).
 */
export function buildEnvelope(
  id: Signer,
  to: string,
  kind: string,
  content: string,
  opts?: { id?: string; ts?: number },
): Envelope {
  const ts = opts?.ts ?? Date.now();
  const badTs = checkTimestamp(ts, "ts"); // before newMessageId, which would throw a plain RangeError
  if (badTs) throw new P2PError(badTs.code, badTs.message);
  const unsigned: Omit<Envelope, "sig"> = {
    v: PROTOCOL_VERSION,
    id: opts?.id ?? newMessageId(ts),
    from: canonicalAddress(id.address) ?? id.address,
    to: canonicalAddress(to) ?? to,
    key: encodeBase64(id.publicKey),
    ts,
    kind,
    content,
  };
  assertValid(parseEnvelope({ ...unsigned, sig: PLACEHOLDER_SIG }));
  const envelope: Envelope = { ...unsigned, sig: encodeBase64(signBytes(id, envelopeSigningBytes(unsigned))) };
  const size = utf8ByteLength(JSON.stringify(envelope));
  if (size > MAX_BODY_BYTES) {
    throw new P2PError(
      "P2P_ERR_CONTENT_TOO_LARGE",
      `envelope is ${size} bytes as JSON, over the ${MAX_BODY_BYTES}-byte body limit (content with many escaped characters)`,
    );
  }
  return envelope;
}

// --- receipt ---

export function parseReceipt(input: unknown): Result<Receipt> {
  return guarded("receipt", () => {
    const shape = checkShape(input, RECEIPT_FIELDS, "receipt");
    if (shape) return fail(shape.code, shape.message);
    const o = input as Record<string, unknown>;
    const r =
      checkId(o["id"], "id") ??
      checkAddress(o["from"], "from") ??
      checkAddress(o["to"], "to") ??
      checkKey(o["key"], "key") ??
      checkTimestamp(o["stored"], "stored") ??
      checkSig(o["sig"]);
    if (r) return fail(r.code, r.message);
    return ok<Receipt>({
      v: PROTOCOL_VERSION,
      type: "receipt",
      id: o["id"] as string,
      from: o["from"] as string,
      to: o["to"] as string,
      key: o["key"] as string,
      stored: o["stored"] as number,
      sig: o["sig"] as string,
    });
  });
}

/**
 * Section 7, "Receipt": "declaw/v2/receipt" 0x00 | v u8 | id 16 | from 16 | to 16 | key 32 | stored u64be.
 * (`type` is implied by the domain.)
 */
export function receiptSigningBytes(r: Omit<Receipt, "sig">): Uint8Array {
  if (r.type !== "receipt") throw new RangeError('receipt type must be "receipt"');
  const w = new ByteWriter(RECEIPT_DOMAIN);
  w.u8(versionByte(r.v));
  w.raw(uuidBytes(r.id));
  w.raw(addressBytes(r.from));
  w.raw(addressBytes(r.to));
  w.raw(keyBytes(r.key));
  w.u64(r.stored);
  return w.bytes();
}

/** Signature only; the sender also checks id/from/to and the key binding (section 10). Never throws. */
export function verifyReceipt(r: Receipt): boolean {
  return verifySigned(r, () => receiptSigningBytes(r));
}

/**
 * The recipient's signed statement that it durably stored message `e.id` from `e.from` at `storedAt`. Ed25519 is
 * deterministic, so rebuilding with the same `storedAt` yields the identical receipt (duplicates get the original).
 */
export function buildReceipt(id: Signer, e: { id: string; from: string }, storedAt: number): Receipt {
  const unsigned = unsignedReceipt(id, { id: e.id, from: canonicalAddress(e.from) ?? e.from }, storedAt);
  assertValid(parseReceipt({ ...unsigned, sig: PLACEHOLDER_SIG }));
  return withReceiptSig(unsigned, encodeBase64(signBytes(id, receiptSigningBytes(unsigned))));
}

/**
 * The receiver's fast path: the same receipt as buildReceipt for an envelope that already passed parseEnvelope and
 * came from `e.from` (so its fields need no second validation).
 */
export function receiptFor(self: Signer, e: Envelope, storedAt: number): Receipt {
  const { unsigned, bytes } = unsignedReceiptFor(self, e, storedAt);
  return withReceiptSig(unsigned, encodeBase64(signBytes(self, bytes)));
}

/**
 * receiptFor in two steps, for a signature made elsewhere (sig-thread): the unsigned receipt and its bytes...
 * (parseEnvelope only accepts canonical address text, so e.from needs no rewriting.)
 */
export function unsignedReceiptFor(self: Signer, e: Envelope, storedAt: number): { unsigned: Omit<Receipt, "sig">; bytes: Uint8Array } {
  const unsigned = unsignedReceipt(self, e, storedAt);
  return { unsigned, bytes: receiptSigningBytes(unsigned) };
}

/** ...then the receipt with that signature (made by `self` over `bytes`; base64, as on the wire). */
export function withReceiptSig(unsigned: Omit<Receipt, "sig">, sig: string): Receipt {
  return { ...unsigned, sig };
}

/** `e.from` is used as given: callers pass canonical text. */
function unsignedReceipt(id: Signer, e: { id: string; from: string }, storedAt: number): Omit<Receipt, "sig"> {
  return { v: PROTOCOL_VERSION, type: "receipt", id: e.id, from: e.from, ...signerFields(id), stored: storedAt };
}

// A signer's canonical address and base64 key, computed once per signer object (the receiver signs a receipt per
// message). Signers are built once and never mutated.
const signerCache = new WeakMap<Signer, { to: string; key: string }>();
function signerFields(id: Signer): { to: string; key: string } {
  let f = signerCache.get(id);
  if (!f) signerCache.set(id, (f = { to: canonicalAddress(id.address) ?? id.address, key: encodeBase64(id.publicKey) }));
  return f;
}

// --- ping proof ---

export function parsePingProof(input: unknown): Result<PingProof> {
  return guarded("ping proof", () => {
    const shape = checkShape(input, PONG_FIELDS, "pong");
    if (shape) return fail(shape.code, shape.message);
    const o = input as Record<string, unknown>;
    const r =
      checkAddress(o["address"], "address") ??
      checkKey(o["key"], "key") ??
      checkVersions(o["versions"]) ??
      checkTimestamp(o["ts"], "ts") ??
      checkNonceField(o["nonce"]) ??
      checkSig(o["sig"]);
    if (r) return fail(r.code, r.message);
    return ok<PingProof>({
      v: PROTOCOL_VERSION,
      type: "pong",
      address: o["address"] as string,
      key: o["key"] as string,
      versions: [...(o["versions"] as number[])],
      ts: o["ts"] as number,
      nonce: o["nonce"] as string,
      sig: o["sig"] as string,
    });
  });
}

/**
 * Section 7, "Ping proof": "declaw/v2/pong" 0x00 | v u8 | address 16 | key 32 | versions count u8 + u8 each |
 * ts u64be | nonce u8 len + raw bytes.
 */
export function pingProofSigningBytes(p: Omit<PingProof, "sig">): Uint8Array {
  if (p.type !== "pong") throw new RangeError('ping proof type must be "pong"');
  if (checkVersions(p.versions) !== undefined) throw new RangeError("invalid versions list");
  const nonce = decodeBase64UrlRange(p.nonce, NONCE_MIN_BYTES, NONCE_MAX_BYTES);
  if (nonce === undefined) throw new RangeError("invalid nonce");
  const w = new ByteWriter(PONG_DOMAIN);
  w.u8(versionByte(p.v));
  w.raw(addressBytes(p.address));
  w.raw(keyBytes(p.key));
  w.short(Uint8Array.from(p.versions));
  w.u64(p.ts);
  w.short(nonce);
  return w.bytes();
}

/** Signature plus equality of the echoed nonce with the one the asker sent. Never throws. */
export function verifyPingProof(p: PingProof, nonce: string): boolean {
  if (typeof nonce !== "string" || p?.nonce !== nonce) return false;
  return verifySigned(p, () => pingProofSigningBytes(p));
}

export function buildPingProof(id: Signer, nonce: string, ts: number = Date.now()): PingProof {
  const unsigned: Omit<PingProof, "sig"> = {
    v: PROTOCOL_VERSION,
    type: "pong",
    address: canonicalAddress(id.address) ?? id.address,
    key: encodeBase64(id.publicKey),
    versions: [...SUPPORTED_VERSIONS],
    ts,
    nonce,
  };
  assertValid(parsePingProof({ ...unsigned, sig: PLACEHOLDER_SIG }));
  return { ...unsigned, sig: encodeBase64(signBytes(id, pingProofSigningBytes(unsigned))) };
}

// --- byte encoding helpers (section 7) ---

// Stands in for the signature while a builder validates its other fields.
const PLACEHOLDER_SIG = encodeBase64(new Uint8Array(SIGNATURE_BYTES));

function assertValid(r: Result<unknown>): void {
  if (!r.ok) throw new P2PError(r.code, r.message);
}

/** Decodes `key` and `sig` of a (possibly unvalidated) object and checks the signature; false on anything odd. */
function verifySigned(o: { key: string; sig: string }, signed: () => Uint8Array): boolean {
  const parts = signedParts(o, signed);
  return parts ? verifyBytes(parts.key, parts.data, parts.sig) : false;
}

/** The decoded key, signature and signed bytes of a message, or undefined when any of them is malformed. */
/** What a signature check needs: the signer's key, the signature and the signed bytes. */
export interface SignedParts {
  key: Uint8Array;
  sig: Uint8Array;
  data: Uint8Array;
}

function signedParts(o: { key: string; sig: string }, signed: () => Uint8Array): SignedParts | undefined {
  try {
    const key = decodeBase64Exact(o.key, PUBLIC_KEY_BYTES);
    const sig = decodeBase64Exact(o.sig, SIGNATURE_BYTES);
    if (key === undefined || sig === undefined) return undefined;
    return { key, sig, data: signed() };
  } catch {
    return undefined;
  }
}

function versionByte(v: unknown): number {
  if (v !== PROTOCOL_VERSION) throw new RangeError(`v must be ${PROTOCOL_VERSION}`);
  return v;
}

function uuidBytes(id: string): Uint8Array {
  if (!isMessageId(id)) throw new RangeError("id must be a lowercase UUIDv7");
  return Buffer.from(id.replaceAll("-", ""), "hex");
}

/** The address's 16 bytes, possibly shared with the decode cache: only for copying into a ByteWriter. */
function addressBytes(text: string): Uint8Array {
  const b = decodeCanonicalAddress(text, false);
  if (b === undefined) throw new RangeError(`not a canonical 200::/7 address: ${describe(text)}`);
  return b;
}

// Public keys already decoded, as for addresses: the same few peers' keys (and ours, in every receipt) are encoded
// for every message. Bounded; holds only canonical texts.
const KEY_CACHE_MAX = 1024;
const keyCache = new Map<string, Uint8Array>();

/** The key's 32 bytes, or undefined if not canonical base64 of 32 bytes. Shared with the cache: do not modify. */
function decodeKey(key: unknown): Uint8Array | undefined {
  if (typeof key !== "string") return undefined;
  const known = keyCache.get(key);
  if (known) return known;
  const b = decodeBase64Exact(key, PUBLIC_KEY_BYTES);
  if (b === undefined) return undefined;
  if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(key, b);
  return b;
}

/** decodeKey for the encoders (only for copying into a ByteWriter). */
function keyBytes(key: string): Uint8Array {
  const b = decodeKey(key);
  if (b === undefined) throw new RangeError("key must be 32 bytes of canonical padded base64");
  return b;
}

function kindBytes(kind: string): Uint8Array {
  if (typeof kind !== "string" || !KIND_RE.test(kind)) throw new RangeError("invalid kind");
  return encodeUtf8(kind); // ASCII by the pattern
}

function checkedContent(content: string): string {
  const r = checkContent(content);
  if (r !== undefined) throw new RangeError(r.message);
  return content;
}

const domainBytes = new Map<string, Uint8Array>();

/**
 * Appends fixed-width big-endian integers and length-prefixed byte strings after a domain prefix, into one buffer
 * (a message's signed bytes are built several times per message: one allocation each, not one per field).
 */
class ByteWriter {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #length = 0;

  constructor(domain: string) {
    let d = domainBytes.get(domain);
    if (!d) domainBytes.set(domain, (d = encodeUtf8(domain)));
    this.raw(d);
    this.u8(0);
  }

  raw(b: Uint8Array): void {
    this.#reserve(b.length);
    this.#buf.set(b, this.#length);
    this.#length += b.length;
  }

  u8(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > 0xff) throw new RangeError(`u8 out of range: ${n}`);
    this.#reserve(1);
    this.#buf[this.#length++] = n;
  }

  u64(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`u64 must be a non-negative safe integer: ${n}`);
    this.#reserve(8);
    this.#view.setUint32(this.#length, Math.floor(n / 2 ** 32));
    this.#view.setUint32(this.#length + 4, n >>> 0);
    this.#length += 8;
  }

  /** u8 length + bytes (at most 255). */
  short(b: Uint8Array): void {
    this.u8(b.length);
    this.raw(b);
  }

  /** u32be length + the UTF-8 of a well-formed string (encoded in place). */
  longUtf8(text: string): void {
    const n = utf8ByteLength(text);
    if (n > 0xffffffff) throw new RangeError("byte string too long");
    this.#reserve(4 + n);
    this.#view.setUint32(this.#length, n);
    this.#length += 4;
    this.#length += encodeUtf8Into(text, this.#buf.subarray(this.#length));
  }

  /** A copy of exactly the bytes written (its own buffer, safe to hand to another thread). */
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#length);
  }

  #reserve(n: number): void {
    if (this.#length + n <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(this.#buf.length * 2, this.#length + n));
    bigger.set(this.#buf.subarray(0, this.#length));
    this.#buf = bigger;
    this.#view = new DataView(bigger.buffer);
  }
}
