/**
 * Strict text encodings for the wire (docs/protocol.md section 4). Pure; nothing here throws on peer input.
 *
 * Why strict: a signature covers decoded bytes, so two different texts decoding to the same bytes would let a relay
 * alter a message without breaking its signature, and a string compare would stop meaning a byte compare. Every
 * decoder here therefore accepts exactly one text per byte string: the text the matching encoder produces.
 * (Node's own `Buffer.from(s, "base64")` silently skips junk characters, accepts missing padding and ignores
 * non-zero trailing bits, so it is only used after a shape check and a re-encode comparison.)
 */

// RFC 4648 section 4 alphabet with `=` padding to a multiple of 4 characters.
const BASE64_PADDED_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 4648 section 5 alphabet, no padding (RFC 4648 section 3.2 allows omitting it when the length is known).
const BASE64URL_UNPADDED_RE = /^[A-Za-z0-9_-]*$/;

/** Standard padded base64 (RFC 4648 section 4). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Unpadded base64url (RFC 4648 section 5). */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/**
 * Decodes canonical padded base64 of exactly `byteLength` bytes, or returns undefined. Canonical = the text
 * `encodeBase64` would produce for the result (right length, right padding, zero trailing bits).
 */
export function decodeBase64Exact(text: unknown, byteLength: number): Uint8Array | undefined {
  if (typeof text !== "string") return undefined;
  if (text.length !== 4 * Math.ceil(byteLength / 3)) return undefined; // also bounds the work on huge strings
  if (!BASE64_PADDED_RE.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length !== byteLength || bytes.toString("base64") !== text) return undefined;
  return new Uint8Array(bytes);
}

/** Decodes canonical unpadded base64url of `minBytes..maxBytes` bytes, or returns undefined. */
export function decodeBase64UrlRange(text: unknown, minBytes: number, maxBytes: number): Uint8Array | undefined {
  if (typeof text !== "string") return undefined;
  if (text.length > Math.ceil((maxBytes * 4) / 3)) return undefined;
  if (text.length % 4 === 1 || !BASE64URL_UNPADDED_RE.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64url");
  if (bytes.length < minBytes || bytes.length > maxBytes || bytes.toString("base64url") !== text) return undefined;
  return new Uint8Array(bytes);
}

// `fatal` refuses invalid sequences (overlong forms, encoded surrogates, truncation) instead of substituting U+FFFD;
// `ignoreBOM` keeps a leading U+FEFF in the text so that JSON.parse refuses it (RFC 8259 section 8.1: no BOM).
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Decodes well-formed UTF-8 (RFC 3629), or returns undefined. */
export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** UTF-8 of a string. Only meaningful for well-formed strings (a lone surrogate would become U+FFFD). */
export function encodeUtf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/** Writes the UTF-8 of `text` into `target` (at least utf8ByteLength(text) long); returns the bytes written. */
export function encodeUtf8Into(text: string, target: Uint8Array): number {
  return utf8Encoder.encodeInto(text, target).written;
}

/** Byte length of the UTF-8 encoding of `text`, without allocating it. */
export function utf8ByteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Lowercase hex, for vectors, logs and UUID text. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}
