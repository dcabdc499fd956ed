/**
 * Ed25519 through `node:crypto` (RFC 8032; no hand-rolled crypto). Raw 32-byte seeds and public keys are wrapped in
 * the fixed PKCS#8 / SPKI DER prefixes Node needs to import them.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from "node:crypto";

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

export const SEED_BYTES = 32;
export const SIGNATURE_BYTES = 64;

export interface KeyPair {
  seed: Uint8Array;
  publicKey: Uint8Array;
  privateKeyObject: KeyObject;
}

export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  if (seed.length !== SEED_BYTES) throw new RangeError(`Ed25519 seed must be ${SEED_BYTES} bytes`);
  const privateKeyObject = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKeyObject).export({ format: "der", type: "spki" });
  return { seed: Uint8Array.from(seed), publicKey: new Uint8Array(spki.subarray(SPKI_ED25519_PREFIX.length)), privateKeyObject };
}

/** A fresh key pair from 32 random bytes (importing a seed avoids a Node 20 GC deadlock seen with bulk keygen). */
export function generateKeyPair(): KeyPair {
  return keyPairFromSeed(randomBytes(SEED_BYTES));
}

export function signBytes(key: KeyPair, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, key.privateKeyObject));
}

// Imported public keys, kept so repeat senders do not pay the DER import on every verify. Bounded.
const PUBLIC_KEY_CACHE_MAX = 4096;
const publicKeyCache = new Map<string, KeyObject>();

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString("base64");
  let obj = publicKeyCache.get(id);
  if (!obj) {
    obj = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: "der", type: "spki" });
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_MAX) publicKeyCache.delete(publicKeyCache.keys().next().value!);
    publicKeyCache.set(id, obj);
  }
  return obj;
}

/** Verifies a detached signature. Never throws: malformed keys or signatures simply do not verify. */
export function verifyBytes(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, data, publicKeyObject(publicKey), signature);
  } catch {
    return false;
  }
}
