/**
 * Load generator for `npm run bench`, run inside the sender namespace. Argument: JSON (see LoadPlan). Posts signed
 * v2 envelopes from several 200::/7 source addresses (one keep-alive agent per sender, bound with localAddress),
 * keeping `inFlight` requests outstanding (or pacing at `ratePerSec`), and prints one JSON line of results.
 *
 * Envelopes are signed before the clock starts (a pool), so the generator's own signing does not eat the CPU the
 * server under test needs; if the pool runs out it signs on the fly (reported as `signedLive`).
 */
import { Agent, request } from "node:http";
import { keyPairFromSeed } from "../src/core/keys.ts";
import { deriveAddress, formatIPv6 } from "../src/core/address.ts";
import { buildEnvelope, newMessageId } from "../src/core/wire.ts";

export interface LoadPlan {
  target: string;
  port: number;
  /** The node's address (the envelopes' "to"). */
  to: string;
  /** 32-byte seeds in hex; each sender's source address is derived from its key (it must be on an interface). */
  senders: string[];
  /** Bind sockets to the sender's address (false over Yggdrasil, where the TUN address is the source anyway). */
  bind: boolean;
  inFlight: number;
  durationMs: number;
  warmupMs: number;
  /** Paced mode: this many requests per second in total (with at most inFlight outstanding). */
  ratePerSec?: number;
  pool: number;
  contentBytes?: number;
}

const plan = JSON.parse(process.argv[2]!) as LoadPlan;
const senders = plan.senders.map((hex) => {
  const kp = keyPairFromSeed(Buffer.from(hex, "hex"));
  const address = formatIPv6(deriveAddress(kp.publicKey));
  return { ...kp, address, agent: new Agent({ keepAlive: true, maxSockets: Math.max(1, Math.ceil(plan.inFlight / plan.senders.length) + 1) }) };
});
const content = "x".repeat(plan.contentBytes ?? 120);

// Pre-signed pool per sender. ts is "now"; the run is far shorter than the 5-minute window.
const pools = senders.map(() => [] as string[]);
const t0 = Date.now();
for (let i = 0; i < plan.pool; i++) {
  const s = i % senders.length;
  pools[s]!.push(JSON.stringify(buildEnvelope(senders[s]!, plan.to, "chat", content, { id: newMessageId(t0), ts: t0 })));
}
let signedLive = 0;
function nextBody(s: number): string {
  const b = pools[s]!.pop();
  if (b !== undefined) return b;
  signedLive++;
  const now = Date.now();
  return JSON.stringify(buildEnvelope(senders[s]!, plan.to, "chat", content, { id: newMessageId(now), ts: now }));
}

function post(s: number): Promise<{ status: number; body: string }> {
  const sender = senders[s]!;
  const body = Buffer.from(nextBody(s));
  return new Promise((resolve) => {
    const req = request({
      host: plan.target, family: 6, port: plan.port, method: "POST", path: "/v2/message", agent: sender.agent,
      localAddress: plan.bind ? sender.address : undefined,
      headers: { "Content-Type": "application/json", "Content-Length": body.length },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", () => resolve({ status: -1, body: "" }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ status: -1, body: e.code ?? e.message }));
    req.end(body);
  });
}

const lat: number[] = [];
const statuses: Record<string, number> = {};
let okCount = 0;
let dupCount = 0;
let recording = false;
let stop = false;
let rr = 0;

async function worker(w: number): Promise<void> {
  while (!stop) {
    // With one request in flight the senders take turns; otherwise each worker belongs to one sender.
    const s = plan.inFlight === 1 ? rr++ % senders.length : w % senders.length;
    const start = performance.now();
    const r = await post(s);
    const ms = performance.now() - start;
    if (!recording) continue;
    const key = r.status === -1 ? `net:${r.body}` : String(r.status);
    statuses[key] = (statuses[key] ?? 0) + 1;
    if (r.status === 200) {
      if (r.body.includes('"duplicate":true')) dupCount++;
      else okCount++;
      lat.push(ms);
    }
  }
}

async function paced(): Promise<void> {
  const interval = 1000 / plan.ratePerSec!;
  let outstanding = 0;
  let next = performance.now();
  const inflight = new Set<Promise<void>>();
  while (!stop) {
    const now = performance.now();
    if (now < next) {
      await new Promise((r) => setTimeout(r, Math.max(0, next - now)));
      continue;
    }
    next += interval;
    if (outstanding >= plan.inFlight) continue; // over capacity: skip this slot (counted as missed)
    outstanding++;
    const s = rr++ % senders.length;
    const start = performance.now();
    const p = post(s).then((r) => {
      outstanding--;
      if (!recording) return;
      const key = r.status === -1 ? `net:${r.body}` : String(r.status);
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (r.status === 200) {
        okCount++;
        lat.push(performance.now() - start);
      }
    });
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
}

const runs = plan.ratePerSec ? [paced()] : Array.from({ length: plan.inFlight }, (_, w) => worker(w));
await new Promise((r) => setTimeout(r, plan.warmupMs));
recording = true;
const started = performance.now();
await new Promise((r) => setTimeout(r, plan.durationMs));
const elapsed = performance.now() - started;
recording = false;
stop = true;
await Promise.all(runs);
for (const s of senders) s.agent.destroy();

lat.sort((a, b) => a - b);
const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : null);
process.stdout.write(
  `${JSON.stringify({
    accepted: okCount,
    duplicates: dupCount,
    perSec: (okCount / elapsed) * 1000,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: lat.length ? lat[lat.length - 1] : null,
    elapsedMs: elapsed,
    statuses,
    signedLive,
  })}\n`,
  () => process.exit(0),
);
