/**
 * Fault: the Yggdrasil daemons killed mid-storm; recovery without loss. Two namespaces joined by a veth pair, each
 * running `declaw run --yggdrasil spawn` with its own daemon (B listens, A peers with B's link address). A storm of
 * STORM messages is queued into A's data directory (helpers/faults-ygg-enqueue.ts, the way `declaw send` queues a
 * row) and A's running outbox delivers them to B over the mesh. While they are in flight, A's daemon is SIGKILLed
 * and, a moment later, B's. Checked:
 *   - each supervisor restarts its daemon (a new pid, the same key-derived address on the TUN) and the two meet again;
 *   - A's outbox drains without help: every one of the STORM ids ends "delivered" with a receipt that verifies under
 *     B's key and names that message; nothing failed, nothing stays queued;
 *   - B's inbox holds each message exactly once (none missing, none twice, content intact).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { Store } from "../../src/core/store.ts";
import { parseReceipt, verifyReceipt } from "../../src/core/wire.ts";
import { cli, tempDir, waitFor, type RunningNode } from "../helpers/declaw.ts";
import { startRun, tunAddress, yggdrasilPidsIn } from "../helpers/mesh-net.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";
import { YGGDRASIL_BINARY } from "../helpers/ygg-cli.ts";

const avail = netnsAvailable();
const skip: string | false = !avail.ok
  ? avail.reason
  : !YGGDRASIL_BINARY
    ? "the yggdrasil binary is not installed (sudo apt install yggdrasil); this fault test kills real daemons"
    : false;

const ENQUEUE = fileURLToPath(new URL("../helpers/faults-ygg-enqueue.ts", import.meta.url));
const YGG_PORT = 12345;
const STORM = 2_000;
/** A's daemon is killed once this many messages are delivered (the rest are queued or in flight). */
const KILL_AT_DELIVERED = 300;
/** B's daemon is killed this long after A's: A's supervisor restarts within 0.4-0.6 s, so it comes back to no hub. */
const B_KILL_DELAY_MS = 250;
const TAG = "ygg-storm";

interface MeshPeer { address: string; up: boolean }
const upPeers = (status: any): string[] => ((status?.yggdrasil?.peers ?? []) as MeshPeer[]).filter((p) => p.up).map((p) => p.address).sort();

function statusWhen(ns: Namespace, dir: string, what: string, pred: (s: any) => boolean, timeoutMs = 60_000): Promise<any> {
  return waitFor(what, async () => {
    const r = await cli(ns, dir, ["status"]);
    return r.code === 0 && pred(r.json) ? r.json : undefined;
  }, timeoutMs, 500);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the Yggdrasil daemons SIGKILLed mid-storm: recovery without loss", { skip, timeout: 300_000 }, () => {
  let net: Testnet;
  let A: Namespace;
  let B: Namespace;
  const dirA = tempDir("fygg-a");
  const dirB = tempDir("fygg-b");
  const idA = loadOrCreateIdentity(dirA.dir);
  const idB = loadOrCreateIdentity(dirB.dir);
  const nodes: { A?: RunningNode; B?: RunningNode } = {};
  const before0 = { A: 0, B: 0 };

  before(async () => {
    net = new Testnet();
    A = net.add();
    B = net.add();
    const l = net.link(A, B);
    A.addAddress(l.aDev, "fd00:fa::1/64");
    B.addAddress(l.bDev, "fd00:fa::2/64");
    // The storm is the point, not B's flood protection (50/s, bursts of 200): lift it, as faults.sigkill does.
    writeFileSync(join(dirB.dir, "config.json"), JSON.stringify({ rate_limit_per_second: 100_000, rate_limit_burst: 100_000 }));
    // B (the listener) first: Yggdrasil 0.4 re-dials a static peer it could not reach only once a minute.
    nodes.B = await startRun(B, dirB.dir, ["--yggdrasil", "spawn", "--listen", `tcp://[::]:${YGG_PORT}`]);
    nodes.A = await startRun(A, dirA.dir, ["--yggdrasil", "spawn", "--peer", `tcp://[fd00:fa::2]:${YGG_PORT}`]);
  });

  after(async () => {
    await Promise.all([nodes.A, nodes.B].map((n) => n?.stop().catch(() => undefined)));
    await net?.destroy();
    dirA.remove();
    dirB.remove();
  });

  it("the mesh is up: both daemons run, see each other, and A reaches B", async () => {
    const sA = await statusWhen(A, dirA.dir, "A's mesh peer B", (j) => upPeers(j).join() === idB.address && yggdrasilPidsIn(A).includes(j.yggdrasil.pid));
    const sB = await statusWhen(B, dirB.dir, "B's mesh peer A", (j) => upPeers(j).join() === idA.address && yggdrasilPidsIn(B).includes(j.yggdrasil.pid));
    for (const [name, s, id, ns] of [["A", sA, idA, A], ["B", sB, idB, B]] as const) {
      assert.equal(s.yggdrasil.state, "running", `${name}: ${JSON.stringify(s.yggdrasil)}`);
      assert.equal(s.yggdrasil.effectiveMode, "spawn");
      assert.equal(s.yggdrasil.address, id.address);
      assert.equal(tunAddress(ns)?.address, id.address, `${name}: the TUN carries the derived address`);
    }
    before0.A = sA.yggdrasil.pid;
    before0.B = sB.yggdrasil.pid;
    const add = await cli(A, dirA.dir, ["add", idB.address, "--alias", "bob"]);
    assert.equal(add.code, 0, add.stderr);
    // B knows A too: a storm from a stranger would stop at its pending quota (200 messages) by design.
    const back = await cli(B, dirB.dir, ["add", idA.address, "--alias", "alice"]);
    assert.equal(back.code, 0, back.stderr);
    const first = await waitFor("a first message A -> B delivered", async () => {
      const r = await cli(A, dirA.dir, ["send", "bob", "before the storm"], { timeoutMs: 30_000 });
      return r.json?.state === "delivered" ? r.json : undefined;
    }, 60_000, 1000);
    assert.equal(first.receipt.key, idB.publicKeyBase64);
  });

  it(`${STORM} messages in flight, both daemons SIGKILLed: every one delivered once, with a receipt, none failed`, async () => {
    assert.ok(before0.A && before0.B, "the mesh test ran first and recorded the daemons' pids");
    const started = Date.now();
    const storeA = Store.open(dirA.dir);
    let stormIds: string[] = [];
    try {
      const preDelivered = new Set(storeA.listOutbox({ state: "delivered", limit: 100 }).map((m) => m.id));
      const deliveredNow = () => storeA.listOutbox({ state: "delivered", limit: STORM + 100 }).filter((m) => !preDelivered.has(m.id)).length;

      // Queue the storm (A's running node delivers it as it is queued), and kill the daemons while it is in flight.
      const enqueue = A.run(process.execPath, [ENQUEUE, JSON.stringify({ dataDir: dirA.dir, peer: "bob", count: STORM, tag: TAG })], { timeoutMs: 120_000 });
      const atKill: number = await waitFor(`${KILL_AT_DELIVERED} storm messages delivered`, (): number => {
        const n = deliveredNow();
        return n >= KILL_AT_DELIVERED ? n : 0;
      }, 90_000, 20);
      process.kill(before0.A, "SIGKILL");
      const killedAt = Date.now();
      await sleep(B_KILL_DELAY_MS);
      process.kill(before0.B, "SIGKILL");
      console.log(`# A's daemon killed ${killedAt - started} ms into the storm with ${atKill} delivered; B's ${B_KILL_DELAY_MS} ms later`);
      assert.ok(atKill < STORM, "the storm was over before the kill: nothing was tested");

      const q = await enqueue;
      assert.equal(q.code, 0, q.stderr);
      stormIds = (JSON.parse(q.stdout) as { ids: string[] }).ids;
      assert.equal(stormIds.length, STORM);
      assert.equal(new Set(stormIds).size, STORM, "the storm ids are distinct");

      // Both supervisors restart their daemon. Whatever is still undelivered then crosses the restarted mesh.
      const newPid = {
        A: await waitFor("a new yggdrasil daemon in A", () => yggdrasilPidsIn(A).find((p) => p !== before0.A), 30_000, 100),
        B: await waitFor("a new yggdrasil daemon in B", () => yggdrasilPidsIn(B).find((p) => p !== before0.B), 30_000, 100),
      };
      const leftAtRestart = STORM - deliveredNow();
      console.log(`# both daemons back ${Date.now() - killedAt} ms after the kill; ${leftAtRestart} messages still undelivered`);
      assert.ok(leftAtRestart > 0, "the storm was delivered before the daemons came back: the restarted mesh carried nothing");

      // A's outbox drains without any help from the test.
      let last = "";
      try {
        await waitFor("A's outbox to deliver the whole storm", () => {
          const c = storeA.counts();
          const n = deliveredNow();
          last = `delivered ${n}/${STORM}, queued ${c.queued}, failed ${c.failed}`;
          return n === STORM;
        }, 180_000, 500);
      } catch (err) {
        const stuck = storeA.listOutbox({ limit: STORM + 100 }).filter((m) => m.state !== "delivered").slice(0, 10);
        throw new Error(`${(err as Error).message}\n${last}\nsome undelivered rows: ${JSON.stringify(stuck.map((m) => ({ id: m.id, state: m.state, attempts: m.attempts, next: m.nextAttemptAt, lastError: m.lastError })))}\nA's log:\n${nodes.A!.log().slice(-4000)}\nB's log:\n${nodes.B!.log().slice(-2000)}`);
      }
      const drainedAt = Date.now();
      console.log(`# storm drained ${drainedAt - killedAt} ms after the kill (${drainedAt - started} ms in all)`);

      // A's outbox: every storm id delivered, with a receipt from B that verifies and names it; nothing failed.
      const out = new Map(storeA.listOutbox({ limit: STORM + 100 }).map((m) => [m.id, m]));
      const retryReasons = new Map<string, number>();
      for (const [i, id] of stormIds.entries()) {
        const m = out.get(id);
        assert.ok(m, `storm message ${id} is missing from A's outbox`);
        assert.equal(m.state, "delivered", `${id}: ${m.state} (${m.lastError})`);
        assert.equal(m.content, `${TAG} #${i}`);
        assert.ok(m.receipt, `${id} delivered without a receipt`);
        const r = parseReceipt(JSON.parse(m.receipt));
        assert.ok(r.ok, `${id}: receipt does not parse`);
        assert.ok(verifyReceipt(r.value), `${id}: receipt signature does not verify`);
        assert.equal(r.value.id, id);
        assert.equal(r.value.from, idA.address);
        assert.equal(r.value.to, idB.address);
        assert.equal(r.value.key, idB.publicKeyBase64);
        if (m.attempts > 0) {
          const why = (m.lastError ?? "?").replace(/^[0-9a-f:]+ port \d+: /, "");
          retryReasons.set(why, (retryReasons.get(why) ?? 0) + 1);
        }
      }
      const c = storeA.counts();
      assert.equal(c.failed, 0, "no message failed");
      assert.equal(c.queued, 0, "nothing left queued");
      // Often only a few: TCP connections over the TUN survive a daemon restart (same address), so requests in
      // flight mostly complete once the mesh is back; the rest of the queue waits in the outbox meanwhile.
      console.log(`# storm messages that needed more than one attempt: ${JSON.stringify(Object.fromEntries(retryReasons))}`);

      // B's inbox: each storm message exactly once, content intact.
      const storeB = Store.open(dirB.dir);
      try {
        const inbox = storeB.listInbox({ limit: STORM * 2 }).filter((m) => m.peer === idA.address && m.content.startsWith(TAG));
        const seen = new Map<string, number>();
        for (const m of inbox) seen.set(m.id, (seen.get(m.id) ?? 0) + 1);
        assert.deepEqual([...seen].filter(([, n]) => n > 1), [], "messages stored twice by B");
        assert.deepEqual(stormIds.filter((id) => !seen.has(id)), [], "messages missing from B's inbox");
        assert.equal(inbox.length, STORM, "B holds exactly the storm");
        const byId = new Map(inbox.map((m) => [m.id, m.content]));
        for (const [i, id] of stormIds.entries()) assert.equal(byId.get(id), `${TAG} #${i}`);
        assert.deepEqual(storeB.quickCheck(), []);
      } finally {
        storeB.close();
      }

      // Both daemons came back: new pids, the same addresses, and the mesh link between them.
      for (const [name, ns, dir, id, peer, node] of [["A", A, dirA.dir, idA, idB, nodes.A!], ["B", B, dirB.dir, idB, idA, nodes.B!]] as const) {
        const old = before0[name];
        const s = await statusWhen(ns, dir, `${name}'s status: the restarted daemon, linked to ${name === "A" ? "B" : "A"}`,
          (j) => j.yggdrasil.pid === newPid[name] && upPeers(j).join() === peer.address);
        assert.notEqual(s.yggdrasil.pid, old);
        assert.ok(yggdrasilPidsIn(ns).includes(s.yggdrasil.pid), `${name}: status pid ${s.yggdrasil.pid} runs in the namespace`);
        assert.equal(s.yggdrasil.state, "running");
        assert.equal(s.yggdrasil.address, id.address, `${name}: same address after the restart`);
        assert.equal(s.address, id.address);
        assert.equal(tunAddress(ns)?.address, id.address, `${name}: the TUN carries the same address`);
        assert.equal(s.counts.failed, 0);
        assert.match(node.log(), new RegExp(`daemon pid ${old} killed by SIGKILL; restarting`), `${name}'s supervisor saw the kill`);
        assert.equal(node.child.exitCode, null, `${name}'s node kept running`);
      }
    } finally {
      storeA.close();
    }
  });

  it("the nodes stop cleanly and take their daemons with them", async () => {
    for (const [name, ns] of [["A", A], ["B", B]] as const) {
      assert.equal(await nodes[name]!.stop(), 0, nodes[name]!.log());
      await waitFor(`${name}'s daemon gone`, () => yggdrasilPidsIn(ns).length === 0, 10_000, 100);
    }
  });
});
