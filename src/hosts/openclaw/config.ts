/**
 * The plugin's configuration: `plugins.entries["ipv6-p2p"].config` in the OpenClaw config. OpenClaw validates it
 * against the manifest's JSON Schema (openclaw.plugin.json) before we see it; we still check every value here, because
 * the same code runs on configs that skipped that step (an old config file, a hand-made test api).
 *
 * Node keys (peer_port, yggdrasil, yggdrasil_peers, ...) are the core's snake_case keys and go through
 * `configFromSnake`; the host keys below are ours. Pure: no I/O beyond reading `<data_dir>/config.json` lazily.
 */
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { NodeConfig } from "../../core/config.ts";

export const PLUGIN_ID = "ipv6-p2p";
export const CHANNEL_ID = "ipv6-p2p";
/** How users type this host's commands (hints written for `declaw` name them without it: format.ts withCommandPrefix). */
export const CLI_PREFIX = "openclaw p2p";
export const CHANNEL_LABEL = "IPv6 P2P";

export type DmPolicy = "allowlist" | "pairing" | "open";

export const DEFAULT_LOOP_BUDGET = 20;
export const DEFAULT_LOOP_WINDOW_MINUTES = 60;

/** What the plugin itself decides (the node's own settings stay in `node`). */
export interface PluginSettings {
  dataDir: string;
  dmPolicy: DmPolicy;
  /** Max agent turns one peer's messages start per window (however the agent answers); 0 = no peer message reaches the agent. */
  loopBudget: number;
  loopWindowMs: number;
  /**
   * The OpenClaw tools a turn started by a peer's message may call (`toolsAllow` of that turn): none by default, so a
   * remote agent cannot make ours run commands, read files or write elsewhere; undefined (`["*"]` in the config): what
   * OpenClaw's own tool policy allows.
   */
  peerTools: string[] | undefined;
  /** The snake_case node keys, as given (validated by the core when a Node is opened). */
  nodeKeys: Record<string, unknown>;
}

const HOST_KEYS = new Set(["data_dir", "dm_policy", "loop_budget", "loop_window_minutes", "peer_tools"]);

export class PluginConfigError extends Error {
  readonly code = "P2P_ERR_CONFIG";
}

export function expandHome(p: string): string {
  if (p === "~") return homedir();
  if (p.startsWith("~/")) return join(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(p);
}

/** The plugin config object from a whole OpenClaw config (`cfg.plugins.entries["ipv6-p2p"].config`). */
export function pluginConfigFrom(cfg: unknown): Record<string, unknown> | undefined {
  const entries = (cfg as { plugins?: { entries?: Record<string, { config?: unknown }> } } | undefined)?.plugins?.entries;
  const c = entries?.[PLUGIN_ID]?.config;
  return c && typeof c === "object" && !Array.isArray(c) ? (c as Record<string, unknown>) : undefined;
}

export function resolveSettings(raw: Record<string, unknown> | undefined): PluginSettings {
  const r = raw ?? {};
  // fromEntries defines own keys: a "__proto__" key reaches configFromSnake (and is refused there as unknown) instead
  // of setting this object's prototype and vanishing.
  const nodeKeys: Record<string, unknown> = Object.fromEntries(Object.entries(r).filter(([k]) => !HOST_KEYS.has(k)));

  const dataDirRaw = r.data_dir;
  if (dataDirRaw !== undefined && (typeof dataDirRaw !== "string" || dataDirRaw.trim() === "")) {
    throw new PluginConfigError(`${PLUGIN_ID}: data_dir must be a non-empty path`);
  }
  // A relative path would resolve against each process's working directory: the gateway and `openclaw p2p` run from
  // elsewhere would each use (and create) another data dir, with another identity.
  if (typeof dataDirRaw === "string" && dataDirRaw !== "~" && !dataDirRaw.startsWith("~/") && !isAbsolute(dataDirRaw)) {
    throw new PluginConfigError(`${PLUGIN_ID}: data_dir must be an absolute path or start with ~/ (got "${dataDirRaw}": relative to which directory would depend on where each OpenClaw process runs)`);
  }
  const dmPolicy = r.dm_policy ?? "allowlist";
  if (dmPolicy !== "allowlist" && dmPolicy !== "pairing" && dmPolicy !== "open") {
    throw new PluginConfigError(`${PLUGIN_ID}: dm_policy must be allowlist, pairing or open`);
  }
  const loopBudget = r.loop_budget ?? DEFAULT_LOOP_BUDGET;
  if (typeof loopBudget !== "number" || !Number.isInteger(loopBudget) || loopBudget < 0 || loopBudget > 100_000) {
    throw new PluginConfigError(`${PLUGIN_ID}: loop_budget must be an integer from 0 to 100000`);
  }
  const windowMin = r.loop_window_minutes ?? DEFAULT_LOOP_WINDOW_MINUTES;
  if (typeof windowMin !== "number" || !Number.isFinite(windowMin) || windowMin < 1 || windowMin > 7 * 24 * 60) {
    throw new PluginConfigError(`${PLUGIN_ID}: loop_window_minutes must be a number from 1 to 10080`);
  }
  const peerTools = r.peer_tools ?? [];
  if (!Array.isArray(peerTools) || peerTools.length > 256 || peerTools.some((t) => typeof t !== "string" || t.trim() === "" || t.length > 256)) {
    throw new PluginConfigError(`${PLUGIN_ID}: peer_tools must be a list of tool names (at most 256), such as ["web_search"], or ["*"] for what OpenClaw's tool policy allows`);
  }
  return {
    dataDir: expandHome(typeof dataDirRaw === "string" ? dataDirRaw : join("~", ".openclaw", "ipv6-p2p")),
    dmPolicy,
    loopBudget,
    loopWindowMs: Math.round(windowMin * 60_000),
    peerTools: peerTools.includes("*") ? undefined : peerTools.map((t: string) => t.trim()),
    nodeKeys,
  };
}

/** The status line of what the plugin lets peers do (`openclaw p2p status`, /p2p-status). */
export function policyLine(s: PluginSettings): string {
  const tools = s.peerTools === undefined ? "what OpenClaw's tool policy allows" : s.peerTools.length === 0 ? "none" : s.peerTools.join(", ");
  return `policy      dm_policy ${s.dmPolicy}; at most ${s.loopBudget} agent turns per peer per ${s.loopWindowMs / 60_000} min; tools in those turns: ${tools}`;
}

/**
 * The OpenClaw config with one DM session per peer (`agent:<id>:ipv6-p2p:direct:<peerId>`), whatever the global
 * `session.dmScope` says: a remote agent must never land in the operator's main session. The bundled a2a channel pins
 * its sessions the same way (dmScope passed to route resolution).
 */
export function withPeerSessions<T>(cfg: T): T {
  const c = (cfg ?? {}) as Record<string, unknown>;
  const session = (c.session ?? {}) as Record<string, unknown>;
  return { ...c, session: { ...session, dmScope: "per-channel-peer" } } as T;
}

/**
 * The NodeConfig for these settings: `<data_dir>/config.json` (shared with the `declaw` CLI) first, the plugin
 * config on top. Imports the core lazily so that registering the plugin loads none of it.
 */
export async function nodeConfigFor(s: PluginSettings): Promise<NodeConfig> {
  const { configFromSnake, loadConfigFile } = await import("../../core/config.ts");
  const { config: fileConfig } = loadConfigFile(s.dataDir);
  return configFromSnake(s.nodeKeys, fileConfig, `plugins.entries["${PLUGIN_ID}"].config`);
}
