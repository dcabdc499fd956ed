/**
 * The "IPv6 P2P" channel (`ipv6-p2p`): one declarative channel object. One account ("default") per gateway: the
 * node's identity lives in the data directory, not in channel config. Heavy code (the core, the inbound loop, the
 * SDK's inbound dispatcher) is imported inside the handlers, never at module load.
 */
import { buildChannelOutboundSessionRoute, createChatChannelPlugin } from "openclaw/plugin-sdk/channel-core";
import { CHANNEL_ID, CHANNEL_LABEL, pluginConfigFrom, resolveSettings, withPeerSessions, type PluginSettings } from "./config.ts";
import type { LoopContext } from "./inbound.ts";
import { withNode } from "./node-access.ts";
import { addressOfPeerId, corePeerRef, normalizeTarget, stripPrefix } from "./target.ts";

export const DEFAULT_ACCOUNT_ID = "default";

export interface ResolvedAccount {
  accountId: string;
  enabled: boolean;
  settings: PluginSettings | undefined;
  configError: string | undefined;
}

function channelSection(cfg: unknown): { enabled?: unknown } | undefined {
  return (cfg as { channels?: Record<string, { enabled?: unknown }> } | undefined)?.channels?.[CHANNEL_ID];
}

/** The runtime fields the inbound loop sets (inbound.ts), as OpenClaw's status shows them; lastError included. */
export function accountSnapshot(account: ResolvedAccount, runtime: Record<string, unknown> | undefined): { accountId: string } & Record<string, unknown> {
  const r = runtime ?? {};
  const pick = (keys: string[]) => Object.fromEntries(keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
  return {
    accountId: account.accountId,
    ...pick(["running", "connected", "lifecycle", "stateReason", "lastStartAt", "lastStopAt", "lastConnectedAt", "lastInboundAt", "lastOutboundAt"]),
    ...pick(["identity", "port", "dbPath", "mode", "dmPolicy"]),
    lastError: typeof r.lastError === "string" ? r.lastError : (account.configError ?? null),
  };
}

export function resolveAccount(cfg: unknown, accountId?: string | null): ResolvedAccount {
  let settings: PluginSettings | undefined;
  let configError: string | undefined;
  try {
    settings = resolveSettings(pluginConfigFrom(cfg));
  } catch (err) {
    configError = (err as Error).message;
  }
  return { accountId: accountId ?? DEFAULT_ACCOUNT_ID, enabled: channelSection(cfg)?.enabled !== false, settings, configError };
}

/** Runtime config getter, set by the entry in full mode (`setRuntime`); the gateway context's cfg is the fallback. */
let currentConfig: (() => unknown) | undefined;
export function setCurrentConfigSource(fn: (() => unknown) | undefined): void {
  currentConfig = fn;
}

/**
 * Outbound through the channel: OpenClaw's own `message` tool, announcements, anything that names a target. That
 * context carries no session, so it cannot tell the owner's turn from one a remote agent started; and Node.send adds
 * an address never seen as a trusted peer. So this path only writes to peers the owner already trusts: a remote
 * agent cannot steer ours into contacting (and trusting) strangers. New peers are added by the owner (`openclaw p2p
 * add`, `/p2p-add`, or the p2p_add_peer tool); replies to a peer go through inbound.ts.
 */
async function sendText(ctx: { cfg: unknown; to: string; text: string }): Promise<{ channel: string; messageId: string; meta?: Record<string, unknown> }> {
  const settings = resolveSettings(pluginConfigFrom(ctx.cfg));
  const peer = corePeerRef(ctx.to);
  const r = await withNode(settings, (n) => {
    const row = n.store.resolvePeer(peer);
    if (row?.trust !== "trusted") {
      const next = row ? `allow it first: openclaw p2p allow ${row.address}` : `add it first: openclaw p2p add ${peer}`;
      throw new Error(`${CHANNEL_ID}: ${peer} is not a trusted peer, and this channel only writes to peers the owner trusts; ${next}`);
    }
    return n.send(row.address, ctx.text);
  });
  if (r.state === "failed") throw new Error(`${CHANNEL_ID}: ${r.peer} refused the message: ${r.reason}`);
  return { channel: CHANNEL_ID, messageId: r.id, meta: { state: r.state, peer: r.peer, ...(r.state === "queued" ? { reason: r.reason } : {}) } };
}

export const ipv6P2pChannel = createChatChannelPlugin<ResolvedAccount>({
  base: {
    id: CHANNEL_ID,
    meta: {
      id: CHANNEL_ID,
      label: CHANNEL_LABEL,
      selectionLabel: "IPv6 P2P (Yggdrasil, signed agent-to-agent messages)",
      docsPath: "https://www.npmjs.com/package/declaw",
      docsLabel: "declaw",
      blurb: "Direct signed messages between OpenClaw instances over Yggdrasil; no server in between.",
      markdownCapable: true,
    },
    capabilities: { chatTypes: ["direct"] },
    config: {
      listAccountIds: () => [DEFAULT_ACCOUNT_ID],
      defaultAccountId: () => DEFAULT_ACCOUNT_ID,
      resolveAccount: (cfg, accountId) => resolveAccount(cfg, accountId),
      inspectAccount: (cfg, accountId) => {
        const a = resolveAccount(cfg, accountId);
        return { enabled: a.enabled, configured: a.settings !== undefined, ...(a.configError ? { lastError: a.configError } : {}) };
      },
      isEnabled: (account) => account.enabled,
      isConfigured: (account) => account.settings !== undefined,
      unconfiguredReason: (account) => account.configError ?? "plugin config is invalid",
      describeAccount: (account) => ({
        accountId: account.accountId,
        name: CHANNEL_LABEL,
        enabled: account.enabled,
        configured: account.settings !== undefined,
        ...(account.settings ? { dmPolicy: account.settings.dmPolicy, dbPath: account.settings.dataDir } : {}),
        ...(account.configError ? { lastError: account.configError } : {}),
      }),
    },
    gateway: {
      // Stays pending until the account is stopped (OpenClaw restarts an account whose start returns).
      startAccount: async (ctx) => {
        const { runInboundLoop } = await import("./inbound.ts");
        await runInboundLoop(ctx as unknown as LoopContext, { currentConfig });
      },
    },
    messaging: {
      targetPrefixes: [CHANNEL_ID],
      normalizeTarget: (raw) => normalizeTarget(raw),
      inferTargetChatType: () => "direct",
      targetResolver: {
        looksLikeId: (raw, normalized) => normalizeTarget(normalized ?? raw) !== undefined,
        hint: "a Yggdrasil address (200:...), a peer id (0200-....), or a peer alias",
      },
      formatTargetDisplay: ({ target, display }) => display ?? stripPrefix(target),
      // Messages sent to a peer (message tool, `openclaw message send`) are mirrored into that peer's session, the
      // same one inbound messages use. Aliases need the store to map to a peer id: those fall back to core routing.
      resolveOutboundSessionRoute: ({ cfg, agentId, accountId, target }) => {
        const id = normalizeTarget(target);
        if (!id || !addressOfPeerId(id)) return null;
        return buildChannelOutboundSessionRoute({
          cfg: withPeerSessions(cfg),
          agentId,
          channel: CHANNEL_ID,
          accountId,
          recipientSessionExact: true,
          peer: { kind: "direct", id },
          chatType: "direct",
          from: id,
          to: id,
        });
      },
    },
    status: {
      defaultRuntime: { accountId: DEFAULT_ACCOUNT_ID, running: false, connected: false },
      // Without this hook OpenClaw builds the snapshot from a fixed list of fields that leaves out lastError (seen with
      // openclaw@2026.9.6: `channels status` said lastError null while a failed turn had set it), so a turn the model
      // failed, a refused reply or a broken data dir never showed there.
      buildAccountSnapshot: ({ account, runtime }) => accountSnapshot(account, runtime as Record<string, unknown> | undefined),
    },
  },
  security: {
    dmRouting: {
      // The inbound loop pins one session per peer regardless of session.dmScope (see inbound.ts).
      resolveDmScope: () => "per-channel-peer",
    },
    collectWarnings: ({ account }) =>
      account.settings?.dmPolicy === "open"
        ? [`${CHANNEL_ID}: dm_policy "open" hands messages from any Yggdrasil node to the agent; prefer "allowlist" or "pairing"`]
        : [],
  },
  outbound: {
    deliveryMode: "gateway",
    // Far below the wire's 32 KiB content limit even for 4-byte characters.
    textChunkLimit: 8000,
    resolveTarget: ({ to }) => {
      const t = to === undefined ? undefined : normalizeTarget(to);
      return t ? { ok: true, to: t } : { ok: false, error: new Error(`${CHANNEL_ID}: "${to ?? ""}" is not a peer address, peer id or alias`) };
    },
    sendText: (ctx) => sendText(ctx),
  },
});
