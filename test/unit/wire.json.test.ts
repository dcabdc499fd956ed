/**
 * docs/protocol.md section 4 (Encodings): request bodies are strict UTF-8 JSON, base64 texts are canonical.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeBase64Exact, decodeBase64UrlRange, decodeUtf8Strict, encodeBase64, encodeBase64Url } from "../../src/core/encoding.ts";
import { decodeJsonBody, parseQuery } from "../../src/core/wire.ts";

const bytes = (...xs: number[]) => Uint8Array.from(xs);
const utf8 = (s: string) => new TextEncoder().encode(s);

describe("decodeJsonBody", () => {
  test("well-formed UTF-8 JSON decodes, non-ASCII included", () => {
    const r = decodeJsonBody(utf8('{"content":"héllo ✓ 🦀"}'));
    assert.ok(r.ok);
    assert.deepEqual(r.value, { content: "héllo ✓ 🦀" });
  });

  test("any JSON value decodes (the envelope parser refuses non-objects, not this layer)", () => {
    for (const [text, value] of [["[]", []], ["null", null], ["2", 2], ['"x"', "x"]] as const) {
      const r = decodeJsonBody(utf8(text));
      assert.ok(r.ok);
      assert.deepEqual(r.value, value);
    }
  });

  const invalid: Array<[string, Uint8Array]> = [
    ["a lone continuation byte", bytes(0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d)],
    ["an overlong encoding of '/' (C0 AF)", Uint8Array.from([...utf8('{"a":"'), 0xc0, 0xaf, ...utf8('"}')])],
    ["an encoded surrogate (ED A0 80)", Uint8Array.from([...utf8('{"a":"'), 0xed, 0xa0, 0x80, ...utf8('"}')])],
    ["a truncated 3-byte sequence", Uint8Array.from([...utf8('{"a":"'), 0xe2, 0x9c, ...utf8('"}')])],
    ["a code point above U+10FFFF (F4 90 80 80)", Uint8Array.from([...utf8('{"a":"'), 0xf4, 0x90, 0x80, 0x80, ...utf8('"}')])],
    ["the byte FF", Uint8Array.from([...utf8('{"a":"'), 0xff, ...utf8('"}')])],
    ["Latin-1 text (E9 for é)", Uint8Array.from([...utf8('{"a":"h'), 0xe9, ...utf8('llo"}')])],
    ["UTF-16LE text", new Uint8Array(Buffer.from('{"a":1}', "utf16le"))],
    ["a UTF-8 byte order mark", Uint8Array.from([0xef, 0xbb, 0xbf, ...utf8('{"a":1}')])],
    ["an empty body", new Uint8Array(0)],
    ["truncated JSON", utf8('{"a":')],
    ["trailing garbage", utf8('{"a":1} x')],
    ["single quotes", utf8("{'a':1}")],
    ["a trailing comma", utf8('{"a":1,}')],
    ["NaN", utf8('{"a":NaN}')],
    ["a raw control character in a string", utf8('{"a":"x\u0001y"}')],
  ];
  for (const [what, body] of invalid) {
    test(`refuses ${what} with P2P_ERR_BAD_JSON`, () => {
      const r = decodeJsonBody(body);
      assert.equal(r.ok ? "ok" : r.code, "P2P_ERR_BAD_JSON");
    });
  }

  test("deep nesting does not throw", () => {
    const r = decodeJsonBody(utf8("[".repeat(100_000) + "]".repeat(100_000)));
    assert.equal(typeof r.ok, "boolean");
  });
});

describe("parseQuery (the ping's query string, section 11)", () => {
  test("name=value pairs joined by &, percent-decoded; other names are kept", () => {
    const r = parseQuery("nonce=ab%2Dc&v=2");
    assert.ok(r.ok);
    assert.equal(r.value.get("nonce"), "ab-c");
    assert.equal(r.value.get("v"), "2");
    assert.ok(parseQuery("").ok);
  });

  test("an empty pair, a pair without =, a bad escape or a repeated name is P2P_ERR_BAD_QUERY", () => {
    for (const q of ["nonce=a&&v=1", "nonce", "=a", "nonce=%zz", "nonce=%E0%A4%A", "nonce=a&nonce=b", "&"]) {
      const r = parseQuery(q);
      assert.ok(!r.ok, q);
      assert.equal(r.code, "P2P_ERR_BAD_QUERY", q);
    }
  });
});

describe("strict base64 (section 4)", () => {
  test("round trips exactly", () => {
    for (let n = 0; n < 70; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      assert.deepEqual(decodeBase64Exact(encodeBase64(b), n), b);
    }
  });

  test("refuses every non-canonical or wrong-length text", () => {
    const key = encodeBase64(new Uint8Array(32).fill(0xab));
    assert.ok(decodeBase64Exact(key, 32));
    for (const bad of [key.slice(0, -1), key + "=", key.replace("q", "-"), ` ${key.slice(1)}`, key.slice(0, -2) + "t=", key.slice(0, 43) + "\n", "", 42, null]) {
      assert.equal(decodeBase64Exact(bad, 32), undefined, String(bad));
    }
    assert.equal(decodeBase64Exact(key, 31), undefined);
    assert.equal(decodeBase64Exact(key, 33), undefined);
  });

  test("base64url: unpadded, canonical, within the byte range", () => {
    const n = encodeBase64Url(Uint8Array.from([0xfb, 0xff, 0xfe, 0x01]));
    assert.equal(n, "-__-AQ");
    assert.deepEqual(decodeBase64UrlRange(n, 1, 8), Uint8Array.from([0xfb, 0xff, 0xfe, 0x01]));
    assert.equal(decodeBase64UrlRange(n + "==", 1, 8), undefined);
    assert.equal(decodeBase64UrlRange("+//+AQ", 1, 8), undefined);
    assert.equal(decodeBase64UrlRange("-__-AR", 1, 8), undefined, "non-zero trailing bits");
    assert.equal(decodeBase64UrlRange(n, 5, 8), undefined);
    assert.equal(decodeBase64UrlRange(n, 1, 3), undefined);
  });

  test("decodeUtf8Strict returns undefined instead of substituting U+FFFD", () => {
    assert.equal(decodeUtf8Strict(bytes(0x68, 0xc3, 0xa9)), "hé");
    assert.equal(decodeUtf8Strict(bytes(0x68, 0xc3)), undefined);
  });
});
