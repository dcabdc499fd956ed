/**
 * Yggdrasil address derivation (yggdrasil-go `src/address/address.go`, identical in 0.4 and 0.5) and the IPv6 text
 * forms we use. Pure: no I/O.
 *
 * Algorithm (docs/protocol.md, "Addresses"): invert every byte of the 32-byte Ed25519 public key; count the leading
 * 1-bits of the inverted key (`ones`); skip the 0-bit that ends the run; pack all following bits MSB-first.
 * address = 0x02, ones (mod 256), first 14 packed bytes. Subnet = first 8 bytes of the address with byte 0 |= 0x01.
 */

export const ADDRESS_BYTES = 16;
export const PUBLIC_KEY_BYTES = 32;

export function deriveAddress(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_BYTES) throw new RangeError(`public key must be ${PUBLIC_KEY_BYTES} bytes`);
  const inv = publicKey.map((b) => ~b & 0xff);
  const out = new Uint8Array(ADDRESS_BYTES);
  out[0] = 0x02;
  let ones = 0;
  let done = false; // the run of leading ones (and the 0-bit ending it) is behind us
  let bits = 0;
  let nbits = 0;
  let o = 2;
  for (let idx = 0; idx < 8 * PUBLIC_KEY_BYTES && o < ADDRESS_BYTES; idx++) {
    const bit = (inv[idx >> 3]! >> (7 - (idx & 7))) & 1;
    if (!done && bit === 1) {
      ones++;
      continue;
    }
    if (!done) {
      done = true; // this is the 0-bit that ends the run: skipped
      continue;
    }
    bits = (bits << 1) | bit;
    nbits++;
    if (nbits === 8) {
      out[o++] = bits;
      bits = 0;
      nbits = 0;
    }
  }
  out[1] = ones & 0xff;
  return out;
}

/** The /64 subnet prefix routed to this key (returned as 16 bytes, the host half zero). */
export function deriveSubnet(publicKey: Uint8Array): Uint8Array {
  const addr = deriveAddress(publicKey);
  const out = new Uint8Array(ADDRESS_BYTES);
  out.set(addr.subarray(0, 8));
  out[0]! |= 0x01;
  return out;
}

/** 200::/7: node addresses (200::/8) and routed subnets (300::/8). */
export function isYggdrasilAddress(addr: Uint8Array): boolean {
  return addr.length === ADDRESS_BYTES && (addr[0]! & 0xfe) === 0x02;
}

/**
 * Whether `publicKey` is bound to `addr` by construction: a 200::/8 address must equal the derived address (the
 * 112 bits Yggdrasil carries), a 300::/8 address must lie in the derived /64.
 */
export function keyMatchesAddress(publicKey: Uint8Array, addr: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES || addr.length !== ADDRESS_BYTES) return false;
  if (addr[0] === 0x02) return bytesEqual(deriveAddress(publicKey), addr);
  if (addr[0] === 0x03) return bytesEqual(deriveSubnet(publicKey).subarray(0, 8), addr.subarray(0, 8));
  return false;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Parses IPv6 text (full, compressed, or with an embedded dotted IPv4 tail) into 16 bytes. Accepts an optional
 * surrounding `[...]` and an IPv4-mapped prefix as Node reports it for dual-stack sockets. Zone ids are refused.
 * Returns undefined for anything else; never throws.
 */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || text.length === 0 || text.length > 47) return undefined;
  let s = text;
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const words: number[] = [];
  let tailWords: number[] = [];
  const dbl = s.indexOf("::");
  if (dbl !== s.lastIndexOf("::") && dbl !== -1) return undefined;
  const parsePart = (part: string, allowV4Tail: boolean): number[] | undefined => {
    if (part === "") return [];
    const groups = part.split(":");
    const res: number[] = [];
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!;
      if (allowV4Tail && i === groups.length - 1 && g.includes(".")) {
        const oct = g.split(".");
        if (oct.length !== 4) return undefined;
        const n = oct.map((x) => (/^(0|[1-9][0-9]{0,2})$/.test(x) ? Number(x) : 256));
        if (n.some((x) => x > 255)) return undefined;
        res.push((n[0]! << 8) | n[1]!, (n[2]! << 8) | n[3]!);
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      res.push(parseInt(g, 16));
    }
    return res;
  };
  if (dbl === -1) {
    const all = parsePart(s, true);
    if (!all || all.length !== 8) return undefined;
    words.push(...all);
  } else {
    const head = parsePart(s.slice(0, dbl), false);
    const tail = parsePart(s.slice(dbl + 2), true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    words.push(...head);
    tailWords = tail;
    while (words.length + tailWords.length < 8) words.push(0);
    words.push(...tailWords);
  }
  const out = new Uint8Array(ADDRESS_BYTES);
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i]! >> 8;
    out[2 * i + 1] = words[i]! & 0xff;
  }
  return out;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2) of zero groups compressed, first on a tie. */
export function formatIPv6(addr: Uint8Array): string {
  if (addr.length !== ADDRESS_BYTES) throw new RangeError("IPv6 address must be 16 bytes");
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((addr[2 * i]! << 8) | addr[2 * i + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Canonical (RFC 5952) form of an address text, or undefined when it is not IPv6. */
export function canonicalAddress(text: string): string | undefined {
  const b = parseIPv6(text);
  return b ? formatIPv6(b) : undefined;
}

/**
 * A colon-free id for a peer address: the eight groups written in full, joined by `-` (e.g.
 * `0200-0000-...-0001`). OpenClaw session keys cannot hold `::` (an empty segment), so hosts route sessions by this
 * id and map back with `addressFromPeerId`.
 */
export function peerIdFromAddress(addr: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < 8; i++) parts.push(((addr[2 * i]! << 8) | addr[2 * i + 1]!).toString(16).padStart(4, "0"));
  return parts.join("-");
}

export function addressFromPeerId(id: string): Uint8Array | undefined {
  if (!/^[0-9a-f]{4}(-[0-9a-f]{4}){7}$/.test(id)) return undefined;
  return parseIPv6(id.replaceAll("-", ":"));
}
