/**
 * The client half of test/integration/hostile.slow-clients.test.ts, run inside the node's namespace. Argument: JSON
 * `{target, port, sources: [address], many}`. Runs these at once and prints one JSON report of what the server did:
 *   slowHeaders: headers dripped one byte a second; slowBody: a declared body dripped one byte a second;
 *   keepAliveIdle: one ping, then silence; idleNoRequest: connect and say nothing;
 *   many: `many` idle connections spread over the sources: how many the server keeps, and for how long;
 *   foreign: `foreignMany` idle connections from `foreignSources` (outside 200::/7), the same way;
 *   afterwards: a fresh ping (the server still serves).
 * Times are ms from the start of each scenario until the server closed the socket; `status` is the first answer.
 */
import { connect, type Socket } from "node:net";
import { newNonce } from "../../src/core/wire.ts";

const a = JSON.parse(process.argv[2]!) as { target: string; port: number; sources: string[]; probeSource: string; many: number; foreignSources: string[]; foreignMany: number };
const LIMIT_MS = 70_000;

function open(src: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: a.target, port: a.port, family: 6, localAddress: src });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Resolves when the server closes the socket (or LIMIT_MS passes). */
function watch(s: Socket, t0: number): Promise<{ closedAfterMs: number | null; status: number | null; reply: string }> {
  return new Promise((resolve) => {
    let reply = "";
    s.on("data", (d: Buffer) => (reply += d.toString("latin1")));
    s.on("error", () => {});
    const timer = setTimeout(() => {
      resolve({ closedAfterMs: null, status: status(reply), reply: reply.slice(0, 300) });
      s.destroy();
    }, LIMIT_MS);
    s.on("close", () => {
      clearTimeout(timer);
      resolve({ closedAfterMs: Math.round(performance.now() - t0), status: status(reply), reply: reply.slice(0, 300) });
    });
  });
}
function status(reply: string): number | null {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(reply);
  return m ? Number(m[1]) : null;
}

function drip(s: Socket, text: string, everyMs: number): () => void {
  let i = 0;
  const t = setInterval(() => {
    if (i >= text.length || s.destroyed) return clearInterval(t);
    s.write(text[i++]!);
  }, everyMs);
  return () => clearInterval(t);
}

async function slowHeaders() {
  const s = await open(a.sources[0]!);
  const t0 = performance.now();
  s.write("POST /v2/message HTTP/1.1\r\nHost: x\r\n");
  const stop = drip(s, `X-Slow: ${"a".repeat(200)}\r\n`, 1_000);
  const r = await watch(s, t0);
  stop();
  return r;
}

async function slowBody() {
  const s = await open(a.sources[0]!);
  const t0 = performance.now();
  s.write("POST /v2/message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{");
  const stop = drip(s, "x".repeat(399), 1_000);
  const r = await watch(s, t0);
  stop();
  return r;
}

async function keepAliveIdle() {
  const s = await open(a.sources[1 % a.sources.length]!);
  const t0 = performance.now();
  s.write(`GET /v2/ping?nonce=${newNonce()} HTTP/1.1\r\nHost: x\r\n\r\n`);
  return watch(s, t0);
}

async function idleNoRequest() {
  const s = await open(a.sources[1 % a.sources.length]!);
  return watch(s, performance.now());
}

async function many(sources: string[], count: number) {
  const t0 = performance.now();
  const socks: Socket[] = [];
  const closes: ReturnType<typeof watch>[] = [];
  let refused = 0;
  for (let i = 0; i < count; i++) {
    try {
      const s = await open(sources[i % sources.length]!);
      socks.push(s);
      // At once: the server may drop a socket over its caps right after accepting it. Each socket is timed from its
      // own open, not from the first: opening 2100 can itself take seconds on a busy machine.
      closes.push(watch(s, performance.now()));
    } catch {
      refused++;
    }
  }
  const openedMs = Math.round(performance.now() - t0);
  await new Promise((r) => setTimeout(r, 2_000));
  const openAfter2s = socks.filter((s) => !s.destroyed && s.readyState === "open").length;
  // While the flooders hold what they can: is a peer from another source still served?
  const probe = await ping(a.probeSource);
  const results = await Promise.all(closes);
  const times = results.map((r) => r.closedAfterMs).filter((x): x is number => x !== null).sort((x, y) => x - y);
  return {
    attempted: count, refused, openedMs, openAfter2s, pingWhileHeld: probe,
    // Closed within 2 s of their own open: dropped over a cap (the kept ones wait for the 10 s headers timeout).
    closedEarly: times.filter((t) => t < 2_000).length,
    stillOpenAtLimit: results.filter((r) => r.closedAfterMs === null).length,
    lastCloseMs: times[times.length - 1] ?? null,
    medianCloseMs: times[Math.floor(times.length / 2)] ?? null,
  };
}

async function ping(src: string): Promise<number | null> {
  try {
    const s = await open(src);
    const w = watch(s, performance.now());
    s.write(`GET /v2/ping?nonce=${newNonce()} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const timeout = new Promise<{ status: null }>((r) => setTimeout(() => r({ status: null }), 5_000));
    const r = await Promise.race([w, timeout]);
    s.destroy();
    return r.status;
  } catch {
    return null;
  }
}

const [h, b, k, i, m, f] = await Promise.all([slowHeaders(), slowBody(), keepAliveIdle(), idleNoRequest(), many(a.sources, a.many), many(a.foreignSources, a.foreignMany)]);
const afterwards = await ping(a.sources[0]!);
process.stdout.write(`${JSON.stringify({ slowHeaders: h, slowBody: b, keepAliveIdle: k, idleNoRequest: i, many: m, foreign: f, afterwards })}\n`, () => process.exit(0));
