/**
 * Opening the data directory from any part of the plugin (CLI command, slash command, tool, channel loop). Every
 * caller opens its own Node (identity + SQLite store, no sockets) and closes it: OpenClaw runs several module
 * instances per process and CLI commands in their own processes, so nothing is shared through module state; the data
 * directory is the shared state and the core makes concurrent use of it safe.
 *
 * The core is imported lazily: registering the plugin (every `openclaw` CLI call, every agent turn) loads none of it.
 */
import type { Node } from "../../core/node.ts";
import type { Logger } from "../../core/log.ts";
import { nodeConfigFor, PLUGIN_ID, type PluginSettings } from "./config.ts";

export const HOST_NAME = "openclaw";

export async function openNode(s: PluginSettings, log?: Logger): Promise<Node> {
  const [{ Node }, config] = await Promise.all([import("../../core/node.ts"), nodeConfigFor(s)]);
  // The gateway's event loop is OpenClaw's: the peer server commits every message in its commit thread.
  return Node.open({ dataDir: s.dataDir, config, host: HOST_NAME, sharedEventLoop: true, ...(log ? { log } : {}) });
}

export async function withNode<T>(s: PluginSettings, fn: (node: Node) => Promise<T> | T): Promise<T> {
  const node = await openNode(s);
  try {
    return await fn(node);
  } finally {
    node.close();
  }
}

/** The OpenClaw logger shape (`api.logger`) as the core's Logger, lines prefixed with the plugin id. */
export function coreLogger(l: { debug?: (m: string) => void; info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void }): Logger {
  const p = (m: string) => `${PLUGIN_ID}: ${m}`;
  return {
    debug: (m) => l.debug?.(p(m)),
    info: (m) => l.info(p(m)),
    warn: (m) => l.warn(p(m)),
    error: (m) => l.error(p(m)),
  };
}

/** An error as `{code, message, hint}`: P2PError fields when present (checked by code: two module copies may exist). */
export function describeError(err: unknown): { code: string; message: string; hint?: string } {
  const e = err as { code?: unknown; message?: unknown; hint?: unknown } | undefined;
  const code = typeof e?.code === "string" && e.code.startsWith("P2P_ERR_") ? e.code : "P2P_ERR_INTERNAL";
  const message = typeof e?.message === "string" ? e.message : String(err);
  return { code, message, ...(typeof e?.hint === "string" ? { hint: e.hint } : {}) };
}
