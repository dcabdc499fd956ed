/**
 * Two namespaces joined by a veth pair (fd00::1 / fd00::2), one supervised daemon in each. B peers with A's Listen
 * address; then a TCP connection from A to B's 200:: address arrives from A's 200:: address. setPeers adds and
 * removes the peering at run time, visible in getPeers on both ends.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";
import { NODE, SupervisorChild, waitFor } from "../helpers/ygg-harness.ts";
import { YGGDRASIL_BINARY } from "../helpers/ygg-cli.ts";
import type { YggStatus } from "../../src/yggdrasil/types.ts";

const avail = netnsAvailable();
const skip = !avail.ok ? avail.reason : !YGGDRASIL_BINARY ? "yggdrasil binary not installed" : false;
const PEER_PORT = 12345;
const A_URI = `tcp://[fd00::1]:${PEER_PORT}`;
const dirs: string[] = [];
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "dcl-ygg-"));
  dirs.push(d);
  return d;
}
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function pair(net: Testnet): { a: Namespace; b: Namespace } {
  const a = net.add();
  const b = net.add();
  const { aDev, bDev } = net.link(a, b);
  a.addAddress(aDev, "fd00::1/64");
  b.addAddress(bDev, "fd00::2/64");
  return { a, b };
}

function hasUpPeer(s: YggStatus, address: string): boolean {
  return (s.peers ?? []).some((p) => p.address === address && p.up);
}

test("two peered daemons: TCP from A's 200:: address reaches B and arrives with A's address", { skip, timeout: 90_000 }, async () => {
  const net = new Testnet();
  try {
    const { a, b } = pair(net);
    const supA = new SupervisorChild({ dataDir: dataDir(), mode: "spawn", listen: [`tcp://[::]:${PEER_PORT}`] }, { ns: a });
    const evA = await supA.started;
    assert.equal(evA.status.state, "running", JSON.stringify(evA));
    const supB = new SupervisorChild({ dataDir: dataDir(), mode: "spawn", peers: [A_URI] }, { ns: b });
    const evB = await supB.started;
    assert.equal(evB.status.state, "running", JSON.stringify(evB));
    const addrA = evA.identity.address;
    const addrB = evB.identity.address;

    const stB = await waitFor("B peered with A", async () => { const s = await supB.status(); return hasUpPeer(s, addrA) ? s : undefined; });
    assert.equal(stB.peers!.find((p) => p.address === addrA)!.uri, A_URI);
    await waitFor("A sees B", async () => hasUpPeer(await supA.status(), addrB) || undefined);

    // B: a TCP server on [::]:8099 printing each client's remote address.
    const server = b.spawn(NODE, ["-e", `require("node:net").createServer((s) => { console.log(s.remoteAddress); s.end("hi"); }).listen(8099, "::", () => console.log("LISTENING"));`]);
    let seen = "";
    server.stdout!.setEncoding("utf8").on("data", (d: string) => (seen += d));
    await waitFor("server listening", () => seen.includes("LISTENING") || undefined, 10_000);

    const client = `const s = require("node:net").connect({ host: ${JSON.stringify(addrB)}, port: 8099, timeout: 3000 });
      s.on("data", (d) => { process.stdout.write(String(d)); s.end(); });
      s.on("timeout", () => { console.error("timeout"); process.exit(3); });
      s.on("error", (e) => { console.error(e.message); process.exit(2); });`;
    await waitFor("TCP over Yggdrasil", async () => {
      const r = await a.run(NODE, ["-e", client], { timeoutMs: 10_000 });
      return r.stdout === "hi" || undefined;
    }, 30_000, 500);
    await waitFor("server saw A's address", () => seen.split("\n").includes(addrA) || undefined, 5000);

    await supB.call("exit");
    await supA.call("exit");
  } finally {
    await net.destroy();
  }
});

test("setPeers adds and removes a peer at run time", { skip, timeout: 90_000 }, async () => {
  const net = new Testnet();
  try {
    const { a, b } = pair(net);
    const supA = new SupervisorChild({ dataDir: dataDir(), mode: "spawn", listen: [`tcp://[::]:${PEER_PORT}`] }, { ns: a });
    const supB = new SupervisorChild({ dataDir: dataDir(), mode: "spawn" }, { ns: b });
    const [evA, evB] = await Promise.all([supA.started, supB.started]);
    assert.equal(evA.status.state, "running");
    assert.equal(evB.status.state, "running");
    assert.deepEqual(evB.status.peers, []);
    const addrA = evA.identity.address;
    const addrB = evB.identity.address;

    await supB.call("setPeers", { peers: [A_URI] });
    const pidBefore = (await supB.status()).pid;
    await waitFor("B peered with A after setPeers", async () => hasUpPeer(await supB.status(), addrA) || undefined);
    await waitFor("A sees B", async () => hasUpPeer(await supA.status(), addrB) || undefined);
    assert.equal((await supB.status()).pid, pidBefore, "adding a peer does not restart the daemon");

    await supB.call("setPeers", { peers: [] });
    await waitFor("B has no peers", async () => { const s = await supB.status(); return s.state === "running" && (s.peers ?? []).length === 0 || undefined; });
    await waitFor("A lost B", async () => (await supA.status()).peers?.length === 0 || undefined);
    // And it stays removed (0.4.7 re-dials removed peers unless restarted: the supervisor restarts it).
    await new Promise((r) => setTimeout(r, 3000));
    const stB = await supB.status();
    assert.deepEqual(stB.peers, []);
    assert.equal(stB.address, addrB);
    assert.equal(stB.state, "running");

    await supB.call("exit");
    await supA.call("exit");
  } finally {
    await net.destroy();
  }
});
