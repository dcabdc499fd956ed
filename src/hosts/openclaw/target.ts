/**
 * Peer names as OpenClaw sees them. OpenClaw session keys cannot hold `::` (an empty colon-delimited segment), so
 * sessions and channel targets use the colon-free peer id from `peerIdFromAddress` (eight 4-digit groups joined by
 * `-`); sending maps it back to the address. A target may be written as an address, a peer id, or an alias, each
 * optionally prefixed `ipv6-p2p:`. Pure: aliases are resolved against the store later, by the core.
 */
import { isYggdrasilAddress, parseIPv6, peerIdFromAddress } from "../../core/address.ts";
// Reading a peer reference is shared with the declaw CLI (peer-ref.ts); the channel's own prefix is one of its prefixes.
import { addressOfPeerId, peerRef, stripPrefix } from "../peer-ref.ts";
import { CHANNEL_ID } from "./config.ts";
// The same alias shape the core accepts (looked up case-insensitively).
import { ALIAS_RE } from "../../core/text.ts";


export { addressOfPeerId, peerRef as corePeerRef, stripPrefix };

/** Peer id for an address text, or undefined when the text is not a 200::/7 address. */
export function peerIdOf(address: string): string | undefined {
  const b = parseIPv6(address);
  return b && isYggdrasilAddress(b) ? peerIdFromAddress(b) : undefined;
}

/**
 * Canonical channel target: the peer id for an address or peer id, the alias as written for an alias. Undefined for
 * anything else (so OpenClaw reports a bad target instead of us guessing).
 */
export function normalizeTarget(raw: string): string | undefined {
  if (typeof raw !== "string") return undefined;
  const s = stripPrefix(raw).replace(/^\[(.*)\]$/, "$1");
  if (s === "") return undefined;
  const fromId = addressOfPeerId(s);
  if (fromId) return peerIdOf(fromId);
  if (s.includes(":")) return peerIdOf(s);
  return ALIAS_RE.test(s) ? s : undefined;
}

export function looksLikePeer(raw: string): boolean {
  return normalizeTarget(raw) !== undefined;
}

/**
 * The peer a session belongs to, from a session key such as `agent:main:ipv6-p2p:direct:<peerId>` (any agent, any
 * account segment, an optional `:thread:...` tail). Undefined for sessions of other channels.
 */
export function peerFromSessionKey(sessionKey: string | undefined): string | undefined {
  if (!sessionKey) return undefined;
  const parts = sessionKey.toLowerCase().split(":");
  const ch = parts.indexOf(CHANNEL_ID);
  if (ch < 0) return undefined;
  const direct = parts.indexOf("direct", ch + 1);
  if (direct < 0) return undefined;
  const id = parts[direct + 1];
  return id ? addressOfPeerId(id) : undefined;
}
