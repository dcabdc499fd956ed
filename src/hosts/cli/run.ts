/**
 * `declaw run`: the node in the foreground, readable logs on stderr, clean shutdown on SIGINT/SIGTERM.
 * `yggdrasil_peers` in `<data_dir>/config.json` is watched and applied at run time, without restarting the daemon
 * (unless --peer was given on the command line, which then wins).
 */
import { unwatchFile, watchFile } from "node:fs";
import { join } from "node:path";
import { CONFIG_FILE, loadConfigFile } from "../../core/config.ts";
import type { Logger } from "../../core/log.ts";
import { stderrLogger } from "../../core/log.ts";
import type { Node } from "../../core/node.ts";
import { configForRun, openNode, type CommandContext, type CommandOutput } from "./commands.ts";

export async function runForeground(ctx: CommandContext): Promise<CommandOutput> {
  const log = stderrLogger({ debug: ctx.flags.verbose === true });
  const node = openNode(ctx, { config: configForRun(ctx), log, host: "declaw" });
  log.info(`data dir ${ctx.dataDir}; identity ${node.identity.address}`);
  // Before start(): Ctrl-C while the daemon is starting must still stop it (the default action would exit at once and
  // leave the daemon behind). A signal during start lets the start settle, then stops what it started.
  const signals = onceStopSignal();
  let signal: string | undefined;
  try {
    const started = node.start().then(() => undefined);
    signal = await Promise.race([started, signals.received]);
    if (signal) {
      log.info(`${signal}: stopping once the start has settled`);
      await started.catch(() => undefined);
    } else {
      log.info(`node running as ${node.address}; press Ctrl-C to stop`);
      const stopWatching = ctx.flags.peer === undefined ? watchPeers(ctx.dataDir, node, log) : () => {};
      signal = await signals.received;
      log.info(`${signal}: stopping`);
      stopWatching();
    }
    await node.stop();
  } finally {
    signals.dispose();
  }
  log.info("stopped");
  return { json: { stopped: true, signal }, text: "" };
}

/** The first SIGINT or SIGTERM; `dispose` removes the handlers (the default action applies again). */
function onceStopSignal(): { received: Promise<string>; dispose: () => void } {
  let handler: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<string>((resolve) => { handler = resolve; });
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return { received, dispose: () => { process.off("SIGINT", handler); process.off("SIGTERM", handler); } };
}

const CONFIG_POLL_MS = 1_000;

function watchPeers(dataDir: string, node: Node, log: Logger): () => void {
  const file = join(dataDir, CONFIG_FILE);
  let current = JSON.stringify(node.config.yggdrasilPeers);
  let applying = Promise.resolve();
  watchFile(file, { interval: CONFIG_POLL_MS }, () => {
    applying = applying.then(async () => {
      let peers: string[];
      try {
        peers = loadConfigFile(dataDir).config.yggdrasilPeers;
      } catch (err) {
        log.warn(`${file} changed but is not valid, keeping the running settings: ${(err as Error).message}`);
        return;
      }
      if (JSON.stringify(peers) === current) return;
      current = JSON.stringify(peers);
      try {
        await node.setYggdrasilPeers(peers);
        log.info(`yggdrasil peers now: ${peers.length ? peers.join(", ") : "none"}`);
      } catch (err) {
        log.warn(`could not apply yggdrasil peers: ${(err as Error).message}`);
      }
    });
  });
  return () => unwatchFile(file);
}
