/**
 * A declaw Node in a child process, meant to run inside a test namespace (`ns.spawn(process.execPath, [this, json])`).
 * Argument: JSON `{dataDir, config?, logLevel?}` (config is a Partial<NodeConfig>, e.g. `{yggdrasil:"off"}`).
 * Prints one JSON line `{"ready":true,"address":...,"pid":...}` on stdout once the peer server listens, or
 * `{"ready":false,"error":...,"code":...}` and exits 1. Then answers stdin lines:
 *   `stats` -> `{"rss":..,"heapUsed":..,"counts":{..}}`, `stop` -> stops cleanly, prints `{"stopped":true}`, exits 0.
 * SIGTERM stops cleanly too. Logs go to stderr.
 */
import { createInterface } from "node:readline";
import { Node } from "../../src/core/node.ts";
import { stderrLogger } from "../../src/core/log.ts";

const arg = JSON.parse(process.argv[2] ?? "{}") as { dataDir: string; config?: Record<string, unknown>; quiet?: boolean };
const log = arg.quiet ? { debug() {}, info() {}, warn: (m: string) => console.error(`warn: ${m}`), error: (m: string) => console.error(`error: ${m}`) } : stderrLogger();

function out(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

let node: Node;
try {
  node = Node.open({ dataDir: arg.dataDir, config: arg.config as never, log });
  await node.start();
} catch (err) {
  const e = err as { code?: string; message?: string };
  out({ ready: false, code: e.code, error: e.message });
  process.exit(1);
}
out({ ready: true, address: node.address, publicKey: node.identity.publicKeyBase64, pid: process.pid });

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await node.stop();
  out({ stopped: true });
  process.exit(0);
}
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());

createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "stats") {
    const m = process.memoryUsage();
    out({ rss: m.rss, heapUsed: m.heapUsed, counts: node.store.counts() });
  } else if (cmd === "stop") void stop();
});
