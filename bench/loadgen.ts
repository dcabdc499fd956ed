/**
 * Load generator for `npm run bench`, run inside the sender namespace. Argument: JSON (see LoadPlan). Posts signed
 * v2 envelopes from several 200::/7 source addresses (keep-alive connections per sender, bound with localAddress),
 * keeping `inFlight` requests outstanding (or pacing at `ratePerSec`), and prints one JSON line of results.
 *
 * Envelopes are signed before the clock starts (a pool), so the generator's own signing does not eat the CPU the
 * server under test needs; if the pool runs out it signs on the fly (reported as `signedLive`).
 */
import { connect, type Socket } from "node:net";
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
  return { ...kp, address };
});
const content = "x".repeat(plan.contentBytes ?? 120);

// Pre-signed pool per sender, as whole HTTP requests. ts is "now"; the run is far shorter than the 5-minute window.
function requestBytes(s: number, now: number): Buffer {
  const body = Buffer.from(JSON.stringify(buildEnvelope(senders[s]!, plan.to, "chat", content, { id: newMessageId(now), ts: now })));
  const head = `POST /v2/message HTTP/1.1\r\nHost: [${plan.target}]:${plan.port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), body]);
}
const pools = senders.map(() => [] as Buffer[]);
const t0 = Date.now();
for (let i = 0; i < plan.pool; i++) pools[i % senders.length]!.push(requestBytes(i % senders.length, t0));
let signedLive = 0;
function nextRequest(s: number): Buffer {
  const b = pools[s]!.pop();
  if (b !== undefined) return b;
  signedLive++;
  return requestBytes(s, Date.now());
}

// A minimal HTTP/1.1 keep-alive client (one request at a time per connection): Node's http client costs the shared
// CPU about 150 µs per request, which on a small machine the server under test would otherwise lose.
interface Reply {
  status: number;
  body: string;
}
class Conn {
  readonly socket: Socket;
  closed = false;
  #buf: Buffer = Buffer.alloc(0);
  #waiting: ((r: Reply) => void) | undefined;

  constructor(localAddress: string | undefined) {
    this.socket = connect({ host: plan.target, port: plan.port, family: 6, localAddress, noDelay: true });
    this.socket.setTimeout(20_000, () => this.socket.destroy(new Error("timeout")));
    this.socket.on("data", (c: Buffer) => this.#data(c));
    this.socket.on("error", (e: NodeJS.ErrnoException) => this.#end({ status: -1, body: e.code ?? e.message }));
    this.socket.on("close", () => this.#end({ status: -1, body: "closed" }));
  }

  send(request: Buffer): Promise<Reply> {
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.socket.write(request);
    });
  }

  #data(c: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, c]) : c;
    const end = this.#buf.indexOf("\r\n\r\n");
    if (end === -1) return;
    const head = this.#buf.toString("latin1", 0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.#buf.length < end + 4 + length) return;
    const reply = { status: Number(head.slice(9, 12)), body: this.#buf.toString("utf8", end + 4, end + 4 + length) };
    this.#buf = this.#buf.subarray(end + 4 + length);
    if (/\r\nconnection: *close/i.test(head)) this.closed = true;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.(reply);
  }

  #end(r: Reply): void {
    this.closed = true;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.(r);
  }
}

const idle = senders.map(() => [] as Conn[]);

async function post(s: number): Promise<Reply> {
  const request = nextRequest(s);
  // A kept-alive connection the server closed while it sat idle (its keep-alive timeout) is dropped, not reused.
  let conn = idle[s]!.pop();
  while (conn?.closed) conn = idle[s]!.pop();
  conn ??= new Conn(plan.bind ? senders[s]!.address : undefined);
  const r = await conn.send(request);
  if (conn.closed) conn.socket.destroy();
  else idle[s]!.push(conn);
  return r;
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
const cpu0 = process.cpuUsage();
const started = performance.now();
await new Promise((r) => setTimeout(r, plan.durationMs));
const elapsed = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
recording = false;
stop = true;
await Promise.all(runs);
for (const conns of idle) for (const c of conns) c.socket.destroy();

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
    /** This generator's own CPU per answered request while recording (it shares the machine with the server). */
    cpuUsPerRequest: (cpu.user + cpu.system) / Math.max(1, Object.values(statuses).reduce((a, b) => a + b, 0)),
  })}\n`,
  () => process.exit(0),
);
