/**
 * Fault: the data directory fills up, or is read-only. The data dir lives on a small tmpfs mounted by the test (root)
 * and always unmounted. Checks (docs/protocol.md section 9 step 10):
 *   - full disk: refusals are 503 P2P_ERR_STORAGE with Retry-After, never 500, never a crash; every acknowledged
 *     message is stored and no refused one is; the node recovers by itself once space is freed;
 *   - read-only data dir at start: a clear P2PError naming the file, nothing changed, fine again once writable;
 *   - the database passes SQLite's quick_check at the end.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { Node } from "../../src/core/node.ts";
import { Store } from "../../src/core/store.ts";
import { trustPeers } from "../helpers/declaw.ts";
import { spawnJson, type JsonChild } from "../helpers/fuzz-proc.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";

const avail = netnsAvailable();
const INSIDE_NODE = fileURLToPath(new URL("../helpers/node-runner.mjs", import.meta.url));
const POSTER = fileURLToPath(new URL("../helpers/inside-poster.ts", import.meta.url));
const SEED = createHash("sha256").update("faults-disk-sender").digest("hex");
const SENDER = formatIPv6(deriveAddress(keyPairFromSeed(Buffer.from(SEED, "hex")).publicKey));

describe("full or read-only data directory", { skip: avail.ok ? false : avail.reason, timeout: 180_000 }, () => {
  let net: Testnet;
  let A: Namespace;
  let B: Namespace;
  const mnt = mkdtempSync(join(tmpdir(), "declaw-faults-disk-"));
  const dataDir = join(mnt, "data");
  let mounted = false;
  let address = "";
  let receiver: JsonChild | undefined;
  const acked = new Set<string>();
  const refused = new Set<string>();
  const arg = { dataDir, quiet: true, config: { yggdrasil: "off", peerPort: 8099, rateLimit: { perSecond: 1e6, burst: 1e6 } } };

  const post = async (count: number, size: number) => {
    const r = await A.run(process.execPath, [POSTER, JSON.stringify({ target: address, port: 8099, seedHex: SEED, count, size })], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    const rep = JSON.parse(r.stdout.trim().split("\n").pop()!);
    for (const id of rep.acked) acked.add(id);
    for (const id of Object.keys(rep.refused)) refused.add(id);
    assert.equal(rep.badReceipts, 0);
    return rep as { acked: string[]; refused: Record<string, string>; statuses: Record<string, number> };
  };

  before(() => {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", mnt]);
    mounted = true;
    mkdirSync(dataDir);
    address = loadOrCreateIdentity(dataDir).address;
    // A peer the receiver knows: a stranger would be held to its pending quota (200) before the disk fills.
    trustPeers(dataDir, [SENDER]);
    net = new Testnet();
    A = net.add();
    B = net.add();
    const { aDev, bDev } = net.link(A, B);
    A.addAddress(aDev, `${SENDER}/7`);
    B.addAddress(bDev, `${address}/7`);
  });

  after(async () => {
    await net.destroy();
    if (mounted) execFileSync("umount", ["-l", mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it("disk full: 503 P2P_ERR_STORAGE, no 500, no crash, nothing acknowledged that was not stored; recovers", async () => {
    receiver = spawnJson(B, INSIDE_NODE, arg);
    await receiver.waitFor((v) => v.ready === true, 30_000, "the node to start");
    const warm = await post(40, 200);
    assert.deepEqual(warm.statuses, { "200": 40 });

    // Fill the filesystem to the last byte.
    const filler = join(mnt, "filler");
    const fd = openSync(filler, "w");
    const chunk = Buffer.alloc(64 * 1024, 1);
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
    }
    try {
      for (;;) writeSync(fd, chunk, 0, 512);
    } catch { /* full */ }
    closeSync(fd);

    const full = await post(300, 2_000);
    console.log(`# disk full: ${JSON.stringify(full.statuses)} codes ${JSON.stringify([...new Set(Object.values(full.refused))])}`);
    assert.ok(!Object.keys(full.statuses).some((s) => Number(s) >= 500 && s !== "503"), `unexpected statuses ${JSON.stringify(full.statuses)}`);
    assert.ok((full.statuses["503"] ?? 0) > 0, "the disk filled up but nothing was refused");
    assert.deepEqual([...new Set(Object.values(full.refused))], ["P2P_ERR_STORAGE"]);
    assert.ok(receiver.stderr().includes("storage failure"), "the refusal is logged");

    rmSync(filler);
    const again = await post(40, 200);
    assert.deepEqual(again.statuses, { "200": 40 }, "the node did not recover once space was freed");
    receiver.send("stop");
    await receiver.waitFor((v) => v.stopped === true, 30_000, "the node to stop");
  });

  it("read-only data directory at start: a clear error naming the file; fine again once writable", async () => {
    execFileSync("mount", ["-o", "remount,ro", mnt]);
    try {
      const child = spawnJson(B, INSIDE_NODE, arg);
      const r = await child.waitFor((v) => v.ready === false, 30_000, "the refusal");
      console.log(`# read-only start: ${r.code}: ${r.error}`);
      assert.match(String(r.code), /^P2P_ERR_(DB_UNAVAILABLE|STORAGE)$/);
      assert.match(String(r.error), /peers\.db|read-only|readonly/i);
      assert.equal(await child.exited, 1);
      assert.throws(() => Node.open({ dataDir, config: { yggdrasil: "off" } }), (e: { code?: string }) => typeof e.code === "string" && e.code.startsWith("P2P_ERR_"));
    } finally {
      execFileSync("mount", ["-o", "remount,rw", mnt]);
    }
    receiver = spawnJson(B, INSIDE_NODE, arg);
    await receiver.waitFor((v) => v.ready === true, 30_000, "the node to start again");
    const ok = await post(10, 100);
    assert.deepEqual(ok.statuses, { "200": 10 });
    receiver.send("stop");
    await receiver.waitFor((v) => v.stopped === true, 30_000, "the node to stop");
  });

  it("afterwards: every acknowledged message is stored once, no refused one is, the database is sound", () => {
    const store = Store.open(dataDir);
    try {
      const inbox = store.listInbox({ limit: 100_000 });
      const ids = inbox.map((m) => m.id);
      assert.equal(new Set(ids).size, ids.length);
      const have = new Set(ids);
      for (const id of acked) assert.ok(have.has(id), `acknowledged ${id} is not stored`);
      for (const id of refused) assert.ok(!have.has(id), `refused ${id} was stored anyway`);
      assert.equal(have.size, acked.size);
      assert.deepEqual(store.quickCheck(), []);
    } finally {
      store.close();
    }
  });
});
