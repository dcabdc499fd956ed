/**
 * `npm run bench` (root; Linux network namespaces). Measures, on paths it builds itself and tears down afterwards:
 *   1. durable accepted messages/s and p50/p99 latency of the node at 1 and 32 requests in flight from 8 senders
 *      (each its own 200::/7 address) on loopback, against the ceiling servers of ceiling.ts on the same path (parse
 *      only; parse + verify, the ceiling the targets name; parse + verify + group-fsynced log, for what durability
 *      alone costs on this disk), with each server's CPU time per message;
 *   2. the same over one real Yggdrasil hop between two namespaces;
 *   3. a trusted peer's p99 while the node is flooded with invalid signatures and non-Yggdrasil sources;
 *   4. RSS of a node holding 10k peers and 1M messages, and page query times on it;
 *   5. whole-process latency of `declaw status`, `peers`, `inbox`.
 * Prints one table and writes it as JSON (default bench/results/latest.json). `--quick` shortens every phase.
 * Speed is measured and reported against the targets here, never asserted in tests.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deriveAddress, formatIPv6 } from "../src/core/address.ts";
import { loadOrCreateIdentity, yggdrasilPrivateKeyHex } from "../src/core/identity.ts";
import { keyPairFromSeed } from "../src/core/keys.ts";
import { buildDaemonConfig, renderDaemonConfig } from "../src/yggdrasil/config.ts";
import { trustPeers } from "../test/helpers/declaw.ts";
import { spawnJson, type JsonChild } from "../test/helpers/fuzz-proc.ts";
import { netnsAvailable, Testnet, type Namespace } from "../test/helpers/netns.ts";
import { fillStore, timeQueries } from "./scale.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
const NODE = process.execPath;
// The node and the CLI are measured as installed: compiled dist/ (built at the start of the run).
const INSIDE_NODE = join(HERE, "../test/helpers/node-runner.mjs");
const LOADGEN = join(HERE, "loadgen.ts");
const CEILING = join(HERE, "ceiling.ts");
const FLOOD = join(HERE, "flood.ts");
const CLI = join(HERE, "../dist/hosts/cli/main.js");

const args = process.argv.slice(2);
const QUICK = args.includes("--quick");
const OUT = args.includes("--out") ? args[args.indexOf("--out") + 1]! : join(HERE, "results/latest.json");
const only = args.includes("--only") ? new Set(args[args.indexOf("--only") + 1]!.split(",")) : undefined;

const RUN_MS = QUICK ? 2_500 : 8_000;
const WARMUP_MS = QUICK ? 500 : 1_000;
const SCALE_MESSAGES = QUICK ? 200_000 : 1_000_000;
const SCALE_PEERS = 10_000;
const FLOOD_RATE = 20_000;
const TRUSTED_RATE = 40; // under the default per-source limit of 50/s

const HIGH_RATE_LIMIT = { perSecond: 1e6, burst: 1e6 };

interface Row {
  section: string;
  name: string;
  value: string;
  target?: string;
  met?: boolean | null;
  raw?: unknown;
}
const rows: Row[] = [];
const cleanups: (() => void | Promise<void>)[] = [];

function seedHex(label: string): string {
  return createHash("sha256").update(`declaw-bench/${label}`).digest("hex");
}
function addrOfSeed(hex: string): string {
  return formatIPv6(deriveAddress(keyPairFromSeed(Buffer.from(hex, "hex")).publicKey));
}
function tmp(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `declaw-bench-${label}-`));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}
function fmt(n: number | null | undefined, digits = 1): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "n/a" : n.toFixed(digits);
}

/** A server child (node runner or ceiling) once it is listening, and its CPU time on demand. */
async function startJsonChild(ns: Namespace, script: string, arg: unknown, timeoutMs = 30_000): Promise<JsonChild & { stats: () => Promise<any> }> {
  const c = spawnJson(ns, script, arg);
  const first = await c.waitFor((v) => typeof v.ready === "boolean", timeoutMs, "ready");
  if (!first.ready) throw new Error(`${script} failed to start: ${first.code ?? ""} ${first.error}`);
  const stats = () => {
    c.send("stats");
    return c.waitFor((v) => typeof v.cpuMs === "number", timeoutMs, "stats");
  };
  return { ...c, stats };
}

async function runJson(ns: Namespace, script: string, arg: unknown, timeoutMs = 120_000): Promise<any> {
  const r = await ns.run(NODE, [script, JSON.stringify(arg)], { timeoutMs });
  const last = r.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(last);
  } catch {
    throw new Error(`${script} gave no result (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
}

/**
 * Throughput runs are split into this many rounds of RUN_MS / ROUNDS, taking the servers in turn within each round:
 * on a shared machine the background load drifts, and rounds let every server see the same drift. Ratios are the
 * median of the rounds' ratios; each row shows its rounds' p99 range. On the 2-vCPU development machine the verify
 * ceiling alone moved between ~3000 and ~5800 msg/s from one 2-second round to the next, so 3 rounds left the median
 * ratio at the mercy of one unlucky round; 7 short ones (the first warms the servers up, the rest barely need to)
 * cost ~40 s more per section.
 */
const ROUNDS = QUICK ? 1 : 7;
/** Warm-up of the later rounds: the servers are warm by then, only the connections are new. */
const LATER_WARMUP_MS = 300;

/** `guessPerSec` sizes the pre-signed pool (the generator signs live if it runs out, which it reports). */
function loadPlan(target: string, port: number, to: string, senders: string[], inFlight: number, bind = true, guessPerSec = inFlight === 1 ? 2_500 : 6_000, durationMs = RUN_MS, warmupMs = WARMUP_MS) {
  return { target, port, to, senders, bind, inFlight, durationMs, warmupMs, pool: Math.min(80_000, Math.ceil((guessPerSec * (durationMs + warmupMs)) / 1000)) };
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const GUESS: Record<string, [number, number]> = { node: [2_000, 6_500], "node, data dir on tmpfs": [2_500, 7_000], "verify ceiling": [6_000, 8_000], "durable ceiling": [3_000, 8_000], "parse ceiling": [12_000, 16_000] };

type Server = Awaited<ReturnType<typeof startJsonChild>>;

/**
 * CPU ms by thread name spent between two `stats` answers of the node runner (keyed "name/tid": a thread started in
 * between counts from zero; what a thread that ended in between spent after the first answer is not seen).
 */
function threadDeltas(before: Record<string, number> | undefined, after: Record<string, number> | undefined): Record<string, number> | undefined {
  if (!before || !after) return undefined; // the ceilings report none
  const byName: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const name = k.slice(0, k.lastIndexOf("/"));
    byName[name] = (byName[name] ?? 0) + v - (before[k] ?? 0);
  }
  return byName;
}
/** The rounds' per-thread CPU per request (warm-ups included, as serverCpuUsPerRequest), or undefined for a ceiling. */
function perThread(rs: any[], roundMs: number): Record<string, number> | undefined {
  if (!rs.every((x) => x.threadCpuMs)) return undefined;
  const requests = Math.max(1, sum(rs.map((x) => x.answered * (1 + x.warmupMs / roundMs))));
  const names = [...new Set(rs.flatMap((x) => Object.keys(x.threadCpuMs)))];
  return Object.fromEntries(names.map((n) => [n, (sum(rs.map((x) => x.threadCpuMs[n] ?? 0)) * 1000) / requests]));
}
/** ", of which main 180, declaw-sig 310, ..." for the threads that spent at least 1 µs per message. */
function threadText(t: Record<string, number> | undefined): string {
  if (!t) return "";
  const name = (k: string) => (k === "MainThread" ? "event loop" : k === "V8Worker" ? "V8 helpers" : k);
  const shown = Object.entries(t).filter(([, v]) => v >= 1).sort((a, b) => b[1] - a[1]);
  return shown.length ? ` (${shown.map(([k, v]) => `${name(k)} ${fmt(v, 0)}`).join(", ")})` : "";
}

/**
 * Runs the load against each server in turn, ROUNDS times. `servers` maps a row name to its port and child (asked for
 * its CPU time before and after, so each row also shows the server's CPU per answered request: the work ratio behind
 * the speed).
 */
async function throughputRows(section: string, gen: Namespace, nodeAddr: string, senders: string[], bind: boolean, label: string, servers: [string, number, Server][]): Promise<void> {
  const roundMs = Math.round(RUN_MS / ROUNDS);
  for (const inFlight of [1, 32]) {
    const rounds: Record<string, any>[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const res: Record<string, any> = {};
      for (const [name, port, child] of servers) {
        const g = GUESS[name]!;
        const before = await child.stats();
        const warmupMs = round === 0 ? WARMUP_MS : LATER_WARMUP_MS;
        const r = await runJson(gen, LOADGEN, loadPlan(nodeAddr, port, nodeAddr, senders, inFlight, bind, inFlight === 1 ? g[0] : g[1], roundMs, warmupMs));
        r.warmupMs = warmupMs;
        r.answered = sum(Object.values(r.statuses as Record<string, number>));
        const after = await child.stats();
        r.serverCpuMs = (after.cpuMs as number) - (before.cpuMs as number);
        r.threadCpuMs = threadDeltas(before.threadCpuMs, after.threadCpuMs);
        res[name] = r;
      }
      rounds.push(res);
    }
    const res: Record<string, any> = {};
    for (const [name] of servers) {
      const rs = rounds.map((x) => x[name]);
      const statuses: Record<string, number> = {};
      for (const x of rs) for (const [k, v] of Object.entries(x.statuses as Record<string, number>)) statuses[k] = (statuses[k] ?? 0) + v;
      const answered = sum(rs.map((x) => x.answered));
      const p99s = rs.map((x) => x.p99Ms as number);
      const r = (res[name] = {
        perSec: (sum(rs.map((x) => x.accepted)) / sum(rs.map((x) => x.elapsedMs))) * 1000,
        p50Ms: median(rs.map((x) => x.p50Ms)),
        p99Ms: median(p99s),
        p99Range: [Math.min(...p99s), Math.max(...p99s)],
        statuses,
        signedLive: sum(rs.map((x) => x.signedLive)),
        cpuUsPerRequest: sum(rs.map((x) => x.cpuUsPerRequest * x.answered)) / Math.max(1, answered),
        // Includes the warm-ups' requests, which the load generator does not count: an upper bound, good for ratios.
        serverCpuUsPerRequest: (sum(rs.map((x) => x.serverCpuMs)) * 1000) / Math.max(1, sum(rs.map((x) => x.answered * (1 + x.warmupMs / roundMs)))),
        threadCpuUsPerRequest: perThread(rs, roundMs),
        rounds: rs,
      });
      const bad = Object.entries(statuses).filter(([k]) => k !== "200");
      const range = ROUNDS > 1 ? ` (rounds ${fmt(r.p99Range[0], 2)}-${fmt(r.p99Range[1], 2)})` : "";
      rows.push({
        section,
        name: `${name}, ${inFlight} in flight, ${label}`,
        value: `${fmt(r.perSec, 0)} msg/s  p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms${range}  server CPU ~${fmt(r.serverCpuUsPerRequest, 0)} µs/msg${threadText(r.threadCpuUsPerRequest)} (load generator ~${fmt(r.cpuUsPerRequest, 0)})${bad.length ? `  non-200: ${JSON.stringify(Object.fromEntries(bad))}` : ""}${r.signedLive ? `  (signed live: ${r.signedLive})` : ""}`,
        target: name === "node" && inFlight === 1 && section === "throughput" ? "p99 <= 2 ms" : undefined,
        met: name === "node" && inFlight === 1 && section === "throughput" ? Number.isFinite(r.p99Ms) && r.p99Ms <= 2 : undefined,
        raw: r,
      });
    }
    const ratios = (a: string, b: string) => rounds.map((x) => x[a].perSec / x[b].perSec);
    const ratioV = median(ratios("node", "verify ceiling"));
    const ratioP = median(ratios("node", "parse ceiling"));
    const ratioD = median(ratios("node", "durable ceiling"));
    const work = res["node"].serverCpuUsPerRequest / res["verify ceiling"].serverCpuUsPerRequest;
    const each = ROUNDS > 1 ? ` (rounds: ${ratios("node", "verify ceiling").map((x) => `${fmt(x * 100, 0)}%`).join(", ")})` : "";
    rows.push({
      section,
      name: `ratio node / ceilings, ${inFlight} in flight`,
      value: `${fmt(ratioV * 100, 0)}% of verify ceiling${each}, ${fmt(ratioD * 100, 0)}% of durable ceiling, ${fmt(ratioP * 100, 0)}% of parse ceiling (the node spends ${fmt(work, 2)}x the verify ceiling's CPU per message)`,
      target: ">= 90% of verify ceiling",
      met: ratioV >= 0.9,
    });
  }
}

// ---------------------------------------------------------------- sections

/**
 * How fast each vCPU verifies Ed25519 right now, alone and with both busy at once (the same loop pinned with
 * `taskset`): on the shared development machine the two differ and drift, and a single-threaded ceiling runs at the
 * speed of whichever core it lands on, while the node spreads over both. Printed next to the ratios so that a run can
 * be read against the machine's state; it changes no figure. Needs util-linux's taskset (the row says so otherwise).
 */
const CORE_PROBE = `const c=require("node:crypto");const k=c.generateKeyPairSync("ed25519");const d=Buffer.alloc(300,1);const s=c.sign(null,d,k.privateKey);let n=0;const t=performance.now();while(performance.now()-t<${QUICK ? 200 : 600}){c.verify(null,d,k.publicKey,s);n++}process.stdout.write(String((performance.now()-t)*1000/n))`;
function pinned(cpu: number): Promise<number> {
  return new Promise((resolve) => {
    const c = spawn("taskset", ["-c", String(cpu), NODE, "-e", CORE_PROBE], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    c.stdout.on("data", (b: Buffer) => (out += b));
    c.on("error", () => resolve(Number.NaN));
    c.on("close", () => resolve(Number(out) || Number.NaN));
  });
}
async function coreProbe(section: string, when: string): Promise<void> {
  const n = cpus().length;
  const alone: number[] = [];
  for (let i = 0; i < n; i++) alone.push(await pinned(i));
  const together = await Promise.all(Array.from({ length: n }, (_, i) => pinned(i)));
  const text = (xs: number[]) => xs.map((x, i) => `cpu${i} ${fmt(x, 0)}`).join(", ");
  rows.push({ section, name: `Ed25519 verify per vCPU, ${when}`, value: Number.isNaN(alone[0]!) ? "n/a (taskset not found)" : `alone: ${text(alone)} µs; all busy at once: ${text(together)} µs`, raw: { alone, together } });
}


async function benchThroughput(net: Testnet, ctx: Ctx): Promise<void> {
  const { nodeAddr, senders } = ctx;
  // On loopback, as the targets are stated: a namespace of its own holding the node's and the senders' addresses.
  const N = net.add();
  N.addAddress("lo", `${nodeAddr}/128`);
  for (const s of senders) N.addAddress("lo", `${addrOfSeed(s)}/128`);
  trustPeers(ctx.nodeDir, senders.map(addrOfSeed));
  const node = await startJsonChild(N, INSIDE_NODE, { dataDir: ctx.nodeDir, quiet: true, dist: true, config: { yggdrasil: "off", peerPort: 8099, rateLimit: HIGH_RATE_LIMIT } });
  const before = await node.stats();
  // The same node code on a tmpfs data dir (fsync costs nothing there): separates disk cost from CPU cost.
  const shmDir = mkdtempSync("/dev/shm/declaw-bench-");
  cleanups.push(() => rmSync(shmDir, { recursive: true, force: true }));
  copyFileSync(join(ctx.nodeDir, "identity.json"), join(shmDir, "identity.json"));
  trustPeers(shmDir, senders.map(addrOfSeed));
  const shmNode = await startJsonChild(N, INSIDE_NODE, { dataDir: shmDir, quiet: true, dist: true, config: { yggdrasil: "off", peerPort: 8098, rateLimit: HIGH_RATE_LIMIT } });
  const parse = await startJsonChild(N, CEILING, { port: 8100, mode: "parse" });
  const verify = await startJsonChild(N, CEILING, { port: 8101, mode: "verify" });
  const durable = await startJsonChild(N, CEILING, { port: 8102, mode: "durable", dir: tmp("durable-ceiling") });
  await coreProbe("throughput", "before the runs");
  await throughputRows("throughput", N, nodeAddr, senders, true, "loopback", [["node", 8099, node], ["node, data dir on tmpfs", 8098, shmNode], ["verify ceiling", 8101, verify], ["durable ceiling", 8102, durable], ["parse ceiling", 8100, parse]]);
  await coreProbe("throughput", "after the runs");
  const after = await node.stats();
  rows.push({ section: "throughput", name: "node after the runs", value: `inbox ${after.counts.inbox} messages, ${after.counts.peers} peers; RSS ${fmt(after.rss / 1048576)} MB (at start ${fmt(before.rss / 1048576)} MB)`, raw: { before, after } });
}

async function benchYggdrasil(net: Testnet): Promise<void> {
  const Y1 = net.add();
  const Y2 = net.add();
  const { aDev, bDev } = net.link(Y1, Y2);
  Y1.addAddress(aDev, "fd5e::1/64");
  Y2.addAddress(bDev, "fd5e::2/64");
  const nodeDir = tmp("ygg-node");
  const id = loadOrCreateIdentity(nodeDir);
  const senderSeed = seedHex("ygg-sender");
  const senderKp = keyPairFromSeed(Buffer.from(senderSeed, "hex"));
  const senderAddr = addrOfSeed(senderSeed);
  trustPeers(nodeDir, [senderAddr]);
  const work = tmp("ygg-conf");
  const conf = (name: string, keyHex: string, address: string, listen: string[], peers: string[]) => {
    const file = join(work, `${name}.json`);
    writeFileSync(file, renderDaemonConfig(buildDaemonConfig({ privateKeyHex: keyHex, address, listen, peers, adminSocketPath: join(work, `${name}.sock`), multicast: false })));
    return file;
  };
  const d2 = Y2.spawn("yggdrasil", ["-useconffile", conf("y2", yggdrasilPrivateKeyHex(id), id.address, ["tcp://[fd5e::2]:17001"], [])]);
  const d1 = Y1.spawn("yggdrasil", ["-useconffile", conf("y1", yggdrasilPrivateKeyHex(senderKp), senderAddr, [], ["tcp://[fd5e::2]:17001"])]);
  // The daemons' last words, for the error below if they never connect.
  const said = ["", ""];
  [d1, d2].forEach((d, i) => {
    const keep = (c: Buffer) => (said[i] = (said[i] + c.toString()).slice(-1500));
    d.stdout!.on("data", keep);
    d.stderr!.on("data", keep);
  });
  const node = await startJsonChild(Y2, INSIDE_NODE, { dataDir: nodeDir, quiet: true, dist: true, config: { yggdrasil: "off", peerPort: 8099, rateLimit: HIGH_RATE_LIMIT } });
  // No ping binary here: probe with a TCP connect until the mesh routes to the node.
  const probe = `const s=require("net").connect({host:${JSON.stringify(id.address)},port:8099,family:6});s.setTimeout(1000,()=>process.exit(1));s.on("connect",()=>process.exit(0));s.on("error",()=>setTimeout(()=>process.exit(1),200));`;
  const until = Date.now() + 30_000;
  for (;;) {
    const r = spawnSync("ip", ["netns", "exec", Y1.name, NODE, "-e", probe], { stdio: "ignore", timeout: 5_000 });
    if (r.status === 0) break;
    if (Date.now() > until) throw new Error(`the two Yggdrasil daemons did not connect within 30 s\n--- sender's daemon:\n${said[0]}\n--- node's daemon:\n${said[1]}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  const parse = await startJsonChild(Y2, CEILING, { port: 8100, mode: "parse" });
  const verify = await startJsonChild(Y2, CEILING, { port: 8101, mode: "verify" });
  const durable = await startJsonChild(Y2, CEILING, { port: 8102, mode: "durable", dir: tmp("ygg-durable-ceiling") });
  await throughputRows("yggdrasil", Y1, id.address, [senderSeed], false, "one Yggdrasil hop, 1 sender", [["node", 8099, node], ["verify ceiling", 8101, verify], ["durable ceiling", 8102, durable], ["parse ceiling", 8100, parse]]);
}

async function benchFlood(_net: Testnet, ctx: Ctx): Promise<void> {
  const { S, N, sDev, nDev, senders } = ctx;
  const dir = tmp("flood-node");
  const id = loadOrCreateIdentity(dir);
  N.addAddress(nDev, `${id.address}/7`);
  trustPeers(dir, [addrOfSeed(senders[0]!)]);
  // Default config: the per-source rate limit is part of what is measured here.
  await startJsonChild(N, INSIDE_NODE, { dataDir: dir, quiet: true, dist: true, config: { yggdrasil: "off", peerPort: 8199 } });
  const sources: { address: string; kind: "badsig" | "nonygg" }[] = [];
  N.addAddress(nDev, "fd00:f::ffff/64");
  for (let i = 1; i <= 64; i++) {
    const a = `2ff:f100::${i.toString(16)}`;
    S.addAddress(sDev, `${a}/7`);
    sources.push({ address: a, kind: "badsig" });
  }
  for (let i = 1; i <= 16; i++) {
    const a = `fd00:f::${i.toString(16)}`;
    S.addAddress(sDev, `${a}/64`);
    sources.push({ address: a, kind: "nonygg" });
  }
  const trustedPlan = (ms: number) => ({ ...loadPlan(id.address, 8199, id.address, [senders[0]!], 4, true, TRUSTED_RATE), durationMs: ms, warmupMs: 300, ratePerSec: TRUSTED_RATE, pool: TRUSTED_RATE * 30 });
  const quiet = await runJson(S, LOADGEN, trustedPlan(QUICK ? 3_000 : 5_000));
  rows.push({ section: "flood", name: `trusted peer alone, ${TRUSTED_RATE} msg/s`, value: `p50 ${fmt(quiet.p50Ms, 2)} ms  p99 ${fmt(quiet.p99Ms, 2)} ms  (${quiet.accepted} accepted)`, raw: quiet });
  const floodMs = RUN_MS + 3_000;
  const floodP = runJson(S, FLOOD, { target: id.address, port: 8199, to: id.address, sources, ratePerSec: FLOOD_RATE, durationMs: floodMs }, floodMs + 60_000);
  await new Promise((r) => setTimeout(r, 1_500));
  const under = await runJson(S, LOADGEN, trustedPlan(RUN_MS));
  const flood = await floodP;
  rows.push({
    section: "flood",
    name: `flood offered (64 bad-signature + 16 non-200::/7 sources)`,
    value: `${fmt(flood.sentPerSec, 0)} req/s sent, ${fmt(flood.answeredPerSec, 0)} req/s answered; ${flood.connects} connects; statuses ${JSON.stringify(flood.statuses)}`,
    target: `${FLOOD_RATE} req/s offered`,
    met: flood.sentPerSec >= FLOOD_RATE * 0.95,
    raw: flood,
  });
  const lost = Object.entries(under.statuses).filter(([k]) => k !== "200");
  rows.push({
    section: "flood",
    name: `trusted peer under flood, ${TRUSTED_RATE} msg/s`,
    value: `p50 ${fmt(under.p50Ms, 2)} ms  p99 ${fmt(under.p99Ms, 2)} ms  max ${fmt(under.maxMs, 1)} ms  (${under.accepted} accepted${lost.length ? `, non-200: ${JSON.stringify(Object.fromEntries(lost))}` : ""})`,
    target: "p99 < 50 ms",
    met: under.p99Ms !== null && under.p99Ms < 50 && lost.length === 0,
    raw: under,
  });
}

async function benchScale(_net: Testnet, ctx: Ctx): Promise<void> {
  const { S, N, nDev, senders } = ctx;
  const dir = tmp("scale");
  const id = loadOrCreateIdentity(dir);
  const fill = fillStore(dir, SCALE_PEERS, SCALE_MESSAGES);
  rows.push({ section: "scale", name: `fixture: ${SCALE_PEERS} peers, ${SCALE_MESSAGES} messages`, value: `written in ${fmt(fill.ms / 1000)} s, database ${fmt(fill.bytes / 1048576)} MB` });
  const q = timeQueries(dir, SCALE_PEERS);
  for (const [name, t] of Object.entries(q)) {
    const isPage = !name.startsWith("counts");
    rows.push({ section: "scale", name, value: `median ${fmt(t.medianMs, 2)} ms, max ${fmt(t.maxMs, 2)} ms`, target: isPage ? "<= 10 ms" : undefined, met: isPage ? t.maxMs <= 10 : undefined, raw: t });
  }
  N.addAddress(nDev, `${id.address}/7`);
  trustPeers(dir, senders.map(addrOfSeed));
  const node = await startJsonChild(N, INSIDE_NODE, { dataDir: dir, quiet: true, dist: true, config: { yggdrasil: "off", peerPort: 8299, rateLimit: HIGH_RATE_LIMIT } });
  const idle = await node.stats();
  const load = await runJson(S, LOADGEN, { ...loadPlan(id.address, 8299, id.address, senders, 32), durationMs: QUICK ? 1_500 : 3_000 });
  const busy = await node.stats();
  const baseline = Number(spawnSync(NODE, ["-e", "process.stdout.write(String(process.memoryUsage().rss))"], { encoding: "utf8" }).stdout);
  // The target is about holding the data (memory must not grow with what is stored); the figure after a burst of
  // 32 requests in flight is working memory of the moment (V8's young generation, allocator arenas), shown beside it.
  rows.push({
    section: "scale",
    name: `node RSS holding ${SCALE_PEERS} peers, ${idle.counts.inbox} messages`,
    value: `${fmt(idle.rss / 1048576)} MB after start and a status count (bare \`node -e\` RSS: ${fmt(baseline / 1048576)} MB)`,
    target: "<= 80 MB",
    met: idle.rss <= 80 * 1048576,
    raw: { idle, baseline },
  });
  rows.push({
    section: "scale",
    name: "node RSS right after a burst (no target)",
    value: `${fmt(busy.rss / 1048576)} MB after ${load.accepted} more messages at 32 in flight (V8 heap ${fmt(busy.heapTotal / 1048576)} MB, of it used ${fmt(busy.heapUsed / 1048576)} MB)`,
    raw: { busy, load },
  });
  ctx.scaleDir = dir;
}

async function benchCli(ctx: Ctx): Promise<void> {
  const dir = ctx.scaleDir ?? ctx.nodeDir;
  const which = ctx.scaleDir ? `${SCALE_MESSAGES} messages` : "throughput data dir";
  for (const cmd of [["status"], ["peers"], ["inbox"]]) {
    const times: number[] = [];
    let failure = "";
    for (let i = 0; i < (QUICK ? 3 : 5); i++) {
      const t = performance.now();
      const r = spawnSync(NODE, [CLI, "--data-dir", dir, "--json", ...cmd], { encoding: "utf8", timeout: 60_000 });
      times.push(performance.now() - t);
      if (r.status !== 0) failure = `exit ${r.status}: ${(r.stderr || r.stdout).trim().split("\n")[0]}`;
    }
    times.sort((a, b) => a - b);
    rows.push({ section: "cli", name: `declaw ${cmd.join(" ")} (${which})`, value: failure ? `FAILED ${failure}` : `median ${fmt(times[Math.floor(times.length / 2)], 0)} ms, max ${fmt(times[times.length - 1], 0)} ms (whole process)`, met: failure ? false : undefined, raw: times });
  }
}

interface Ctx {
  S: Namespace;
  N: Namespace;
  sDev: string;
  nDev: string;
  nodeDir: string;
  nodeAddr: string;
  senders: string[];
  scaleDir?: string;
}

// ---------------------------------------------------------------- main

function printTable(): void {
  const w0 = Math.max(...rows.map((r) => r.section.length), 7);
  const w1 = Math.max(...rows.map((r) => r.name.length), 4);
  console.log(`\n${"section".padEnd(w0)}  ${"case".padEnd(w1)}  result  [target: met?]`);
  console.log(`${"-".repeat(w0)}  ${"-".repeat(w1)}  ------`);
  for (const r of rows) {
    const t = r.target ? `  [${r.target}: ${r.met === true ? "MET" : r.met === false ? "NOT MET" : "?"}]` : r.met === false ? "  [FAILED]" : "";
    console.log(`${r.section.padEnd(w0)}  ${r.name.padEnd(w1)}  ${r.value}${t}`);
  }
}

async function main(): Promise<number> {
  const avail = netnsAvailable();
  if (!avail.ok) {
    console.error(`bench needs network namespaces: ${avail.reason}`);
    return 2;
  }
  console.error("bench: building dist/ (the node and CLI are measured as installed)...");
  const build = spawnSync("npm", ["run", "-s", "build"], { cwd: join(HERE, ".."), stdio: "inherit" });
  if (build.status !== 0) {
    console.error("bench: npm run build failed");
    return 1;
  }
  const net = new Testnet();
  let exiting = false;
  const teardown = async () => {
    await net.destroy();
    for (const c of cleanups.splice(0)) await c();
  };
  const onSignal = (sig: string) => {
    if (exiting) return;
    exiting = true;
    console.error(`\n${sig}: removing namespaces`);
    void teardown().finally(() => process.exit(130));
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  const started = Date.now();
  try {
    const S = net.add();
    const N = net.add();
    const { aDev: sDev, bDev: nDev } = net.link(S, N);
    const senders = Array.from({ length: 8 }, (_, i) => seedHex(`sender-${i}`));
    for (const s of senders) S.addAddress(sDev, `${addrOfSeed(s)}/7`);
    const nodeDir = tmp("node");
    const nodeAddr = loadOrCreateIdentity(nodeDir).address;
    N.addAddress(nDev, `${nodeAddr}/7`);
    const ctx: Ctx = { S, N, sDev, nDev, nodeDir, nodeAddr, senders };
    const sections: [string, () => Promise<void>][] = [
      ["throughput", () => benchThroughput(net, ctx)],
      ["yggdrasil", () => benchYggdrasil(net)],
      ["flood", () => benchFlood(net, ctx)],
      ["scale", () => benchScale(net, ctx)],
      ["cli", () => benchCli(ctx)],
    ];
    for (const [name, run] of sections) {
      if (only && !only.has(name)) continue;
      const t = Date.now();
      console.error(`bench: ${name}...`);
      try {
        await run();
      } catch (err) {
        const message = (err as Error).message;
        rows.push({ section: name, name: "SKIPPED", value: `skipped: ${message.split("\n")[0]}`, met: null, raw: { error: message } });
        console.error(`bench: ${name} failed: ${message}`);
      }
      console.error(`bench: ${name} done in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
  } finally {
    await teardown();
  }
  printTable();
  const result = {
    date: new Date().toISOString(),
    quick: QUICK,
    durationS: (Date.now() - started) / 1000,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, tmpdir: tmpdir() },
    rows,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwritten to ${OUT} (${result.durationS.toFixed(0)} s)`);
  return 0;
}

process.exitCode = await main();
