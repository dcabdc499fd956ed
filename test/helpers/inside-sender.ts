/**
 * A sending node in a child process for the fault tests, run inside a namespace. Argument: JSON
 * `{dataDir, peer, port, count, size?}`. Adds `peer`, queues `count` messages straight into the outbox
 * (store.enqueueOutbound), prints `{"queuedAll":count}`, starts the node (its outbox worker delivers them), then
 * prints `{"queued":..,"failed":..}` every 200 ms. Stdin `stop` stops it cleanly (`{"stopped":true}`).
 */
import { createInterface } from "node:readline";
import { Node } from "../../src/core/node.ts";
import { newMessageId } from "../../src/core/wire.ts";

const a = JSON.parse(process.argv[2]!) as { dataDir: string; peer: string; port: number; count: number; size?: number };
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
const node = Node.open({ dataDir: a.dataDir, config: { yggdrasil: "off", peerPort: a.port } });
node.addPeer(a.peer, { port: a.port });
const now = Date.now();
const pad = "m".repeat(a.size ?? 40);
for (let i = 0; i < a.count; i++) {
  node.store.enqueueOutbound({ id: newMessageId(now), peer: a.peer, kind: "chat", content: `#${i} ${pad}`, ts: now, protocol: 2, expiresAt: now + 3_600_000 }, now);
}
out({ queuedAll: a.count });
await node.start();
const timer = setInterval(() => {
  const c = node.store.counts();
  out({ queued: c.queued, failed: c.failed });
}, 200);
createInterface({ input: process.stdin }).on("line", async (l) => {
  if (l.trim() !== "stop") return;
  clearInterval(timer);
  await node.stop();
  out({ stopped: true });
  process.exit(0);
});
