/**
 * Agent tools: p2p_status, p2p_list_peers, p2p_add_peer, p2p_send_message (declared in the manifest's
 * contracts.tools). Each call opens the data directory itself (tools run in per-turn module instances).
 *
 * In a turn started by a remote peer (the session is an ipv6-p2p peer session) the remote agent may be steering our
 * agent, so the tools shrink to what that conversation needs: no adding peers, no listing the operator's contacts,
 * and sending only back to that same peer, counted against the loop budget.
 * In every other session p2p_send_message writes only to peers already trusted, as the channel's outbound does
 * (channel.ts): a turn may have been started by anyone on another channel, and sending to a new address would trust
 * it (Node.send) and let its messages reach the agent. Trust is given explicitly: p2p_add_peer, or the owner's
 * `openclaw p2p add` / `allow`.
 */
import type { Node, SendResult } from "../../core/node.ts";
import { CLI_PREFIX, pluginConfigFrom, resolveSettings, type PluginSettings } from "./config.ts";
import { describeError, withNode } from "./node-access.ts";
import { corePeerRef, peerFromSessionKey } from "./target.ts";

export const TOOL_NAMES = ["p2p_status", "p2p_list_peers", "p2p_add_peer", "p2p_send_message"] as const;

export interface ToolContextLike {
  config?: unknown;
  runtimeConfig?: unknown;
  getRuntimeConfig?: () => unknown;
  sessionKey?: string;
  messageChannel?: string;
}

interface ToolResult {
  content: { type: "text"; text: string }[];
  details: unknown;
}

export interface ToolDef {
  name: string;
  label: string;
  description: string;
  parameters: Record<string, unknown>;
  execute(toolCallId: string, params: Record<string, unknown>): Promise<ToolResult>;
}

function result(text: string, details: unknown): ToolResult {
  return { content: [{ type: "text", text }], details };
}

function errorResult(err: unknown): ToolResult {
  const d = describeError(err);
  return result(`error ${d.code}: ${d.message}${d.hint ? ` (next step: ${d.hint})` : ""}`, { error: d.code, message: d.message, hint: d.hint });
}

function str(params: Record<string, unknown>, key: string, required: true): string;
function str(params: Record<string, unknown>, key: string, required?: false): string | undefined;
function str(params: Record<string, unknown>, key: string, required = false): string | undefined {
  const v = params[key];
  if (v === undefined || v === null || v === "") {
    if (required) throw Object.assign(new Error(`parameter "${key}" is required`), { code: "P2P_ERR_BAD_ARGUMENT" });
    return undefined;
  }
  if (typeof v !== "string") throw Object.assign(new Error(`parameter "${key}" must be a string`), { code: "P2P_ERR_BAD_ARGUMENT" });
  return v;
}

/** The tools for one tool context (`fallbackConfig`: the plugin config seen at registration). */
export function createTools(ctx: ToolContextLike, fallbackConfig?: Record<string, unknown>, deps: { send?: (node: Node, peer: string, text: string) => Promise<SendResult> } = {}): ToolDef[] {
  const sendVia = deps.send ?? ((node: Node, peer: string, text: string) => node.send(peer, text));
  const settings = (): PluginSettings => {
    const cfg = ctx.getRuntimeConfig?.() ?? ctx.runtimeConfig ?? ctx.config;
    return resolveSettings(pluginConfigFrom(cfg) ?? fallbackConfig);
  };
  // The peer whose message started this turn, if any.
  const sessionPeer = peerFromSessionKey(ctx.sessionKey);
  const restricted = sessionPeer !== undefined || ctx.messageChannel === "ipv6-p2p";

  const status: ToolDef = {
    name: "p2p_status",
    label: "P2P status",
    description: "Show this node's IPv6 P2P (Yggdrasil) address, public key, whether the node runs, mesh state, message counts and peers waiting for approval.",
    parameters: { type: "object", properties: {}, additionalProperties: false },
    async execute() {
      try {
        return await withNode(settings(), async (n) => {
          const st = await n.status();
          const view = restricted ? { address: st.address, publicKey: st.publicKey, node: { running: st.node.running } } : st;
          const text = restricted
            ? `address ${st.address}, key ${st.publicKey}, node ${st.node.running ? "running" : "not running"}`
            : await import("../format.ts").then((f) => f.withCommandPrefix(f.formatStatus(st), CLI_PREFIX));
          return result(text, view);
        });
      } catch (err) {
        return errorResult(err);
      }
    },
  };

  const listPeers: ToolDef = {
    name: "p2p_list_peers",
    label: "P2P peers",
    description: "List known IPv6 P2P peers (address, alias, trust: trusted/pending/blocked, key binding, last seen).",
    parameters: {
      type: "object",
      properties: { trust: { type: "string", enum: ["trusted", "pending", "blocked"], description: "only peers with this trust state" } },
      additionalProperties: false,
    },
    async execute(_id, params) {
      try {
        if (restricted) throw Object.assign(new Error("listing peers is not available in a conversation with a remote agent"), { code: "P2P_ERR_BAD_ARGUMENT" });
        const trust = str(params, "trust");
        if (trust !== undefined && !["trusted", "pending", "blocked"].includes(trust)) throw Object.assign(new Error("trust must be trusted, pending or blocked"), { code: "P2P_ERR_BAD_ARGUMENT" });
        return await withNode(settings(), async (n) => {
          const rows = n.peers({ limit: 1000 }).filter((p) => trust === undefined || p.trust === trust);
          return result((await import("../format.ts")).formatPeers(rows), rows);
        });
      } catch (err) {
        return errorResult(err);
      }
    },
  };

  const addPeer: ToolDef = {
    name: "p2p_add_peer",
    label: "Add P2P peer",
    description: "Add (or update) a trusted IPv6 P2P peer by its Yggdrasil address (200::/7), with an optional alias, public key and port. Trusted peers' messages reach this agent.",
    parameters: {
      type: "object",
      properties: {
        address: { type: "string", description: "the peer's Yggdrasil IPv6 address, e.g. 200:1234::1" },
        alias: { type: "string", description: "a short name: an ASCII letter, then up to 31 ASCII letters, digits, _ . -" },
        key: { type: "string", description: "the peer's Ed25519 public key, padded base64 (optional)" },
        port: { type: "integer", minimum: 1, maximum: 65535, description: "the peer's port (default 8099)" },
      },
      required: ["address"],
      additionalProperties: false,
    },
    async execute(_id, params) {
      try {
        if (restricted) throw Object.assign(new Error("adding peers is not available in a conversation with a remote agent; ask your operator"), { code: "P2P_ERR_BAD_ARGUMENT" });
        const port = params.port;
        if (port !== undefined && (typeof port !== "number" || !Number.isInteger(port))) throw Object.assign(new Error("port must be an integer"), { code: "P2P_ERR_BAD_ARGUMENT" });
        return await withNode(settings(), async (n) => {
          const p = n.addPeer(corePeerRef(str(params, "address", true)), { alias: str(params, "alias"), key: str(params, "key"), port: port as number | undefined });
          return result((await import("../format.ts")).formatAddedPeer(p), p);
        });
      } catch (err) {
        return errorResult(err);
      }
    },
  };

  const send: ToolDef = {
    name: "p2p_send_message",
    label: "Send P2P message",
    description:
      "Send a text message to an IPv6 P2P peer (address, alias or peer id). Returns delivered (with the receipt time) or queued (the node keeps retrying). In a conversation with a peer, the peer may be omitted.",
    parameters: {
      type: "object",
      properties: {
        peer: { type: "string", description: "address, alias or peer id; defaults to the peer of the current conversation" },
        text: { type: "string", description: "the message (at most 32 KiB of UTF-8)" },
      },
      required: ["text"],
      additionalProperties: false,
    },
    async execute(_id, params) {
      try {
        const text = str(params, "text", true);
        const given = str(params, "peer");
        const s = settings();
        return await withNode(s, async (n) => {
          let peer = given === undefined ? sessionPeer : corePeerRef(given);
          if (peer === undefined) throw Object.assign(new Error("parameter \"peer\" is required outside a peer conversation"), { code: "P2P_ERR_BAD_ARGUMENT" });
          if (restricted) {
            const target = n.resolvePeer(peer).address;
            if (sessionPeer === undefined || target !== n.resolvePeer(sessionPeer).address) {
              throw Object.assign(new Error("in a conversation with a remote agent, messages can only go back to that agent"), { code: "P2P_ERR_BAD_ARGUMENT" });
            }
            const { LoopBudget } = await import("./policy.ts");
            if (!new LoopBudget(n.store, s.loopBudget, s.loopWindowMs).take(target)) {
              throw Object.assign(new Error(`loop budget for this peer is spent (${s.loopBudget} agent messages per ${s.loopWindowMs / 60_000} min)`), { code: "P2P_ERR_RATE_LIMITED" });
            }
            peer = target;
          } else {
            const row = n.store.resolvePeer(peer);
            if (row?.trust !== "trusted") {
              const next = row
                ? `only the owner can accept it: ${CLI_PREFIX} allow ${row.address}`
                : `add it first with p2p_add_peer, only if your owner asked you to write to this address (or the owner runs: ${CLI_PREFIX} add ${peer})`;
              throw Object.assign(new Error(`${peer} is not a trusted peer, and p2p_send_message writes only to peers the owner trusts`), { code: "P2P_ERR_PEER_NOT_FOUND", hint: next });
            }
            peer = row.address;
          }
          const r = await sendVia(n, peer, text);
          return result((await import("../format.ts")).formatSend(r), r);
        });
      } catch (err) {
        return errorResult(err);
      }
    },
  };

  return [status, listPeers, addPeer, send];
}
