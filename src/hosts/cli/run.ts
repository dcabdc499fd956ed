/** `declaw run`: the node in the foreground, readable logs on stderr, clean shutdown on SIGINT/SIGTERM. */
import { stderrLogger } from "../../core/log.ts";
import { Node } from "../../core/node.ts";
import { configForRun, type CommandContext, type CommandOutput } from "./commands.ts";

export async function runForeground(ctx: CommandContext): Promise<CommandOutput> {
  const log = stderrLogger({ debug: ctx.flags.verbose === true });
  const node = Node.open({ dataDir: ctx.dataDir, config: configForRun(ctx), log, host: "declaw" });
  log.info(`data dir ${ctx.dataDir}; identity ${node.identity.address}`);
  await node.start();
  log.info(`node running as ${node.address}; press Ctrl-C to stop`);
  const signal = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
  log.info(`${signal}: stopping`);
  await node.stop();
  log.info("stopped");
  return { json: { stopped: true, signal }, text: "" };
}
