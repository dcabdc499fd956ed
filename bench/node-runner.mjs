/**
 * The node under benchmark, as users run it: the compiled `dist/` (plain JS; no TypeScript loader in the process,
 * which alone costs ~40 MB of RSS). Same protocol as test/helpers/inside-node.ts: argument JSON
 * `{dataDir, config?, quiet?}`; prints `{"ready":true,...}` once listening; stdin `stats` -> memory and counts,
 * `stop` -> clean stop. `npm run bench` builds dist/ first.
 */
import { createInterface } from "node:readline";
import { Node } from "../dist/core/node.js";
import { stderrLogger } from "../dist/core/log.js";

const arg = JSON.parse(process.argv[2] ?? "{}");
const log = arg.quiet ? { debug() {}, info() {}, warn: (m) => console.error(`warn: ${m}`), error: (m) => console.error(`error: ${m}`) } : stderrLogger();
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

let node;
try {
  node = Node.open({ dataDir: arg.dataDir, config: arg.config, log });
  await node.start();
} catch (err) {
  out({ ready: false, code: err?.code, error: err?.message });
  process.exit(1);
}
out({ ready: true, address: node.address, publicKey: node.identity.publicKeyBase64, pid: process.pid });

let stopping = false;
async function stop() {
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
