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
import { Node } from "../../core/node.ts";
import { configForRun, type CommandContext, type CommandOutput } from "./commands.ts";

export async function runForeground(ctx: CommandContext): Promise<CommandOutput> {
  const log = stderrLogger({ debug: ctx.flags.verbose === true });
  const node = Node.open({ dataDir: ctx.dataDir, config: configForRun(ctx), log, host: "declaw" });
  log.info(`data dir ${ctx.dataDir}; identity ${node.identity.address}`);
  await node.start();
  log.info(`node running as ${node.address}; press Ctrl-C to stop`);
  const stopWatching = ctx.flags.peer === undefined ? watchPeers(ctx.dataDir, node, log) : () => {};
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  log.info(`${signal}: stopping`);
  stopWatching();
  await node.stop();
  log.info("stopped");
  return { json: { stopped: true, signal }, text: "" };
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
