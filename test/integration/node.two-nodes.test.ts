/**
 * Two `declaw run` processes in two network namespaces, each holding its own derived 200::/7 address on a veth pair
 * (Yggdrasil off: this checks the node; the mesh has its own suite). Everything goes through the real CLI.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, it } from "node:test";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { Store } from "../../src/core/store.ts";
import { CLI, cli, startNode, tempDir, waitFor, type RunningNode } from "../helpers/declaw.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";

const avail = netnsAvailable();

describe("two nodes over a veth pair", { skip: avail.ok ? false : avail.reason, timeout: 240_000 }, () => {
  let net: Testnet;
  let A: Namespace;
  let B: Namespace;
  const dirA = tempDir("a");
  const dirB = tempDir("b");
  let addrA: string;
  let addrB: string;
  let nodeA: RunningNode | undefined;
  let nodeB: RunningNode | undefined;

  before(() => {
    net = new Testnet();
    A = net.add();
    B = net.add();
    const { aDev, bDev } = net.link(A, B);
    addrA = loadOrCreateIdentity(dirA.dir).address;
    addrB = loadOrCreateIdentity(dirB.dir).address;
    A.addAddress(aDev, `${addrA}/7`);
    B.addAddress(bDev, `${addrB}/7`);
  });

  after(async () => {
    await net.destroy();
    dirA.remove();
    dirB.remove();
  });

  it("status shows the identity and that no node runs yet", async () => {
    const r = await cli(A, dirA.dir, ["status"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.address, addrA);
    assert.equal(r.json.node.running, false);
  });

  it("A sends to B: delivered with a receipt, in B's inbox, pending on B until allowed", async () => {
    nodeA = await startNode(A, dirA.dir, ["--yggdrasil", "off"]);
    nodeB = await startNode(B, dirB.dir, ["--yggdrasil", "off"]);
    const add = await cli(A, dirA.dir, ["add", addrB, "--alias", "bob"]);
    assert.equal(add.code, 0, add.stderr);
    const sent = await cli(A, dirA.dir, ["send", "bob", "hello", "bob", "✓"]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.json.state, "delivered", JSON.stringify(sent.json));
    assert.equal(sent.json.receipt.id, sent.json.id);
    assert.equal(sent.json.receipt.to, addrB);
    assert.equal(sent.json.receipt.from, addrA);
    const inbox = await cli(B, dirB.dir, ["inbox"]);
    assert.equal(inbox.code, 0, inbox.stderr);
    assert.equal(inbox.json.length, 1);
    assert.equal(inbox.json[0].content, "hello bob ✓");
    assert.equal(inbox.json[0].peer, addrA);
    assert.equal(inbox.json[0].id, sent.json.id);
    const status = await cli(B, dirB.dir, ["status"]);
    assert.equal(status.json.node.running, true);
    assert.deepEqual(status.json.pendingPeers.map((p: { address: string }) => p.address), [addrA]);
    const outbox = await cli(A, dirA.dir, ["outbox"]);
    assert.equal(outbox.json[0].state, "delivered");
  });

  it("ping shows the verified identity of whoever answered", async () => {
    const r = await cli(A, dirA.dir, ["ping", "bob"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.address, addrB);
    assert.equal(r.json.verified, true);
    assert.equal(r.json.keyBinding, "derived");
    assert.equal(r.json.publicKey, loadOrCreateIdentity(dirB.dir).publicKeyBase64);
    // Both nodes read this machine's clock: the offset read from the signed pong is the round trip's error at most.
    assert.ok(typeof r.json.clockOffsetMs === "number" && Math.abs(r.json.clockOffsetMs) < 5_000, String(r.json.clockOffsetMs));
  });

  it("a delivery receipt marks the peer seen, as a message from it does (B never writes to A here)", async () => {
    const db = new DatabaseSync(join(dirA.dir, "peers.db"));
    try {
      db.prepare("UPDATE peers SET last_seen = 1 WHERE address = ?").run(addrB); // seen long ago
    } finally {
      db.close();
    }
    const before = Date.now();
    const sent = await cli(A, dirA.dir, ["send", "bob", "still there after all this time?"]);
    assert.equal(sent.json.state, "delivered", JSON.stringify(sent.json));
    const peers = await cli(A, dirA.dir, ["peers"]);
    const bob = peers.json.find((p: { address: string }) => p.address === addrB);
    assert.ok(bob.lastSeen >= before, `lastSeen ${bob.lastSeen} is not after the send at ${before}`);
  });

  it("human output names the result and errors give a next step with a non-zero exit", async () => {
    const ok = await cli(A, dirA.dir, ["send", addrB, "plain text"], { json: false });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^delivered to .* receipt: stored at \d{4}-/);
    const bad = await cli(A, dirA.dir, ["send", "nobody-known", "x"], { json: false });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /no peer "nobody-known"\nnext step: /);
    assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/, "no stack trace");
    const usage = await cli(A, dirA.dir, ["send"], { json: false });
    assert.equal(usage.code, 2);
  });

  it("offline peer: queued, sender restarted in between, then delivered exactly once", async () => {
    await nodeB!.stop();
    const sent = await cli(A, dirA.dir, ["send", "bob", "while you were away"]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.equal(sent.json.state, "queued");
    assert.match(sent.json.reason, /UNREACHABLE|ECONNREFUSED/);
    await nodeA!.stop();
    nodeA = await startNode(A, dirA.dir, ["--yggdrasil", "off"]);
    nodeB = await startNode(B, dirB.dir, ["--yggdrasil", "off"]);
    const row = await waitFor(
      "the queued message to be delivered",
      async () => (await cli(A, dirA.dir, ["outbox"])).json.find((m: { id: string; state: string }) => m.id === sent.json.id && m.state === "delivered"),
      60_000,
      500,
    );
    assert.ok(row.receipt);
    const inbox = await cli(B, dirB.dir, ["inbox", "--limit", "100"]);
    assert.equal(inbox.json.filter((m: { id: string }) => m.id === sent.json.id).length, 1);
    assert.equal(inbox.json.filter((m: { content: string }) => m.content === "while you were away").length, 1);
  });

  /** A message from A that B (stopped meanwhile, started again) missed, its next attempt an hour away: its id. */
  async function queuedInLongBackoff(text: string): Promise<string> {
    await nodeB!.stop();
    const sent = await cli(A, dirA.dir, ["send", "bob", text]);
    assert.equal(sent.json.state, "queued");
    // As after many failed attempts: the next one is an hour away.
    const store = Store.open(dirA.dir);
    try {
      store.markRetry(sent.json.id, Date.now() + 3_600_000, "P2P_ERR_UNREACHABLE: earlier attempts");
    } finally {
      store.close();
    }
    nodeB = await startNode(B, dirB.dir, ["--yggdrasil", "off"]);
    return sent.json.id;
  }

  /** Waits (30 s at most) until A's outbox row `id` is no longer queued; the row. */
  const settled = (id: string, what: string) =>
    waitFor(what, async () => (await cli(A, dirA.dir, ["outbox"])).json.find((m: { id: string; state: string }) => m.id === id && m.state !== "queued"), 30_000, 500);

  it("a message queued in a long backoff follows at once when a newer message to the same peer is delivered", async () => {
    const older = await queuedInLongBackoff("older, sent while you were away");
    const newer = await cli(A, dirA.dir, ["send", "bob", "newer"]);
    assert.equal(newer.json.state, "delivered", newer.stdout);
    assert.equal((await settled(older, "the older message to follow the newer one (not an hour later)")).state, "delivered");
    const inbox = await cli(B, dirB.dir, ["inbox", "--limit", "100"]);
    assert.equal(inbox.json.filter((m: { id: string }) => m.id === older).length, 1);
  });

  it("a message in a long backoff is tried at once when its peer writes to us (it is up again)", async () => {
    const waiting = await queuedInLongBackoff("queued while you were away, again");
    const hello = await cli(B, dirB.dir, ["send", addrA, "I am back"]);
    assert.equal(hello.json.state, "delivered", hello.stdout);
    assert.equal((await settled(waiting, "the waiting message to go once bob wrote to us (not an hour later)")).state, "delivered");
  });

  it("a message queued with the clock days behind, past its maximum age by the corrected clock, is tried when the node starts, not failed untried", async () => {
    await nodeB!.stop();
    const sent = await cli(A, dirA.dir, ["send", "bob", "queued before NTP set the clock"]);
    assert.equal(sent.json.state, "queued");
    await nodeA!.stop();
    // As queued by a clock 8 days behind (max age 7 days), then in a backoff of an hour: the clock is right now.
    const now = Date.now();
    const created = now - 8 * 24 * 3_600_000;
    const db = new DatabaseSync(join(dirA.dir, "peers.db"));
    try {
      db.prepare("UPDATE messages SET created_at = ?, expires_at = ?, next_attempt_at = ? WHERE direction = 'out' AND id = ?").run(created, created + 7 * 24 * 3_600_000, now + 3_600_000, sent.json.id);
    } finally {
      db.close();
    }
    nodeB = await startNode(B, dirB.dir, ["--yggdrasil", "off"]);
    nodeA = await startNode(A, dirA.dir, ["--yggdrasil", "off"]);
    const row = await settled(sent.json.id, "the message to be delivered once A's node started");
    assert.equal(row.state, "delivered", JSON.stringify(row));
  });

  it("Ctrl-C during a send that gets no answer: the message stays queued (the CLI says so, with its id) and the running node delivers it once", async () => {
    const pidB = nodeB!.child.pid!;
    process.kill(pidB, "SIGSTOP"); // B's kernel still accepts the connection; nothing answers
    let said = "";
    let code: number | null = null;
    try {
      const send = A.spawn(process.execPath, [CLI, "--data-dir", dirA.dir, "--json", "send", "bob", "are you there?"]);
      send.stderr!.setEncoding("utf8").on("data", (d: string) => (said += d));
      let printed = "";
      send.stdout!.setEncoding("utf8").on("data", (d: string) => (printed += d));
      const exited = new Promise<number | null>((r) => send.once("exit", (c) => r(c)));
      const queued = await waitFor("the message to be queued", async () => (await cli(A, dirA.dir, ["outbox"])).json.find((m: { content: string; state: string }) => m.content === "are you there?" && m.state === "queued"));
      send.kill("SIGINT");
      code = await exited;
      assert.equal(code, 130, said);
      assert.match(said, new RegExp(`interrupted: message ${queued.id} stays queued; the running node sends it \\(\`declaw outbox\` shows it, \`declaw cancel ${queued.id}\` stops it\\)`));
      assert.deepEqual(JSON.parse(printed), { state: "queued", id: queued.id, reason: "interrupted (Ctrl-C) during the first attempt" }, "with --json, the outcome on stdout too");
    } finally {
      process.kill(pidB, "SIGCONT");
    }
    await waitFor("the interrupted message to be delivered", async () => (await cli(A, dirA.dir, ["outbox"])).json.find((m: { content: string; state: string }) => m.content === "are you there?" && m.state === "delivered"), 60_000, 500);
    const inbox = await cli(B, dirB.dir, ["inbox", "--limit", "100"]);
    assert.equal(inbox.json.filter((m: { content: string }) => m.content === "are you there?").length, 1);
  });

  it("run stops cleanly on SIGTERM", async () => {
    assert.equal(await nodeA!.stop(), 0);
    assert.equal(await nodeB!.stop(), 0);
    const s = await cli(A, dirA.dir, ["status"]);
    assert.equal(s.json.node.running, false);
  });
});
