/**
 * Slash commands, handled without the model: /p2p-status, /p2p-peers, /p2p-send. Only the operator's own surfaces
 * run them (`requireAuth`); messages from peers are never interpreted as commands (commandAuthorized false and
 * CommandInterpretationSuppressed in inbound.ts).
 *
 * /p2p-send in a peer's session (`agent:<id>:ipv6-p2p:direct:<peerId>`) takes the peer from the session, so the
 * whole argument is the text; elsewhere the first word is the peer (address, peer id or alias).
 */
import type { Node } from "../../core/node.ts";
import { CLI_PREFIX, pluginConfigFrom, policyLine, resolveSettings } from "./config.ts";
import { describeError, withNode } from "./node-access.ts";
import { corePeerRef, peerFromSessionKey } from "./target.ts";

export interface SlashContext {
  args?: string;
  sessionKey?: string;
  config: unknown;
}

type Reply = { text: string };

function fail(err: unknown): Reply {
  const d = describeError(err);
  return { text: `p2p: ${d.message}${d.hint ? `\nnext step: ${d.hint}` : ""}` };
}

export async function p2pStatus(ctx: SlashContext): Promise<Reply> {
  try {
    const s = resolveSettings(pluginConfigFrom(ctx.config));
    return await withNode(s, async (n) => {
      const [{ formatStatus, withCommandPrefix }, { LoopBudget }] = await Promise.all([import("../format.ts"), import("./policy.ts")]);
      const st = await n.status();
      const spent = new LoopBudget(n.store, s.loopBudget, s.loopWindowMs).all().filter((b) => b.exhausted);
      const extra = [policyLine(s)];
      for (const b of spent) extra.push(`  budget    SPENT for ${b.peer} (${b.used}/${b.limit})`);
      return { text: `${withCommandPrefix(formatStatus(st), CLI_PREFIX)}\n${extra.join("\n")}` };
    });
  } catch (err) {
    return fail(err);
  }
}

export async function p2pPeers(ctx: SlashContext): Promise<Reply> {
  try {
    const s = resolveSettings(pluginConfigFrom(ctx.config));
    return await withNode(s, async (n) => ({ text: (await import("../format.ts")).formatPeers(n.peers({ limit: 200 })) }));
  } catch (err) {
    return fail(err);
  }
}

/** Parses `/p2p-send` arguments: `{peer, text}` or an error text. */
export function parseSendArgs(args: string | undefined, sessionKey: string | undefined): { peer: string; text: string } | { error: string } {
  const a = (args ?? "").trim();
  const sessionPeer = peerFromSessionKey(sessionKey);
  if (sessionPeer) {
    if (a === "") return { error: "usage (in a peer's session): /p2p-send <text>" };
    return { peer: sessionPeer, text: a };
  }
  const m = /^(\S+)\s+([\s\S]+)$/.exec(a);
  if (!m) return { error: "usage: /p2p-send <peer> <text>  (in a peer's session: /p2p-send <text>)" };
  return { peer: corePeerRef(m[1]!), text: m[2]!.trim() };
}

/**
 * In a peer's session `/p2p-send <text>` goes to that peer. Text that starts with a known peer's name is the other
 * form, `/p2p-send <peer> <text>`, typed out of habit: naming the session's own peer just sends the rest to it;
 * naming another peer is refused (or the text, addressed to carol, would go to bob).
 */
export function inSessionTarget(n: Node, sessionPeer: string, text: string): { text: string } | { error: string } {
  const m = /^(\S+)\s+([\s\S]+)$/.exec(text);
  const named = m ? n.store.resolvePeer(corePeerRef(m[1]!)) : undefined;
  if (!m || !named) return { text };
  const own = n.store.resolvePeer(sessionPeer);
  if (named.address === (own?.address ?? sessionPeer)) return { text: m[2]!.trim() };
  const other = named.alias ?? named.address;
  return { error: `p2p: not sent. In ${own?.alias ?? sessionPeer}'s conversation /p2p-send writes to ${own?.alias ?? sessionPeer}, but your text starts with another peer's name (${other}); to write to ${other}, use /p2p-send ${other} <text> in your own chat, or ${other}'s conversation` };
}

export async function p2pSend(ctx: SlashContext): Promise<Reply> {
  const parsed = parseSendArgs(ctx.args, ctx.sessionKey);
  if ("error" in parsed) return { text: parsed.error };
  try {
    const s = resolveSettings(pluginConfigFrom(ctx.config));
    return await withNode(s, async (n) => {
      const sessionPeer = peerFromSessionKey(ctx.sessionKey);
      const target = sessionPeer === undefined ? { text: parsed.text } : inSessionTarget(n, sessionPeer, parsed.text);
      if ("error" in target) return { text: target.error };
      const r = await n.send(parsed.peer, target.text);
      return { text: `p2p: ${(await import("../format.ts")).formatSend(r)}` };
    });
  } catch (err) {
    return fail(err);
  }
}

export const SLASH_COMMANDS = [
  { name: "p2p-status", description: "IPv6 P2P: this node's address, Yggdrasil state and pending peers", acceptsArgs: false, handler: p2pStatus },
  { name: "p2p-peers", description: "IPv6 P2P: list peers and their trust state", acceptsArgs: false, handler: p2pPeers },
  {
    name: "p2p-send",
    description: "IPv6 P2P: send a message to a peer (/p2p-send <peer> <text>; in a peer's session /p2p-send <text>)",
    acceptsArgs: true,
    handler: p2pSend,
  },
] as const;
