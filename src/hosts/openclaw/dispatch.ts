/**
 * Hands one peer message to the agent: the same steps as the SDK's `dispatchInboundDirectDm` (route, envelope,
 * inbound context, routed turn), done here for two reasons found against openclaw@2026.9.6:
 *
 * 1. The session must be the peer's own (`agent:<id>:ipv6-p2p:direct:<peerId>`) whatever `session.dmScope` says;
 *    the route is resolved with dmScope "per-channel-peer", as the bundled a2a channel does.
 * 2. Only the agent's final answer may go to the peer. `dispatchInboundDirectDm` normalizes payloads before calling
 *    `deliver` and so drops `isError`/`kind`: a failed turn then delivers "⚠️ Agent couldn't generate a response"
 *    to the remote agent (seen in testing), and two agents would trade such notices. Here `deliver` sees the raw
 *    payload and its kind, and forwards only final, terminal, non-error content.
 *
 * Loaded lazily by the inbound loop (imports the SDK's inbound and reply modules).
 */
import { buildChannelInboundEventContext, dispatchChannelInboundTurn, resolveChannelInboundRouteEnvelope } from "openclaw/plugin-sdk/channel-inbound";
import { createChannelReplyPipeline } from "openclaw/plugin-sdk/channel-reply-pipeline";
import { isReplyPayloadTerminalContent } from "openclaw/plugin-sdk/reply-payload";

export interface PeerReply {
  text?: string;
  mediaUrl?: string;
  mediaUrls?: string[];
}

export interface PeerDispatchParams {
  cfg: unknown;
  channel: string;
  channelLabel: string;
  accountId: string;
  peer: { kind: "direct"; id: string };
  senderId: string;
  senderAddress: string;
  recipientAddress: string;
  conversationLabel: string;
  rawBody: string;
  messageId: string;
  timestamp?: number;
  commandAuthorized: boolean;
  inboundAccessAuthorized?: boolean;
  channelRuntime?: unknown;
  extraContext?: Record<string, unknown>;
  /** The tools the turn may call (OpenClaw's per-turn `toolsAllow`; [] none); undefined: OpenClaw's tool policy alone. */
  toolsAllow?: string[];
  /** Called once per reply that should reach the peer (already filtered). */
  deliver: (reply: PeerReply) => Promise<void>;
  onRecordError: (err: unknown) => void;
  onDispatchError: (err: unknown, info: { kind: string }) => void;
}

/** Whether a reply payload is the agent's answer (not an error notice, reasoning, commentary or status). */
export function isAnswer(payload: Record<string, unknown> | undefined, kind: string | undefined, terminal: (p: never) => boolean = isReplyPayloadTerminalContent as never): boolean {
  if (!payload || typeof payload !== "object") return false;
  if (kind !== undefined && kind !== "final") return false;
  if (payload.isError === true || payload.isReasoning === true || payload.isCommentary === true) return false;
  if (payload.isStatusNotice === true || payload.isFallbackNotice === true || payload.isCompactionNotice === true) return false;
  return terminal(payload as never);
}

/**
 * The text of a turn's final error payload (a model provider down, say), which is never sent to the peer: reported
 * through onDispatchError instead, so the failure shows in the log and the channel status rather than vanishing.
 */
export function turnError(payload: Record<string, unknown> | undefined, kind: string | undefined): string | undefined {
  if (!payload || typeof payload !== "object" || payload.isError !== true || (kind !== undefined && kind !== "final")) return undefined;
  return typeof payload.text === "string" && payload.text.trim() !== "" ? payload.text : "(no text)";
}

export async function dispatchPeerMessage(p: PeerDispatchParams): Promise<{ sessionKey: string }> {
  const cfg = p.cfg as never;
  const { route, buildEnvelope } = resolveChannelInboundRouteEnvelope({
    cfg,
    channel: p.channel,
    accountId: p.accountId,
    peer: p.peer,
    dmScope: "per-channel-peer",
  });
  const body = buildEnvelope({ channel: p.channelLabel, from: p.conversationLabel, body: p.rawBody, timestamp: p.timestamp });
  const injected = (p.channelRuntime as { inbound?: { buildContext?: unknown } } | undefined)?.inbound?.buildContext;
  const build = (typeof injected === "function" ? injected : buildChannelInboundEventContext) as (x: Record<string, unknown>) => unknown;
  const accountId = route.accountId ?? p.accountId;
  const ctxPayload = await build({
    channel: p.channel,
    accountId,
    messageId: p.messageId,
    messageIdFull: p.messageId,
    timestamp: p.timestamp,
    from: p.senderAddress,
    sender: { id: p.senderId, name: p.conversationLabel },
    conversation: { kind: "direct", id: p.peer.id, routePeer: p.peer, label: p.conversationLabel },
    route: { agentId: route.agentId, accountId: route.accountId, routeSessionKey: route.sessionKey, dispatchSessionKey: route.sessionKey },
    reply: { to: p.recipientAddress, originatingTo: p.senderAddress },
    message: { body, bodyForAgent: p.rawBody, rawBody: p.rawBody, commandBody: p.rawBody },
    access: { commands: { authorized: p.commandAuthorized === true } },
    extra: {
      NativeDirectUserId: p.peer.id,
      OriginatingChannel: p.channel,
      ...(p.inboundAccessAuthorized === true ? { InboundAccessAuthorized: true, ConversationRouteContextObserved: true } : {}),
      ...p.extraContext,
    },
  });
  const { onModelSelected, ...replyPipeline } = createChannelReplyPipeline({ cfg, agentId: route.agentId, channel: p.channel, accountId });
  await dispatchChannelInboundTurn({
    cfg,
    channel: p.channel,
    accountId,
    route: { agentId: route.agentId, sessionKey: route.sessionKey },
    ctxPayload: ctxPayload as never,
    record: { onRecordError: p.onRecordError },
    delivery: {
      deliver: async (payload: unknown, info?: { kind?: string }) => {
        const pl = payload as Record<string, unknown>;
        const failed = turnError(pl, info?.kind);
        if (failed !== undefined) p.onDispatchError(new Error(`the agent's turn ended in an error, not sent to the peer: ${failed.slice(0, 300)}`), { kind: info?.kind ?? "final" });
        if (!isAnswer(pl, info?.kind)) return;
        await p.deliver({
          text: typeof pl.text === "string" ? pl.text : undefined,
          mediaUrl: typeof pl.mediaUrl === "string" ? pl.mediaUrl : undefined,
          mediaUrls: Array.isArray(pl.mediaUrls) ? (pl.mediaUrls as unknown[]).filter((u): u is string => typeof u === "string") : undefined,
        });
      },
      onError: p.onDispatchError as never,
    },
    replyPipeline,
    replyOptions: { onModelSelected, ...(p.toolsAllow ? { toolsAllow: [...p.toolsAllow] } : {}) },
  } as never);
  return { sessionKey: route.sessionKey };
}
