/**
 * admin.ts: reply normalisation with replies recorded from Debian's 0.4.7 (on this machine) and shaped per
 * yggdrasil-go 0.5 `src/admin/getpeers.go` / `getself.go`; the socket client against a fake admin server.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { normalisePeers, normaliseSelf, adminRequest, addPeer, removePeer, getSelf, peerUriKey, AdminCallError } from "../../src/yggdrasil/admin.ts";
import { P2PError } from "../../src/core/errors.ts";

// Recorded from yggdrasil 0.4.7 (Debian 12), `{"request":"getself"}`.
const SELF_04 = { build_name: "unknown", build_version: "unknown", key: "24ffea23b3247570bab3a13ebfce94f1c614845dfdb8fd026e2bacc4237d0257", address: "202:d800:aee2:66dc:547a:2a62:f60a:18b", coords: [], subnet: "302:d800:aee2:66dc::/64" };
// 0.4.7 `getpeers` with one outbound link (recorded).
const PEERS_04 = { peers: [{ address: "202:d800:aee2:66dc:547a:2a62:f60a:18b", key: "24ffea23b3247570bab3a13ebfce94f1c614845dfdb8fd026e2bacc4237d0257", port: 1, priority: 0, coords: [], remote: "tcp://[fd00::1]:12345", bytes_recvd: 692, bytes_sent: 1239, uptime: 2.047825015 }] };
// 0.5.x shapes: routing_entries instead of coords; peers with up/inbound, a configured peer that is down has no address.
const SELF_05 = { build_name: "yggdrasil", build_version: "0.5.12", key: "71245a14a46324613910c5ebd81d7374c82755659e550d0933da54beac2c942e", address: "201:3b6e:97ad:6e73:6e7b:1bbc:e850:9f8a", routing_entries: 3, subnet: "301:3b6e:97ad:6e73::/64" };
const PEERS_05 = { peers: [
  { remote: "tls://example.net:443", up: true, inbound: false, address: "200:1::1", key: "aa".repeat(32), port: 1, priority: 0, cost: 12, bytes_recvd: 100, bytes_sent: 200, rate_recvd: 1, rate_sent: 2, uptime: 61.5, latency: 12000000 },
  { remote: "tcp://[fd00::9]:1", up: false, inbound: false, key: "", port: 0, priority: 0, last_error: "dial tcp [fd00::9]:1: connect: connection refused", last_error_time: 1000000000 },
] };

test("normaliseSelf: 0.4 and 0.5 replies", () => {
  assert.deepEqual(normaliseSelf(SELF_04), { address: SELF_04.address, subnet: SELF_04.subnet, key: SELF_04.key, buildName: "unknown", buildVersion: "unknown" });
  assert.deepEqual(normaliseSelf(SELF_05), { address: SELF_05.address, subnet: SELF_05.subnet, key: SELF_05.key, buildName: "yggdrasil", buildVersion: "0.5.12" });
  assert.equal(normaliseSelf({ ...SELF_04, address: "0202:D800:aee2:66dc:547a:2a62:f60a:018b" }).address, SELF_04.address, "canonicalised");
  for (const bad of [undefined, null, {}, { key: "x" }, { address: "nope", key: "x" }]) {
    assert.throws(() => normaliseSelf(bad), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_ADMIN");
  }
});

test("normalisePeers: 0.4 (live links only, no `up`)", () => {
  assert.deepEqual(normalisePeers(PEERS_04), [{ address: PEERS_04.peers[0]!.address, key: PEERS_04.peers[0]!.key, up: true, uri: "tcp://[fd00::1]:12345", uptimeMs: 2048 }]);
  assert.deepEqual(normalisePeers({ peers: [] }), []);
});

test("normalisePeers: 0.5 (up/inbound, down peers without address)", () => {
  assert.deepEqual(normalisePeers(PEERS_05), [
    { address: "200:1::1", key: "aa".repeat(32), up: true, uri: "tls://example.net:443", inbound: false, uptimeMs: 61500 },
    { address: "", key: "", up: false, uri: "tcp://[fd00::9]:1", inbound: false, lastError: "dial tcp [fd00::9]:1: connect: connection refused" },
  ]);
});

test("normalisePeers: 0.3-style object map and junk", () => {
  assert.deepEqual(normalisePeers({ peers: { "200::5": { key: "bb", endpoint: "tcp://x:1", uptime: 1 } } }), [{ address: "200::5", key: "bb", up: true, uri: "tcp://x:1", uptimeMs: 1000 }]);
  assert.deepEqual(normalisePeers(undefined), []);
  assert.deepEqual(normalisePeers({ peers: [null, 1, "x"] }), []);
});

test("peerUriKey: a configured URI matches the `remote` 0.4.7 reports for its link", () => {
  // Pairs (configured, reported by Debian's 0.4.7 getPeers) recorded on this machine.
  const key = "de1403824c68cafb665f22a8c74b9d09cda92df06496692b43daa01cc7ac5dc3";
  const recorded: [string, string][] = [
    [`tcp://127.0.0.1:39411?key=${key}`, "tcp://127.0.0.1:39411"],
    ["tcp://[::1]:39412/", "tcp://[::1]:39412"],
    ["tcp://[0:0::1]:39412/", "tcp://[0:0::1]:39412"], // the host stays as written
  ];
  for (const [configured, remote] of recorded) assert.equal(peerUriKey(configured), peerUriKey(remote), configured);
  assert.equal(peerUriKey(`tls://Hub.Example.net:443/?key=${key}&sni=hub.example.net#x`), "tls://Hub.Example.net:443", "hostname kept as given");
  assert.equal(peerUriKey("TCP://[fd00::1]:1"), "tcp://[fd00::1]:1", "Go lowercases the scheme");
  assert.notEqual(peerUriKey("tcp://127.0.0.1:39411"), peerUriKey("tcp://127.0.0.1:39412"), "the port matters");
  assert.notEqual(peerUriKey("tcp://127.0.0.1:1"), peerUriKey("tls://127.0.0.1:1"), "the scheme matters");
});

async function fakeAdmin(handler: (req: Record<string, unknown>, reply: (o: unknown) => void, raw: string) => void): Promise<{ path: string; server: Server; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "dcl-admin-"));
  const path = join(dir, "admin.sock");
  const server = createServer((s) => {
    let buf = "";
    s.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      let req: Record<string, unknown>;
      try { req = JSON.parse(buf); } catch { return; }
      handler(req, (o) => s.end(typeof o === "string" ? o : JSON.stringify(o)), buf);
    });
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, dir };
}

test("adminRequest: sends {request, arguments, keepalive:false}; success, error, split and bad replies; addPeer tells added from already there", async () => {
  const seen: Record<string, unknown>[] = [];
  const { path, server, dir } = await fakeAdmin((req, reply) => {
    seen.push(req);
    if (req.request === "getSelf") reply({ status: "success", request: null, response: SELF_04 });
    else if (req.request === "addPeer" && (req.arguments as { uri?: string }).uri === "tcp://[::1]:10") reply({ status: "success", request: null, response: {} });
    else if (req.request === "addPeer") reply({ status: "error", error: "peer already configured", request: null, response: null });
    else if (req.request === "removePeer") reply({ status: "error", error: "peer not configured", request: null, response: null });
    else if (req.request === "bad") reply("not json");
    else if (req.request === "hang") { /* never answers */ }
    else reply({ status: "error", error: `Unknown action '${String(req.request)}', try 'list' for help` });
  });
  try {
    assert.equal((await getSelf(path)).address, SELF_04.address);
    assert.deepEqual(seen[0], { request: "getSelf", arguments: {}, keepalive: false });
    assert.equal(await addPeer(path, "tcp://[::1]:10"), true, "added by this call");
    assert.equal(await addPeer(path, "tcp://[::1]:9"), false, "\"already configured\" = success, but not added by us");
    await removePeer(path, "tcp://[::1]:9"); // "not configured" = success
    assert.deepEqual(seen[2]!.arguments, { uri: "tcp://[::1]:9" });
    await assert.rejects(adminRequest(path, "nosuch"), (e: unknown) => e instanceof AdminCallError && e.code === "P2P_ERR_YGG_ADMIN" && /Unknown action/.test(e.daemonError));
    await assert.rejects(adminRequest(path, "bad"), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_ADMIN");
    const t0 = Date.now();
    await assert.rejects(adminRequest(path, "hang", {}, 300), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_ADMIN_UNREACHABLE" && /within 300 ms/.test(e.message));
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("adminRequest: missing socket names the path and keeps the errno as cause", async () => {
  const path = join(tmpdir(), `dcl-none-${process.pid}.sock`);
  await assert.rejects(getSelf(path), (e: unknown) => {
    assert.ok(e instanceof P2PError);
    assert.equal(e.code, "P2P_ERR_YGG_ADMIN_UNREACHABLE");
    assert.ok(e.message.includes(path));
    assert.equal((e.cause as NodeJS.ErrnoException).code, "ENOENT");
    return true;
  });
});
