/**
 * Seeded fuzzing helpers: a small PRNG (mulberry32), generators of hostile JSON values, and structure- and
 * byte-level mutators of signed objects. Everything is a pure function of the seed, so a failure replays with
 * `DECLAW_FUZZ_SEED=<seed>` (the seed is printed by every fuzz test). `DECLAW_FUZZ_MS` scales the run time.
 */
import { keyPairFromSeed, type KeyPair } from "../../src/core/keys.ts";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";

/** mulberry32: 32-bit state, good enough spread for fuzzing, trivially reproducible. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  /** A derived child generator (independent stream for a worker or a sub-task). */
  fork(): Rng {
    return new Rng(this.int(2 ** 32));
  }
}

/** The seed for this run: DECLAW_FUZZ_SEED if set (decimal or 0x hex), else a fresh one. */
export function fuzzSeed(): number {
  const env = process.env["DECLAW_FUZZ_SEED"];
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 0 || n >= 2 ** 32) throw new RangeError(`DECLAW_FUZZ_SEED must be an integer in 0..2^32-1, got ${env}`);
    return n;
  }
  return (Date.now() ^ (process.pid << 16) ^ Math.floor(Math.random() * 2 ** 32)) >>> 0;
}

/** Run time in ms: DECLAW_FUZZ_MS if set, else `dflt`. */
export function fuzzBudgetMs(dflt: number): number {
  const env = Number(process.env["DECLAW_FUZZ_MS"]);
  return Number.isFinite(env) && env > 0 ? env : dflt;
}

/** A key pair and its derived address from a seeded generator. */
export function fuzzIdentity(rng: Rng): KeyPair & { address: string } {
  const kp = keyPairFromSeed(rng.bytes(32));
  return { ...kp, address: formatIPv6(deriveAddress(kp.publicKey)) };
}

// Values chosen to hit edges of the validators: types, encodings, ranges, Unicode.
const EDGE_STRINGS: readonly string[] = [
  "", " ", "chat", "CHAT", "chat ", "a".repeat(33), "x".repeat(70_000), "\u0000", "\ud800", "\udfff", "a\ud83d", "\ufeff",
  "\u{1f600}", "é", "200::", "0200::1", "200:0:0::1", "200::ABCD", "[200::1]", "200::1%lo", "::ffff:1.2.3.4", "fd00::1",
  "300::", "3ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "1ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::", "200::1::2",
  "200:1:2:3:4:5:6:7:8", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=",
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", "____", "-_-_",
  "01a21709-a815-7d3c-9a1b-4f2e6d8c0b5a", "01A21709-A815-7D3C-9A1B-4F2E6D8C0B5A", "01a21709-a815-4d3c-9a1b-4f2e6d8c0b5a",
  "01a21709-a815-7d3c-ca1b-4f2e6d8c0b5a", "01a21709a8157d3c9a1b4f2e6d8c0b5a", "__proto__", "constructor", "toString",
  "receipt", "pong", "NaN", "1", "-1", "true", "null",
];
const EDGE_NUMBERS: readonly number[] = [
  0, -0, 1, -1, 2, 3, 1.5, 2 ** 53 - 1, 2 ** 53, 2 ** 63, -(2 ** 53), 1e308, Infinity, -Infinity, NaN, 5e-324,
  Date.now(), Date.now() + 301_000, Date.now() - 301_000, 255, 256, 65535,
];

/** A random JSON-ish value (may contain NaN/Infinity/lone surrogates: JSON.stringify turns some into null). */
export function randomValue(rng: Rng, depth = 0): unknown {
  const r = rng.int(depth > 2 ? 6 : 9);
  switch (r) {
    case 0: return null;
    case 1: return rng.bool();
    case 2: return rng.pick(EDGE_NUMBERS);
    case 3: return rng.int(2 ** 31) * (rng.bool() ? 1 : -1);
    case 4: return rng.pick(EDGE_STRINGS);
    case 5: return randomString(rng, rng.int(40));
    case 6: return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) o[rng.bool() ? rng.pick(EDGE_STRINGS) : randomString(rng, 5)] = randomValue(rng, depth + 1);
      return o;
    }
    default: return rng.pick(EDGE_STRINGS) + randomString(rng, 3);
  }
}

export function randomString(rng: Rng, len: number): string {
  let s = "";
  for (let i = 0; i < len; i++) {
    const k = rng.int(10);
    if (k < 6) s += String.fromCharCode(0x20 + rng.int(0x5f));
    else if (k < 7) s += String.fromCharCode(rng.int(0x20));
    else if (k < 8) s += String.fromCharCode(0xd800 + rng.int(0x800)); // surrogates, often lone
    else if (k < 9) {
      const cp = 0x80 + rng.int(0x10ff80);
      s += cp >= 0xd800 && cp <= 0xdfff ? "x" : String.fromCodePoint(cp);
    }
    else s += rng.pick(["\"", "\\", "/", "\u2028", "\u{1f600}", "é"]);
  }
  return s;
}

/**
 * A structural mutation of a JSON object: drop, add, retype or tweak one or more members. Returns a new object (which
 * may, rarely, equal the input: oracles compare against the original instead of assuming a change).
 */
export function mutateObject(rng: Rng, obj: Record<string, unknown>): Record<string, unknown> {
  const o: Record<string, unknown> = { ...obj };
  const keys = Object.keys(o);
  for (let n = 1 + (rng.bool(0.3) ? rng.int(3) : 0); n > 0; n--) {
    const key = rng.pick(keys);
    switch (rng.int(8)) {
      case 0: delete o[key]; break;
      case 1: o[rng.bool(0.5) ? rng.pick(EDGE_STRINGS) : randomString(rng, 6)] = randomValue(rng); break;
      case 2: o[key] = randomValue(rng); break;
      case 3: o[key] = tweakValue(rng, o[key]); break;
      case 4: o[key] = tweakValue(rng, o[key]); break;
      case 5: {
        // Move a value from another field (e.g. "from" <-> "to", key of someone else).
        const other = rng.pick(keys);
        o[key] = obj[other];
        break;
      }
      case 6: o[key] = typeof o[key] === "string" ? (o[key] as string).toUpperCase() : asText(o[key]); break;
      default: o[key] = typeof o[key] === "number" ? (o[key] as number) + rng.pick([1, -1, 0.5, 1000, -1e6]) : [o[key]];
    }
  }
  return o;
}

/** String(v), except for values String() throws on (an object whose "toString" key holds a generated value). */
function asText(v: unknown): string {
  try {
    return String(v);
  } catch {
    return JSON.stringify(v);
  }
}

/** A small change to a value of the same type (one character, one bit, a boundary). */
export function tweakValue(rng: Rng, v: unknown): unknown {
  if (typeof v === "string") {
    if (v.length === 0) return rng.pick(EDGE_STRINGS);
    const i = rng.int(v.length);
    switch (rng.int(6)) {
      case 0: return v.slice(0, i) + String.fromCharCode(v.charCodeAt(i) ^ (1 << rng.int(7))) + v.slice(i + 1);
      case 1: return v.slice(0, i) + v.slice(i + 1);
      case 2: return v.slice(0, i) + rng.pick(["=", "+", "/", "-", "_", " ", "A", "0", ":", "\u0000"]) + v.slice(i);
      case 3: return v + rng.pick(["=", "\n", " ", "A", "==", "0"]);
      case 4: return ` ${v}`;
      default: return v.slice(0, i);
    }
  }
  if (typeof v === "number") return rng.pick([v + 1, v - 1, -v, v * 1000, v / 3, rng.pick(EDGE_NUMBERS)]);
  return randomValue(rng);
}

const INVALID_UTF8: readonly number[][] = [[0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xff], [0xc3], [0xef, 0xbb, 0xbf]];

/** A byte-level mutation of serialized JSON (flip, insert, delete, duplicate, truncate, invalid UTF-8, BOM). */
export function mutateBytes(rng: Rng, input: Uint8Array): Uint8Array {
  let b = Array.from(input);
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const i = b.length === 0 ? 0 : rng.int(b.length);
    switch (rng.int(8)) {
      case 0: if (b.length) b[i] = b[i]! ^ (1 << rng.int(8)); break;
      case 1: b.splice(i, 0, rng.int(256)); break;
      case 2: b.splice(i, 1 + rng.int(8)); break;
      case 3: b.splice(i, 0, ...b.slice(i, i + 1 + rng.int(16))); break;
      case 4: b = b.slice(0, i); break;
      case 5: b.splice(i, 0, ...rng.pick(INVALID_UTF8)); break;
      case 6: b = [0xef, 0xbb, 0xbf, ...b]; break;
      default: b.splice(i, 0, ...Array.from(Buffer.from(rng.pick(['"', "{", "}", "[", "]", ",", ":", "\\u0000", "\\ud800", "1e999", "-0", '"v":2,']))));
    }
  }
  return Uint8Array.from(b);
}

/** JSON text with a member duplicated (later value wins in JSON.parse). */
export function duplicateMember(rng: Rng, obj: Record<string, unknown>): string {
  const keys = Object.keys(obj);
  const key = rng.pick(keys);
  const extra = JSON.stringify({ [key]: rng.bool() ? obj[key] : randomValue(rng) }).slice(1, -1);
  const text = JSON.stringify(obj);
  return rng.bool() ? `{${extra},${text.slice(1)}` : `${text.slice(0, -1)},${extra}}`;
}
