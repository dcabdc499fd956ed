/**
 * `yggdrasil_peers` changes apply at run time: a running `declaw run` picks up a new peer written to
 * `<data_dir>/config.json` through the daemon's admin socket, without restarting the daemon (same pid), and the
 * mesh then carries a message.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { findYggdrasilBinary } from "../../src/yggdrasil/binary.ts";
import { cli, tempDir, waitFor, type RunningNode } from "../helpers/declaw.ts";
import { startRun } from "../helpers/mesh-net.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";

const avail = netnsAvailable();
const skip = !avail.ok ? avail.reason : !findYggdrasilBinary() ? "yggdrasil binary not installed" : false;
const YGG_PORT = 12346;

describe("yggdrasil_peers applied at run time", { skip, timeout: 240_000 }, () => {
  let net: Testnet;
  let A: Namespace;
  let B: Namespace;
  const dirA = tempDir("rt-a");
  const dirB = tempDir("rt-b");
  const idB = loadOrCreateIdentity(dirB.dir);
  loadOrCreateIdentity(dirA.dir);
  const nodes: RunningNode[] = [];

  before(async () => {
    net = new Testnet();
    A = net.add();
    B = net.add();
    const l = net.link(A, B);
    A.addAddress(l.aDev, "fd00:ab::1/64");
    B.addAddress(l.bDev, "fd00:ab::2/64");
    nodes.push(await startRun(B, dirB.dir, ["--yggdrasil", "spawn", "--listen", `tcp://[::]:${YGG_PORT}`]));
    nodes.push(await startRun(A, dirA.dir, ["--yggdrasil", "spawn"]));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    await net?.destroy();
    dirA.remove();
    dirB.remove();
  });

  it("a peer added to config.json is dialled by the running daemon (same pid) and carries a message", async () => {
    const before = (await cli(A, dirA.dir, ["status"])).json;
    assert.equal(before.yggdrasil.state, "running", JSON.stringify(before.yggdrasil));
    assert.deepEqual((before.yggdrasil.peers ?? []).filter((p: { up: boolean }) => p.up), []);
    writeFileSync(join(dirA.dir, "config.json"), JSON.stringify({ yggdrasil_peers: [`tcp://[fd00:ab::2]:${YGG_PORT}`] }));
    await waitFor("the new mesh peer in A's status", async () => {
      const s = (await cli(A, dirA.dir, ["status"])).json;
      return (s?.yggdrasil?.peers ?? []).some((p: { up: boolean; address: string }) => p.up && p.address === idB.address);
    }, 60_000, 500);
    const after = (await cli(A, dirA.dir, ["status"])).json;
    assert.equal(after.yggdrasil.pid, before.yggdrasil.pid, "the daemon was not restarted");
    const sent = await waitFor("delivery over the new link", async () => {
      const r = await cli(A, dirA.dir, ["send", idB.address, "over a peer added at run time"]);
      return r.json?.state === "delivered" ? r.json : undefined;
    }, 30_000, 1_000);
    assert.equal(sent.receipt.to, idB.address);
  });
});
