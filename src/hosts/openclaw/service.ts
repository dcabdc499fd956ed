/**
 * The plugin service: runs the node (peer server, outbox worker, Yggdrasil supervision) for as long as the gateway
 * runs. A node that cannot start (port taken, bad config, data dir unusable) is reported through the service health
 * and retried with backoff; the gateway itself keeps running. Nothing starts at registration: only in start().
 */
import type { Node } from "../../core/node.ts";
import { pluginConfigFrom, PLUGIN_ID, resolveSettings } from "./config.ts";
import { coreLogger, describeError, openNode } from "./node-access.ts";

export const SERVICE_ID = "ipv6-p2p-node";
// Backoff between start attempts after a failure (ms); the last one repeats.
const RETRY_TIERS_MS = [2_000, 5_000, 15_000, 30_000, 60_000];

interface ServiceCtx {
  config: unknown;
  logger: { debug?: (m: string) => void; info: (m: string) => void; warn: (m: string) => void; error: (m: string) => void };
  serviceHealth?: { reportFailure(error: unknown): void; clearFailure(): void };
}

export function createNodeService(fallbackConfig: () => Record<string, unknown> | undefined) {
  let node: Node | undefined;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;
  let attempt = 0;
  let starting: Promise<void> | undefined;
  /** The node whose start() is in flight: stop() stops it, which cuts its start short (Node.stop). */
  let pending: Node | undefined;

  async function tryStart(ctx: ServiceCtx): Promise<void> {
    if (stopped) return;
    const log = ctx.logger;
    let n: Node | undefined;
    try {
      const settings = resolveSettings(pluginConfigFrom(ctx.config) ?? fallbackConfig());
      n = await openNode(settings, coreLogger(log));
      pending = n;
      try {
        await n.start();
      } finally {
        pending = undefined;
      }
      if (stopped) {
        await n.stop();
        return;
      }
      node = n;
      attempt = 0;
      ctx.serviceHealth?.clearFailure();
      log.info(`${PLUGIN_ID}: node running as ${n.address} (data dir ${settings.dataDir}, peer port ${n.config.peerPort})`);
    } catch (err) {
      // Node.start() cleans up after itself on failure; an open()-only node still holds the store.
      try { n?.close(); } catch { /* already closed by stop() */ }
      if (stopped) return; // stopped while starting (the start was cut short): nothing to report or retry
      const d = describeError(err);
      const wait = RETRY_TIERS_MS[Math.min(attempt, RETRY_TIERS_MS.length - 1)]!;
      attempt++;
      log.error(`${PLUGIN_ID}: node did not start: ${d.message}${d.hint ? ` (next step: ${d.hint})` : ""}; retrying in ${wait / 1000} s`);
      ctx.serviceHealth?.reportFailure(err);
      if (!stopped) {
        timer = setTimeout(() => {
          timer = undefined;
          starting = tryStart(ctx);
        }, wait);
        timer.unref();
      }
    }
  }

  return {
    id: SERVICE_ID,
    // Any change of the plugin config restarts the node with the committed config.
    reload: { configPrefixes: [`plugins.entries.${PLUGIN_ID}`] },
    async start(ctx: ServiceCtx): Promise<void> {
      if (!stopped) return;
      stopped = false;
      attempt = 0;
      // Not awaited: starting Yggdrasil can take seconds and must not hold up the gateway's startup.
      starting = tryStart(ctx);
    },
    async stop(ctx: ServiceCtx): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      // A start in flight (Yggdrasil's can take 20 s) is cut short rather than waited out: OpenClaw gives a service
      // being replaced 5 s to stop.
      await pending?.stop();
      await starting?.catch(() => undefined);
      const n = node;
      node = undefined;
      if (n) {
        await n.stop();
        ctx.logger.info(`${PLUGIN_ID}: node stopped`);
      }
    },
  };
}
