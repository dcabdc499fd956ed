/**
 * Seeded fuzzing of the peer server over real sockets: a node in a network namespace, and a client in the same
 * namespace (test/helpers/inside-fuzz-client.ts) sending valid, replayed, mutated, wrongly-sourced, legacy and raw
 * malformed HTTP requests from several 200::/7 addresses and one address outside it. Checks:
 *   - zero 5xx answers and the node never crashes (it still answers a signed ping at the end and stops cleanly);
 *   - zero invalid messages accepted: a 200 only for a message exactly as signed; afterwards every message in the
 *     node's inbox is one the client signed, stored unchanged under its real sender, none twice, and every
 *     acknowledged message is there;
 *   - every receipt verifies under the node's key and names the message.
 * The seed is printed; replay with DECLAW_FUZZ_SEED=<seed>; DECLAW_FUZZ_MS sets the client's time budget.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { createInterface } from "node:readline";
import type { ChildProcess } from "node:child_process";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { Store } from "../../src/core/store.ts";
import { tempDir, trustPeers } from "../helpers/declaw.ts";
import { fuzzBudgetMs, fuzzSeed } from "../helpers/fuzz-gen.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";

const avail = netnsAvailable();
const SEED = fuzzSeed();
const BUDGET_MS = fuzzBudgetMs(35_000);
const INSIDE_NODE = fileURLToPath(new URL("../helpers/node-runner.mjs", import.meta.url));
const CLIENT = fileURLToPath(new URL("../helpers/inside-fuzz-client.ts", import.meta.url));
console.log(`# fuzz.http seed=${SEED} (replay: DECLAW_FUZZ_SEED=${SEED}) budget=${BUDGET_MS} ms`);

describe(`HTTP fuzz against a node in a namespace (seed ${SEED})`, { skip: avail.ok ? false : avail.reason, timeout: BUDGET_MS + 120_000 }, () => {
  let net: Testnet;
  let ns: Namespace;
  const data = tempDir("fuzz-http");
  let node: ChildProcess;
  let nodeErr = "";
  let nodeLine: (cmd: string) => Promise<any>;
  const senders = Array.from({ length: 4 }, (_, i) => createHash("sha256").update(`fuzz-http/${SEED}/${i}`).digest("hex"));
  const senderAddrs = senders.map((h) => formatIPv6(deriveAddress(keyPairFromSeed(Buffer.from(h, "hex")).publicKey)));
  const id = loadOrCreateIdentity(data.dir);

  before(async () => {
    net = new Testnet();
    ns = net.add();
    ns.addAddress("lo", `${id.address}/128`);
    for (const a of senderAddrs) ns.addAddress("lo", `${a}/128`);
    ns.addAddress("lo", "fd00:f0::1/128");
    // The honest half of the senders (see inside-fuzz-client.ts) is known to the node, so their thousands of valid
    // messages are not held to the pending quota; the forging half stays pending.
    trustPeers(data.dir, senderAddrs.slice(0, senderAddrs.length >> 1));
    node = ns.spawn(process.execPath, [INSIDE_NODE, JSON.stringify({ dataDir: data.dir, quiet: true, config: { yggdrasil: "off", peerPort: 8099, rateLimit: { perSecond: 1e6, burst: 1e6 } } })], { stdio: ["pipe", "pipe", "pipe"] });
    node.stderr!.setEncoding("utf8").on("data", (d: string) => (nodeErr += d));
    const waiting: ((v: any) => void)[] = [];
    createInterface({ input: node.stdout! }).on("line", (l) => waiting.shift()?.(JSON.parse(l)));
    const next = () => new Promise<any>((r) => waiting.push(r));
    nodeLine = (cmd) => {
      const p = next();
      node.stdin!.write(`${cmd}\n`);
      return p;
    };
    const ready = await next();
    assert.equal(ready.ready, true, `node did not start: ${JSON.stringify(ready)} ${nodeErr}`);
  });

  after(async () => {
    await net.destroy();
    data.remove();
  });

  it("zero crashes, zero 5xx, zero invalid messages accepted; every acknowledged message stored, only signed ones", async () => {
    let exited: number | null | undefined;
    node.once("exit", (code) => (exited = code));
    const r = await ns.run(process.execPath, [CLIENT, JSON.stringify({ seed: SEED, budgetMs: BUDGET_MS, target: id.address, port: 8099, nodeKey: id.publicKeyBase64, senders, foreign: "fd00:f0::1" })], { timeoutMs: BUDGET_MS + 60_000 });
    assert.equal(r.code, 0, `fuzz client failed: ${r.stderr.slice(-3000)}`);
    const rep = JSON.parse(r.stdout.trim().split("\n").pop()!);
    console.log(`# ${rep.cases} cases ${JSON.stringify(rep.byCategory)}; statuses ${JSON.stringify(rep.statuses)}; socket errors ${JSON.stringify(rep.netErrors)}`);
    assert.equal(exited, undefined, `the node exited during the fuzz run (code ${exited}): ${nodeErr.slice(-3000)}`);
    assert.deepEqual(rep.fiveXX, [], `5xx answers (seed ${SEED})`);
    assert.deepEqual(rep.wrongAccepts, [], `invalid messages accepted (seed ${SEED})`);
    assert.deepEqual(rep.badReceipts, [], `receipts that do not verify (seed ${SEED})`);
    assert.deepEqual(rep.unexpected, [], `unexpected answers (seed ${SEED})`);
    assert.ok(rep.legit.length > 50, "too few valid messages went through: the oracle is not exercised");
    assert.doesNotMatch(nodeErr, /unexpected error|P2P_ERR_INTERNAL/, "the server logged an internal error");

    const stopped = await nodeLine("stop");
    assert.equal(stopped.stopped, true);
    const store = Store.open(data.dir);
    try {
      const inbox = store.listInbox({ limit: 1_000_000 });
      // Everything stored must be a message we signed, stored exactly as signed under its real sender...
      const signed = new Map<string, { content: string; kind: string }>();
      for (const m of rep.signed) signed.set(`${m.peer} ${m.id}`, m);
      const seen = new Set<string>();
      for (const m of inbox) {
        const k = `${m.peer} ${m.id}`;
        assert.ok(!seen.has(k), `stored twice: ${k}`);
        seen.add(k);
        const w = signed.get(k);
        assert.ok(w, `the inbox holds a message nobody signed as such: ${k} ${JSON.stringify(m.content.slice(0, 100))} (seed ${SEED})`);
        assert.equal(m.content, w.content, `stored content differs from the signed content for ${k} (seed ${SEED})`);
        assert.equal(m.kind, w.kind);
      }
      // ...and everything acknowledged must be stored. (Stored without an answer is allowed: the socket may close.)
      for (const m of rep.legit) assert.ok(seen.has(`${m.peer} ${m.id}`), `acknowledged but not stored: ${m.peer} ${m.id} (seed ${SEED})`);
      console.log(`# inbox ${inbox.length}, acknowledged ${new Set(rep.legit.map((m: { id: string }) => m.id)).size}, signed ${signed.size}`);
      assert.deepEqual(store.quickCheck(), [], "database integrity");
    } finally {
      store.close();
    }
  });
});
