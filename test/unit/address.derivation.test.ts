/**
 * Address derivation against the real daemon: checked-in vectors (test/fixtures/yggdrasil-addresses.json, printed
 * by yggdrasil 0.4.7 for crafted keys with 0..255 leading zero bits) and fresh key pairs compared live when the
 * binary is installed.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { deriveAddress, deriveSubnet, formatIPv6, parseIPv6, keyMatchesAddress } from "../../src/core/address.ts";
import { generateKeyPair } from "../../src/core/keys.ts";
import { yggdrasilPrivateKeyHex } from "../../src/core/identity.ts";
import { YGGDRASIL_SKIP_REASON, yggdrasilDerive } from "../helpers/ygg-cli.ts";

interface Fixture { name: string; publicKey: string; address: string; subnet: string }
const fixtures: Fixture[] = JSON.parse(
  readFileSync(new URL("../fixtures/yggdrasil-addresses.json", import.meta.url), "utf8"),
).entries;

test("fixture file covers 0..20 leading zero bits plus the all-zero and all-0xff keys", () => {
  assert.ok(fixtures.length >= 20);
  for (let z = 0; z <= 20; z++) assert.ok(fixtures.some((f) => f.name === `${z} leading zero bits`), `missing ${z}`);
  assert.ok(fixtures.some((f) => f.publicKey === "00".repeat(32)));
  assert.ok(fixtures.some((f) => f.publicKey === "ff".repeat(32)));
});

for (const f of fixtures) {
  test(`deriveAddress/deriveSubnet match the daemon: ${f.name}`, () => {
    const key = Buffer.from(f.publicKey, "hex");
    const addr = deriveAddress(key);
    assert.equal(formatIPv6(addr), f.address);
    assert.equal(`${formatIPv6(deriveSubnet(key))}/64`, f.subnet);
    // Byte comparison too: the daemon's text parsed back must equal our bytes.
    assert.deepEqual(addr, parseIPv6(f.address));
    assert.ok(keyMatchesAddress(key, addr));
  });
}

test("fresh key pairs derive the address the real daemon prints", { skip: YGGDRASIL_SKIP_REASON, timeout: 30_000 }, () => {
  for (let i = 0; i < 5; i++) {
    const kp = generateKeyPair();
    const hex = yggdrasilPrivateKeyHex(kp);
    assert.equal(yggdrasilDerive(hex, "-address"), formatIPv6(deriveAddress(kp.publicKey)));
    assert.equal(yggdrasilDerive(hex, "-subnet"), `${formatIPv6(deriveSubnet(kp.publicKey))}/64`);
  }
});

test("deriveAddress refuses keys that are not 32 bytes", () => {
  assert.throws(() => deriveAddress(new Uint8Array(31)), RangeError);
  assert.throws(() => deriveAddress(new Uint8Array(33)), RangeError);
});
