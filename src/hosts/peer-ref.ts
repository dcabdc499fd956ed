/**
 * How both hosts read a peer named by a person or an agent: a 200::/7 address (any valid text, optionally in
 * brackets), the colon-free peer id that OpenClaw session keys and channel targets use (`peerIdFromAddress`: eight
 * 4-digit groups joined by `-`), or an alias; each optionally prefixed as an OpenClaw channel target (`ipv6-p2p:`,
 * the plugin's channel id, or `p2p:` / `ipv6:`). Pure: aliases are resolved against the store later, by the core.
 */
import { addressFromPeerId, canonicalAddress, formatIPv6 } from "../core/address.ts";

const PREFIXES = ["ipv6-p2p:", "p2p:", "ipv6:"];

export function stripPrefix(raw: string): string {
  let s = raw.trim();
  for (;;) {
    const p = PREFIXES.find((x) => s.toLowerCase().startsWith(x));
    if (!p) return s;
    s = s.slice(p.length).trim();
  }
}

/** Address text for a peer id, or undefined. */
export function addressOfPeerId(id: string): string | undefined {
  const b = addressFromPeerId(id.toLowerCase());
  return b ? formatIPv6(b) : undefined;
}

/** What to hand to the core (`Node.send`, `resolvePeer`): the canonical address for an address or peer id, else the alias. */
export function peerRef(raw: string): string {
  const s = stripPrefix(raw).replace(/^\[(.*)\]$/, "$1");
  return addressOfPeerId(s) ?? canonicalAddress(s) ?? s;
}
