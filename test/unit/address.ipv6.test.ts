/** IPv6 text forms (RFC 4291 section 2.2 parsing, RFC 5952 section 4 output), key/address binding, peer ids. */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  parseIPv6, formatIPv6, canonicalAddress, keyMatchesAddress, deriveAddress, deriveSubnet,
  peerIdFromAddress, addressFromPeerId, isYggdrasilAddress,
} from "../../src/core/address.ts";
import { generateKeyPair } from "../../src/core/keys.ts";

// [input, canonical RFC 5952 text]
const CANONICAL: [string, string][] = [
  ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"], // 4.1 leading zeros, 4.2.1 longest run
  ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"],
  ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // 4.2.2 a single 0 group is not compressed
  ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // 4.2.3 the longest run wins
  ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // 4.2.3 the first of equal runs wins
  ["2001:DB8::AbCd", "2001:db8::abcd"], // 4.3 lowercase
  ["0:0:0:0:0:0:0:0", "::"],
  ["0:0:0:0:0:0:0:1", "::1"],
  ["1:0:0:0:0:0:0:0", "1::"],
  ["1:2:3:4:5:6::8", "1:2:3:4:5:6:0:8"],
  ["0200:0000:0000:0000:0000:0000:0000:0001", "200::1"],
  ["[207:1899:30e2:2d06:9b1d:12db:c6a5:efb6]", "207:1899:30e2:2d06:9b1d:12db:c6a5:efb6"],
  ["::ffff:192.0.2.1", "::ffff:c000:201"], // dotted tail parsed (we always print hex groups)
  ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
];

for (const [input, want] of CANONICAL) {
  test(`canonical text of ${input}`, () => {
    assert.equal(canonicalAddress(input), want);
    const b = parseIPv6(input)!;
    assert.equal(b.length, 16);
    assert.deepEqual(parseIPv6(formatIPv6(b)), b); // round trip
  });
}

const INVALID = [
  "", ":", ":::", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1::2::3", ":::1", "1:::2", "12345::", "g::", "1:", ":1",
  "::1:", "fe80::1%eth0", "[::1", "::1]", "1.2.3.4", "::01.2.3.4", "::1.2.3", "::256.1.1.1", "1:2:3:4:5:6:7::8",
  "1:2:3:4:5:6:7:1.2.3.4", " ::1", "::1 ", "0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000",
];
for (const bad of INVALID) {
  test(`parseIPv6 refuses ${JSON.stringify(bad)}`, () => {
    assert.equal(parseIPv6(bad), undefined);
    assert.equal(canonicalAddress(bad), undefined);
  });
}

test("parseIPv6 never throws on non-strings", () => {
  for (const v of [undefined, null, 1, {}, []]) assert.equal(parseIPv6(v as unknown as string), undefined);
});

test("formatIPv6 refuses a wrong length", () => {
  assert.throws(() => formatIPv6(new Uint8Array(15)), RangeError);
});

test("formatIPv6 of every single-bit address round trips", () => {
  for (let bit = 0; bit < 128; bit++) {
    const a = new Uint8Array(16);
    a[bit >> 3] = 0x80 >> (bit & 7);
    assert.deepEqual(parseIPv6(formatIPv6(a)), a);
  }
});

test("keyMatchesAddress: 200::/8 must match exactly, 300::/8 within the derived /64", () => {
  const kp = generateKeyPair();
  const addr = deriveAddress(kp.publicKey);
  assert.equal(addr[0], 0x02);
  assert.ok(keyMatchesAddress(kp.publicKey, addr));
  for (let i = 1; i < 16; i++) {
    const other = Uint8Array.from(addr);
    other[i]! ^= 0x01;
    assert.equal(keyMatchesAddress(kp.publicKey, other), false, `byte ${i} flipped`);
  }
  const subnet = deriveSubnet(kp.publicKey);
  assert.equal(subnet[0], 0x03);
  const host = Uint8Array.from(subnet);
  host.set([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4], 8); // any host half
  assert.ok(keyMatchesAddress(kp.publicKey, subnet));
  assert.ok(keyMatchesAddress(kp.publicKey, host));
  for (let i = 1; i < 8; i++) {
    const other = Uint8Array.from(host);
    other[i]! ^= 0x80;
    assert.equal(keyMatchesAddress(kp.publicKey, other), false, `prefix byte ${i} flipped`);
  }
  // Neither 200::/8 nor 300::/8; wrong lengths.
  const outside = Uint8Array.from(addr);
  outside[0] = 0x04;
  assert.equal(keyMatchesAddress(kp.publicKey, outside), false);
  assert.equal(keyMatchesAddress(kp.publicKey.subarray(1), addr), false);
  assert.equal(keyMatchesAddress(kp.publicKey, addr.subarray(1)), false);
  // Another key does not match.
  assert.equal(keyMatchesAddress(generateKeyPair().publicKey, addr), false);
});

test("isYggdrasilAddress covers exactly 200::/7", () => {
  assert.ok(isYggdrasilAddress(parseIPv6("200::")!));
  assert.ok(isYggdrasilAddress(parseIPv6("3ff:ffff::1")!));
  assert.equal(isYggdrasilAddress(parseIPv6("1ff:ffff::1")!), false);
  assert.equal(isYggdrasilAddress(parseIPv6("400::")!), false);
  assert.equal(isYggdrasilAddress(parseIPv6("fe80::1")!), false);
});

test("peerIdFromAddress / addressFromPeerId round trip and refuse malformed ids", () => {
  const a = parseIPv6("200:1::ab")!;
  assert.equal(peerIdFromAddress(a), "0200-0001-0000-0000-0000-0000-0000-00ab");
  for (let i = 0; i < 20; i++) {
    const addr = deriveAddress(generateKeyPair().publicKey);
    const id = peerIdFromAddress(addr);
    assert.match(id, /^[0-9a-f]{4}(-[0-9a-f]{4}){7}$/);
    assert.ok(!id.includes(":"));
    assert.deepEqual(addressFromPeerId(id), addr);
  }
  for (const bad of ["", "0200-0001", "0200-0001-0000-0000-0000-0000-0000-00AB", "200-1-0-0-0-0-0-ab",
    "0200:0001:0000:0000:0000:0000:0000:00ab", "0200-0001-0000-0000-0000-0000-0000-00ab-0000"]) {
    assert.equal(addressFromPeerId(bad), undefined, bad);
  }
});
