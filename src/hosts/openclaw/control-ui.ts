/**
 * The plugin's Control UI surfaces (issue #7):
 *
 * - A "P2P" sidebar tab that needs no Labs flag: a plugin HTTP route (`auth: "gateway"`, so only signed-in operators
 *   see it) serving a server-rendered page (ui/tab-page.ts), advertised by a `surface: "tab"` descriptor. The Control
 *   UI shows it in a sandboxed frame; its links open each peer's conversation through `openclaw-plugin-session-open`.
 * - Gateway methods for the native page (ui/index.ts, behind Settings -> Labs -> Custom plugin UI):
 *   `ipv6-p2p.peers`, `ipv6-p2p.outbox` (operator.read), `ipv6-p2p.addPeer`, `ipv6-p2p.allow`, `ipv6-p2p.block`
 *   (operator.write). Sending goes through the core `send` RPC (so the text is mirrored into the peer's transcript),
 *   not through a method of ours.
 *
 * Registration only: every handler opens the data directory when it runs (node-access.ts), like the slash commands.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomBytes } from "node:crypto";
import type { Node } from "../../core/node.ts";
import type { MessageRow, PeerRow } from "../../core/store.ts";
import { CHANNEL_ID, PLUGIN_ID, pluginConfigFrom, resolveSettings, withPeerSessions, type PluginSettings } from "./config.ts";
import { describeError, withNode } from "./node-access.ts";
import { corePeerRef, peerIdOf } from "./target.ts";
import { renderTabPage, type Reach, type TabPeer, type TabState } from "./ui/tab-page.ts";

export const TAB_PATH = `/plugins/${PLUGIN_ID}/tab`;
export const TAB_ID = "p2p";
export const TAB_REFRESH_SECONDS = 10;
const PING_TIMEOUT_MS = 3_000;
const MAX_PINGS = 32;
const OUTBOX_SCAN = 1_000;
const MAX_PREVIEW_CHARS = 2_000;

type Respond = (ok: boolean, payload?: unknown, error?: { code: string; message: string; details?: unknown }) => void;
type MethodHandler = (opts: { params: Record<string, unknown>; respond: Respond }) => Promise<void> | void;

/** The parts of OpenClawPluginApi used here (structural, so tests can pass a plain object). */
export interface ControlUiApi {
  config?: unknown;
  runtime?: { config?: { current?: () => unknown } };
  registerHttpRoute(params: { path: string; auth: "gateway" | "plugin"; match?: "exact" | "prefix"; handler: (req: IncomingMessage, res: ServerResponse) => Promise<boolean | void> | boolean | void }): void;
  registerGatewayMethod(method: string, handler: MethodHandler, opts?: { scope?: "operator.read" | "operator.write" }): void;
  session: { controls: { registerControlUiDescriptor(d: Record<string, unknown>): void } };
}

/** Resolves the session (and its agent) a peer's messages land in, the way the inbound dispatch does. */
export type SessionResolver = (peerId: string) => { sessionKey: string; agentId: string };

export function fallbackSession(peerId: string, agentId = "main"): { sessionKey: string; agentId: string } {
  return { sessionKey: `agent:${agentId}:${CHANNEL_ID}:direct:${peerId}`, agentId };
}

/** Session keys from OpenClaw's own route resolution (per-channel-peer, as dispatch.ts), else the default agent's. */
export async function sessionResolver(cfg: unknown): Promise<SessionResolver> {
  try {
    const { resolveAgentRoute } = await import("openclaw/plugin-sdk/routing");
    const c = withPeerSessions(cfg ?? {}) as never;
    return (peerId) => {
      try {
        const r = resolveAgentRoute({ cfg: c, channel: CHANNEL_ID, accountId: "default", peer: { kind: "direct", id: peerId }, dmScope: "per-channel-peer" });
        return { sessionKey: r.sessionKey, agentId: r.agentId };
      } catch {
        return fallbackSession(peerId);
      }
    };
  } catch {
    return (peerId) => fallbackSession(peerId);
  }
}

/** Reachability from the newest outbound message to each peer (no network). */
export function reachFromOutbox(rows: MessageRow[]): Map<string, Reach> {
  const out = new Map<string, Reach>();
  for (const m of rows) {
    if (out.has(m.peer)) continue; // rows are newest first
    if (m.state === "delivered" || m.state === "sent") out.set(m.peer, { state: "reached", at: m.deliveredAt ?? m.createdAt });
    else if (m.state === "failed") out.set(m.peer, { state: "refused", at: m.createdAt, detail: m.lastError ?? "refused" });
    else if (m.state === "queued" && m.attempts > 0) out.set(m.peer, { state: "unreachable", at: m.createdAt, detail: `${m.lastError ?? "no answer"}; retrying` });
  }
  return out;
}

function tabPeer(p: PeerRow, resolve: SessionResolver, reach: Reach | undefined, inbox: MessageRow[] | undefined): TabPeer {
  const peerId = peerIdOf(p.address) ?? p.address.replaceAll(":", "-");
  const s = resolve(peerId);
  const last = inbox?.[0];
  return {
    address: p.address,
    peerId,
    alias: p.alias,
    trust: p.trust,
    keyBinding: p.keyBinding,
    firstSeen: p.firstSeen,
    lastSeen: p.lastSeen,
    reach: reach ?? { state: "untried" },
    sessionKey: s.sessionKey,
    agentId: s.agentId,
    ...(last ? { lastInbound: { content: last.content.slice(0, MAX_PREVIEW_CHARS), ts: last.ts } } : {}),
    ...(inbox ? { heldCount: inbox.filter((m) => m.handledAt === null).length } : {}),
  };
}

async function ping(n: Node, address: string): Promise<Reach> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      n.ping(address),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT_MS / 1000} s`)), PING_TIMEOUT_MS);
      }),
    ]);
    return { state: "ping-ok", rttMs: r.rttMs, verified: r.verified };
  } catch (err) {
    return { state: "ping-failed", detail: describeError(err).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Everything the tab shows, read from the data directory (and, with `check`, pings to up to 32 peers). */
export async function gatherTabState(settings: PluginSettings, cfg: unknown, o: { check?: boolean; now?: number; nonce?: string } = {}): Promise<TabState> {
  const base = { selfPath: TAB_PATH, refreshSeconds: TAB_REFRESH_SECONDS, nonce: o.nonce ?? randomBytes(16).toString("base64"), checked: Boolean(o.check) };
  const resolve = await sessionResolver(cfg);
  try {
    return await withNode(settings, async (n) => {
      const st = await n.status();
      const rows = n.peers({ limit: 500 });
      const reach = reachFromOutbox(n.outbox({ limit: OUTBOX_SCAN }));
      if (o.check) {
        const targets = rows.filter((p) => p.trust !== "blocked").slice(0, MAX_PINGS);
        const results = await Promise.all(targets.map((p) => ping(n, p.address)));
        targets.forEach((p, i) => reach.set(p.address, results[i]!));
      }
      const peers = rows.map((p) => tabPeer(p, resolve, reach.get(p.address), p.trust === "pending" ? n.store.listInbox({ peer: p.address, limit: 50 }) : undefined));
      return {
        ...base,
        now: o.now ?? Date.now(),
        address: st.address,
        publicKey: st.publicKey,
        node: st.node,
        yggdrasil: st.yggdrasil,
        counts: st.counts,
        dmPolicy: settings.dmPolicy,
        peers,
      };
    });
  } catch (err) {
    const d = describeError(err);
    return {
      ...base,
      now: o.now ?? Date.now(),
      address: "",
      publicKey: "",
      node: { running: false },
      yggdrasil: { mode: "?", effectiveMode: "?", state: "?" },
      counts: { peers: 0, pending: 0, inbox: 0, queued: 0, failed: 0 },
      dmPolicy: settings.dmPolicy,
      peers: [],
      error: d,
    };
  }
}

/** Response headers for the tab page: no caching, no sniffing, only our own inline style and nonce'd script. */
export function tabHeaders(nonce: string): Record<string, string> {
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'`,
  };
}

// ---- gateway methods (native page) ----

export interface PeerView {
  address: string;
  peerId: string;
  alias: string | null;
  trust: string;
  keyBinding: string | null;
  firstSeen: number;
  lastSeen: number | null;
  reach: Reach;
  sessionKey: string;
  agentId: string;
  heldCount?: number;
  lastInbound?: { content: string; ts: number };
}

export interface OutboxView {
  id: string;
  peer: string;
  peerId: string;
  content: string;
  state: string;
  createdAt: number;
  deliveredAt: number | null;
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
}

function str(params: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = params[key];
  if (v === undefined || v === null || v === "") {
    if (required) throw Object.assign(new Error(`"${key}" is required`), { code: "P2P_ERR_BAD_ARGUMENT" });
    return undefined;
  }
  if (typeof v !== "string" || v.length > 4096) throw Object.assign(new Error(`"${key}" must be a string`), { code: "P2P_ERR_BAD_ARGUMENT" });
  return v;
}

function outboxView(m: MessageRow): OutboxView {
  return {
    id: m.id,
    peer: m.peer,
    peerId: peerIdOf(m.peer) ?? m.peer,
    content: m.content.slice(0, MAX_PREVIEW_CHARS),
    state: m.state,
    createdAt: m.createdAt,
    deliveredAt: m.deliveredAt,
    attempts: m.attempts,
    nextAttemptAt: m.nextAttemptAt,
    lastError: m.lastError,
  };
}

/** The method implementations, keyed by gateway method name (exported for unit tests). */
export function controlUiMethods(settings: () => PluginSettings, cfg: () => unknown): Record<string, { scope: "operator.read" | "operator.write"; run: (params: Record<string, unknown>) => Promise<unknown> }> {
  const peerView = async (n: Node, p: PeerRow, resolve?: SessionResolver): Promise<PeerView> => {
    const r = resolve ?? (await sessionResolver(cfg()));
    return tabPeer(p, r, reachFromOutbox(n.outbox({ limit: OUTBOX_SCAN })).get(p.address), p.trust === "pending" ? n.store.listInbox({ peer: p.address, limit: 50 }) : undefined);
  };
  return {
    [`${PLUGIN_ID}.peers`]: {
      scope: "operator.read",
      run: async () =>
        withNode(settings(), async (n) => {
          const resolve = await sessionResolver(cfg());
          const reach = reachFromOutbox(n.outbox({ limit: OUTBOX_SCAN }));
          const st = n.processInfo();
          const self = n.address;
          return {
            self: { address: self, peerId: peerIdOf(self) ?? self, running: st.running },
            peers: n.peers({ limit: 500 }).map((p) => tabPeer(p, resolve, reach.get(p.address), p.trust === "pending" ? n.store.listInbox({ peer: p.address, limit: 50 }) : undefined)),
          };
        }),
    },
    [`${PLUGIN_ID}.addPeer`]: {
      scope: "operator.write",
      run: async (params) => {
        const address = str(params, "address", true)!;
        const alias = str(params, "alias", false);
        return withNode(settings(), async (n) => peerView(n, n.addPeer(corePeerRef(address), { alias })));
      },
    },
    [`${PLUGIN_ID}.allow`]: {
      scope: "operator.write",
      run: async (params) => withNode(settings(), async (n) => peerView(n, n.allow(corePeerRef(str(params, "peer", true)!)))),
    },
    [`${PLUGIN_ID}.block`]: {
      scope: "operator.write",
      run: async (params) => withNode(settings(), async (n) => peerView(n, n.block(corePeerRef(str(params, "peer", true)!)))),
    },
    [`${PLUGIN_ID}.outbox`]: {
      scope: "operator.read",
      run: async (params) => {
        const peer = str(params, "peer", false);
        const ids = Array.isArray(params.ids) ? params.ids.filter((x): x is string => typeof x === "string").slice(0, 200) : undefined;
        const limit = typeof params.limit === "number" && Number.isInteger(params.limit) ? Math.min(Math.max(params.limit, 1), 500) : 50;
        return withNode(settings(), async (n) => {
          const address = peer === undefined ? undefined : n.resolvePeer(corePeerRef(peer)).address;
          const rows = n.outbox({ limit: OUTBOX_SCAN }).filter((m) => (address === undefined || m.peer === address) && (ids === undefined || ids.includes(m.id)));
          return { messages: rows.slice(0, limit).map(outboxView) };
        });
      },
    },
  };
}

function gatewayError(err: unknown): { code: string; message: string; details: unknown } {
  const d = describeError(err);
  const invalid = d.code === "P2P_ERR_BAD_ARGUMENT" || d.code === "P2P_ERR_PEER_NOT_FOUND" || d.code === "P2P_ERR_ALIAS_TAKEN";
  return { code: invalid ? "INVALID_REQUEST" : "UNAVAILABLE", message: d.hint ? `${d.message} (next step: ${d.hint})` : d.message, details: { p2pCode: d.code } };
}

/** Registers the tab route + descriptor and the gateway methods. Call in full registration mode only. */
export function registerControlUi(api: ControlUiApi, getPluginConfig: () => Record<string, unknown> | undefined): void {
  const cfg = () => api.runtime?.config?.current?.() ?? api.config;
  const settings = () => resolveSettings(pluginConfigFrom(cfg()) ?? getPluginConfig());

  api.registerHttpRoute({
    path: TAB_PATH,
    auth: "gateway",
    match: "exact",
    handler: async (req, res) => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
        res.end("method not allowed\n");
        return true;
      }
      const nonce = randomBytes(16).toString("base64");
      const check = new URL(req.url ?? "/", "http://x").searchParams.get("check") === "1";
      let html: string;
      try {
        html = renderTabPage(await gatherTabState(settings(), cfg(), { check, nonce }));
      } catch (err) {
        // Config errors end up here; the page still renders (escaped) instead of a bare 500.
        const d = describeError(err);
        html = renderTabPage({ now: Date.now(), address: "", publicKey: "", node: { running: false }, yggdrasil: { mode: "?", effectiveMode: "?", state: "?" }, counts: { peers: 0, pending: 0, inbox: 0, queued: 0, failed: 0 }, dmPolicy: "?", peers: [], checked: false, error: d, selfPath: TAB_PATH, refreshSeconds: 0, nonce });
      }
      res.writeHead(200, tabHeaders(nonce));
      res.end(req.method === "HEAD" ? undefined : html);
      return true;
    },
  });

  api.session.controls.registerControlUiDescriptor({
    id: TAB_ID,
    surface: "tab",
    label: "P2P",
    description: "IPv6 P2P: this node's address, Yggdrasil state, peers and pending requests",
    icon: "network",
    group: "control",
    path: TAB_PATH,
    requiredScopes: ["operator.read"],
  });

  for (const [name, m] of Object.entries(controlUiMethods(settings, cfg))) {
    api.registerGatewayMethod(
      name,
      async ({ params, respond }) => {
        try {
          respond(true, await m.run(params ?? {}));
        } catch (err) {
          respond(false, undefined, gatewayError(err));
        }
      },
      { scope: m.scope },
    );
  }
}
