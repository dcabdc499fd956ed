/**
 * Which key a sender accepts on a receipt (docs/protocol.md sections 10 and 12): the key pinned for the peer is the
 * only one, even against a key that derives to the address (the rule the receiver applies to incoming messages, and
 * what `add --key` tells the user); with none pinned, any key that signs a valid receipt (a derived one is bound by
 * construction, another is pinned on first use by the outbox).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { receiptProblem } from "../../src/core/client.ts";
import { encodeBase64 } from "../../src/core/encoding.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { buildEnvelope, buildReceipt, type Signer } from "../../src/core/wire.ts";

function signer(fill: number, address?: string): Signer {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(fill));
  return { ...kp, address: address ?? formatIPv6(deriveAddress(kp.publicKey)) };
}

const alice = signer(1);
const bob = signer(2); // his key derives to his address
const env = buildEnvelope(alice, bob.address, "chat", "hello");
const receipt = buildReceipt(bob, env, Date.now());
const bobKey = encodeBase64(bob.publicKey);
const otherKey = encodeBase64(signer(3).publicKey);

test("with no key pinned, a valid receipt counts", () => {
  assert.equal(receiptProblem(receipt, env, null), undefined);
});

test("with the receipt's key pinned, it counts", () => {
  assert.equal(receiptProblem(receipt, env, bobKey), undefined);
});

test("with another key pinned, a receipt signed by the key deriving to the address does not count", () => {
  assert.match(receiptProblem(receipt, env, otherKey) ?? "", /not the one pinned for the peer/);
});

test("a receipt that names another message does not count, whatever is pinned", () => {
  const other = buildEnvelope(alice, bob.address, "chat", "another");
  assert.match(receiptProblem(receipt, other, null) ?? "", /names another message/);
});
