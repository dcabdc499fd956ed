/**
 * Slow and idle clients against a node in a namespace (real sockets; test/helpers/inside-slow-client.ts). What
 * src/core/server.ts configures, and what this checks it really does:
 *   headersTimeout 10 s, requestTimeout 15 s, keepAliveTimeout 5 s, socket idle timeout 30 s, maxConnections 2048.
 * Node checks headersTimeout/requestTimeout only every `connectionsCheckingInterval` (default 30 s), so the
 * bounds asserted here are the configured value plus that interval; docs/security.md names the effective bounds.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { createInterface } from "node:readline";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { tempDir } from "../helpers/declaw.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";

const avail = netnsAvailable();
const INSIDE_NODE = fileURLToPath(new URL("../helpers/node-runner.mjs", import.meta.url));
const CLIENT = fileURLToPath(new URL("../helpers/inside-slow-client.ts", import.meta.url));
const MANY = 2_100; // just over maxConnections (2048)
const PER_SOURCE_CAP = 32; // server.ts MAX_CONNECTIONS_PER_SOURCE
const PROBE_SOURCE = "2fe:5::100";
const FOREIGN_CAP = 64; // server.ts MAX_FOREIGN_CONNECTIONS
const FOREIGN_MANY = 600;
const CHECK_INTERVAL_MS = 1_000; // server.ts TIMEOUT_CHECK_INTERVAL_MS (connectionsCheckingInterval)

describe("slow clients and idle connections are bounded", { skip: avail.ok ? false : avail.reason, timeout: 180_000 }, () => {
  let net: Testnet;
  let ns: Namespace;
  const data = tempDir("hostile");
  const id = loadOrCreateIdentity(data.dir);
  const sources = Array.from({ length: 8 }, (_, i) => `2fe:5::${(i + 1).toString(16)}`);
  // Outside 200::/7 (one /64's worth would do as well): only ever answered 403, so they share one small allowance.
  const foreignSources = Array.from({ length: 32 }, (_, i) => `fd5e:7::${(i + 1).toString(16)}`);
  let report: any;

  before(async () => {
    net = new Testnet();
    ns = net.add();
    ns.addAddress("lo", `${id.address}/128`);
    for (const s of [...sources, PROBE_SOURCE, ...foreignSources]) ns.addAddress("lo", `${s}/128`);
    const node = ns.spawn(process.execPath, [INSIDE_NODE, JSON.stringify({ dataDir: data.dir, quiet: true, config: { yggdrasil: "off", peerPort: 8099, rateLimit: { perSecond: 1e6, burst: 1e6 } } })], { stdio: ["pipe", "pipe", "pipe"] });
    node.stderr!.resume();
    const first = await new Promise<any>((r) => createInterface({ input: node.stdout! }).once("line", (l) => r(JSON.parse(l))));
    assert.equal(first.ready, true);
    const r = await ns.run(process.execPath, [CLIENT, JSON.stringify({ target: id.address, port: 8099, sources, probeSource: PROBE_SOURCE, many: MANY, foreignSources, foreignMany: FOREIGN_MANY })], { timeoutMs: 150_000 });
    assert.equal(r.code, 0, r.stderr.slice(-2000));
    report = JSON.parse(r.stdout.trim().split("\n").pop()!);
    console.log(`# ${JSON.stringify(report)}`);
  });

  after(async () => {
    await net.destroy();
    data.remove();
  });

  it("headers dripped one byte a second are cut off (headersTimeout 10 s, checked every second)", () => {
    const h = report.slowHeaders;
    assert.notEqual(h.closedAfterMs, null, "the server never closed a slowloris connection");
    assert.ok(h.closedAfterMs >= 9_000 && h.closedAfterMs <= 10_000 + CHECK_INTERVAL_MS + 2_000, `closed after ${h.closedAfterMs} ms`);
    assert.ok(h.status === null || h.status === 408, `answered ${h.status}`);
  });

  it("a body dripped one byte a second is cut off (requestTimeout 15 s, checked every second)", () => {
    const b = report.slowBody;
    assert.notEqual(b.closedAfterMs, null);
    assert.ok(b.closedAfterMs >= 14_000 && b.closedAfterMs <= 15_000 + CHECK_INTERVAL_MS + 2_000, `closed after ${b.closedAfterMs} ms`);
    assert.ok(b.status === null || b.status === 408, `answered ${b.status}`);
  });

  it("a kept-alive connection is closed about 5 s after its last answer", () => {
    const k = report.keepAliveIdle;
    assert.equal(k.status, 200);
    assert.ok(k.closedAfterMs !== null && k.closedAfterMs >= 4_000 && k.closedAfterMs <= 8_000, `closed after ${k.closedAfterMs} ms`);
  });

  it("a connection that never sends anything is closed (by the headers timeout, 10 s)", () => {
    const i = report.idleNoRequest;
    assert.ok(i.closedAfterMs !== null && i.closedAfterMs <= 10_000 + CHECK_INTERVAL_MS + 2_000, `closed after ${i.closedAfterMs} ms`);
  });

  it(`${MANY} idle connections from 8 sources: at most ${PER_SOURCE_CAP} per source are kept, all are released, the node serves afterwards`, () => {
    const m = report.many;
    const cap = Math.min(2_048, 8 * PER_SOURCE_CAP);
    assert.ok(m.openAfter2s <= cap + 8, `the server kept ${m.openAfter2s} connections open`);
    assert.ok(m.closedEarly + m.refused >= MANY - cap - 8, `only ${m.closedEarly} connections over the cap were dropped`);
    assert.equal(m.stillOpenAtLimit, 0, "some idle connections were never closed by the server");
    assert.equal(report.afterwards, 200, "the node does not serve after the idle flood");
  });

  it("a peer from another source is served while the flooding sources hold their connections", () => {
    assert.equal(report.many.pingWhileHeld, 200);
  });

  it(`${FOREIGN_MANY} idle connections from 32 sources outside 200::/7 hold at most ${FOREIGN_CAP} slots in all, and a peer is served meanwhile`, () => {
    const f = report.foreign;
    assert.ok(f.openAfter2s <= FOREIGN_CAP + 8, `the server kept ${f.openAfter2s} connections from outside the mesh open`);
    assert.ok(f.closedEarly + f.refused >= FOREIGN_MANY - FOREIGN_CAP - 8, `only ${f.closedEarly} of them were dropped at once`);
    assert.equal(f.stillOpenAtLimit, 0);
    assert.equal(f.pingWhileHeld, 200);
  });
});
