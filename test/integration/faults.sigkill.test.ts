/**
 * Fault: the receiver is SIGKILLed in the middle of a 10,000-message storm (two nodes in two namespaces, veth, /7
 * addresses, Yggdrasil off). Checks what docs/protocol.md section 9 step 10 promises:
 *   - at the moment of the kill, every message the sender recorded as delivered (with a receipt that verifies under
 *     the receiver's key and names the message) is in the receiver's inbox;
 *   - after the receiver restarts, the outbox delivers the rest: all 10,000 arrive, none twice, none lost.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { Store } from "../../src/core/store.ts";
import { parseReceipt, verifyReceipt } from "../../src/core/wire.ts";
import { tempDir, trustPeers } from "../helpers/declaw.ts";
import { spawnJson, type JsonChild } from "../helpers/fuzz-proc.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";

const avail = netnsAvailable();
const INSIDE_NODE = fileURLToPath(new URL("../helpers/node-runner.mjs", import.meta.url));
const SENDER = fileURLToPath(new URL("../helpers/inside-sender.ts", import.meta.url));
const COUNT = 10_000;
const KILL_AFTER_DELIVERED = 3_000;

describe("SIGKILL of the receiver during a 10,000-message storm", { skip: avail.ok ? false : avail.reason, timeout: 240_000 }, () => {
  let net: Testnet;
  let A: Namespace;
  let B: Namespace;
  // The sender queues 10,000 rows one transaction each: tmpfs keeps that fast (a process kill loses no page cache).
  const dirA = mkdtempSync("/dev/shm/declaw-faults-a-");
  const dirB = tempDir("faults-b");
  const idA = loadOrCreateIdentity(dirA);
  const idB = loadOrCreateIdentity(dirB.dir);
  const receiverArg = { dataDir: dirB.dir, quiet: true, config: { yggdrasil: "off", peerPort: 8099, rateLimit: { perSecond: 1e6, burst: 1e6 } } };
  let sender: JsonChild;
  let receiver: JsonChild;

  before(() => {
    net = new Testnet();
    A = net.add();
    B = net.add();
    const { aDev, bDev } = net.link(A, B);
    A.addAddress(aDev, `${idA.address}/7`);
    B.addAddress(bDev, `${idB.address}/7`);
  });

  after(async () => {
    await net.destroy();
    rmSync(dirA, { recursive: true, force: true });
    dirB.remove();
  });

  it("nothing acknowledged is lost, nothing is stored twice, and the outbox delivers the rest after a restart", async () => {
    // B knows A: a storm from a stranger would stop at its pending quota (200 messages) by design.
    trustPeers(dirB.dir, [idA.address]);
    receiver = spawnJson(B, INSIDE_NODE, receiverArg);
    await receiver.waitFor((v) => v.ready === true, 30_000, "the receiver to start");
    sender = spawnJson(A, SENDER, { dataDir: dirA, peer: idB.address, port: 8099, count: COUNT });
    await sender.waitFor((v) => v.queuedAll === COUNT, 120_000, "the sender to queue the storm");
    await sender.waitFor((v) => typeof v.queued === "number" && v.queued <= COUNT - KILL_AFTER_DELIVERED, 120_000, `${KILL_AFTER_DELIVERED} deliveries`);

    receiver.child.kill("SIGKILL");
    assert.equal(await receiver.exited, null);

    // The sender's record right after the kill (it keeps running; later outcomes can only be failures to connect).
    const deliveredAtKill = new Map<string, string>();
    const sa = Store.open(dirA);
    try {
      for (const m of sa.listOutbox({ state: "delivered", limit: COUNT * 2 })) deliveredAtKill.set(m.id, m.receipt ?? "");
    } finally {
      sa.close();
    }
    assert.ok(deliveredAtKill.size >= KILL_AFTER_DELIVERED, `only ${deliveredAtKill.size} delivered before the kill`);
    assert.ok(deliveredAtKill.size < COUNT, "the storm was over before the kill: nothing was tested");
    const sb = Store.open(dirB.dir);
    try {
      const inbox = new Set(sb.listInbox({ limit: COUNT * 2 }).map((m) => m.id));
      for (const [id, receiptJson] of deliveredAtKill) {
        const r = parseReceipt(JSON.parse(receiptJson));
        assert.ok(r.ok && verifyReceipt(r.value) && r.value.id === id && r.value.key === idB.publicKeyBase64 && r.value.to === idB.address, `receipt for ${id} does not verify`);
        assert.ok(inbox.has(id), `message ${id} was acknowledged but is not in the receiver's inbox after SIGKILL`);
      }
      console.log(`# killed with ${deliveredAtKill.size} delivered; receiver had ${inbox.size} stored (acknowledged or not)`);
    } finally {
      sb.close();
    }

    receiver = spawnJson(B, INSIDE_NODE, receiverArg);
    await receiver.waitFor((v) => v.ready === true, 30_000, "the receiver to restart");
    await sender.waitFor((v) => v.queued === 0, 120_000, "the outbox to drain");
    sender.send("stop");
    await sender.waitFor((v) => v.stopped === true, 30_000, "the sender to stop");
    receiver.send("stop");
    await receiver.waitFor((v) => v.stopped === true, 30_000, "the receiver to stop");

    const s2 = Store.open(dirA);
    const r2 = Store.open(dirB.dir);
    try {
      const out = s2.listOutbox({ limit: COUNT * 2 });
      assert.equal(out.length, COUNT);
      assert.deepEqual(out.filter((m) => m.state !== "delivered").map((m) => `${m.id} ${m.state} ${m.lastError}`), []);
      const inbox = r2.listInbox({ limit: COUNT * 2 });
      const ids = inbox.map((m) => m.id);
      assert.equal(new Set(ids).size, ids.length, "a message was stored twice");
      assert.equal(ids.length, COUNT, "the receiver does not hold exactly the storm");
      const inSet = new Set(ids);
      for (const m of out) assert.ok(inSet.has(m.id), `delivered ${m.id} missing from the inbox`);
      assert.deepEqual(r2.quickCheck(), []);
    } finally {
      s2.close();
      r2.close();
    }
  });
});
