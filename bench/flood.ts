/**
 * Flood generator for `npm run bench`: hammers the node with requests it must refuse, over raw pipelined HTTP/1.1
 * (the cheapest way to offer many requests per second from one process). Two kinds of source:
 *   badsig: a 200::/7 source sending well-formed envelopes from its own address with a random key and signature
 *           (the node must parse, check and verify each one before refusing it: the expensive refusal);
 *   nonygg: a source outside 200::/7 (refused at step 1, before the body is read).
 * Argument: JSON `{target, port, to, sources:[{address, kind}], ratePerSec, durationMs}`. Prints one JSON line.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";
import { newMessageId } from "../src/core/wire.ts";

interface Plan {
  target: string;
  port: number;
  to: string;
  sources: { address: string; kind: "badsig" | "nonygg" }[];
  ratePerSec: number;
  durationMs: number;
}
const plan = JSON.parse(process.argv[2]!) as Plan;

function requestFor(src: Plan["sources"][number]): Buffer {
  const now = Date.now();
  const env = {
    v: 2, id: newMessageId(now), from: src.address, to: plan.to, key: randomBytes(32).toString("base64"), ts: now,
    kind: "chat", content: "flood", sig: randomBytes(64).toString("base64"),
  };
  const body = JSON.stringify(env);
  return Buffer.from(`POST /v2/message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

// A few distinct requests per source, reused round-robin (the random signature never verifies anyway).
const conns: { src: Plan["sources"][number]; reqs: Buffer[]; sock?: Socket; outstanding: number; n: number }[] = [];
for (const src of plan.sources) for (let c = 0; c < 2; c++) conns.push({ src, reqs: [requestFor(src), requestFor(src), requestFor(src)], outstanding: 0, n: 0 });

const statuses: Record<string, number> = {};
let sent = 0;
let answered = 0;
let connects = 0;
let connErrors = 0;
let stopped = false;
const MAX_OUTSTANDING = 32;

function open(c: (typeof conns)[number]): void {
  connects++;
  const sock = connect({ host: plan.target, port: plan.port, family: 6, localAddress: c.src.address });
  c.sock = sock;
  c.outstanding = 0;
  let tail = "";
  sock.setNoDelay(true);
  sock.on("data", (d: Buffer) => {
    const text = tail + d.toString("latin1");
    const re = /HTTP\/1\.1 (\d{3})/g;
    let m: RegExpExecArray | null;
    let last = 0;
    while ((m = re.exec(text))) {
      statuses[m[1]!] = (statuses[m[1]!] ?? 0) + 1;
      answered++;
      c.outstanding = Math.max(0, c.outstanding - 1);
      last = re.lastIndex;
    }
    tail = text.slice(Math.max(last, text.length - 16));
  });
  sock.on("error", () => connErrors++);
  sock.on("close", () => {
    if (c.sock === sock) c.sock = undefined;
  });
}

const started = performance.now();
let rr = 0;
const tick = setInterval(() => {
  if (stopped) return;
  const due = Math.floor(((performance.now() - started) / 1000) * plan.ratePerSec) - sent;
  let budget = Math.min(due, 4000);
  let idle = 0;
  while (budget > 0 && idle < conns.length) {
    const c = conns[rr++ % conns.length]!;
    if (!c.sock || c.sock.destroyed) {
      open(c);
      idle++;
      continue;
    }
    if (c.sock.connecting || c.outstanding >= MAX_OUTSTANDING || c.sock.writableLength > 256 * 1024) {
      idle++;
      continue;
    }
    idle = 0;
    c.sock.write(c.reqs[c.n++ % c.reqs.length]!);
    c.outstanding++;
    sent++;
    budget--;
  }
  // Unspent budget carries over (capped per tick); `sent` is what was really offered.
}, 5);

await new Promise((r) => setTimeout(r, plan.durationMs));
stopped = true;
clearInterval(tick);
const elapsed = performance.now() - started;
for (const c of conns) c.sock?.destroy();
process.stdout.write(`${JSON.stringify({ sentPerSec: (sent / elapsed) * 1000, answeredPerSec: (answered / elapsed) * 1000, connects, connErrors, statuses })}\n`, () => process.exit(0));
