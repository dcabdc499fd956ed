/**
 * Queues a storm for test/integration/faults.yggdrasil.test.ts into a data directory whose node is running in
 * another process (`declaw run`): opens it with Node.open (no start: no sockets, no outbox of its own) and calls
 * store.enqueueOutbound `count` times, one transaction each, the way `declaw send` queues a row. The running node's
 * outbox worker picks the rows up (it polls the queue every second) and delivers them.
 * Argument: JSON `{dataDir, peer, count, tag}`. Prints one JSON line `{"ids":[...]}` (in queue order) and exits 0.
 * Message i carries the content `<tag> #i`, so the receiver's inbox can be checked by content as well as by id.
 */
import { Node } from "../../src/core/node.ts";
import { newMessageId } from "../../src/core/wire.ts";

const a = JSON.parse(process.argv[2]!) as { dataDir: string; peer: string; count: number; tag: string };
const node = Node.open({ dataDir: a.dataDir });
const ids: string[] = [];
try {
  const peer = node.resolvePeer(a.peer);
  for (let i = 0; i < a.count; i++) {
    const now = Date.now();
    const row = node.store.enqueueOutbound(
      { id: newMessageId(now), peer: peer.address, kind: "chat", content: `${a.tag} #${i}`, ts: now, protocol: peer.protocol, expiresAt: now + node.config.maxMessageAgeMs },
      now,
    );
    ids.push(row.id);
  }
} finally {
  node.close();
}
process.stdout.write(`${JSON.stringify({ ids })}\n`);
