/**
 * The client half of test/integration/fuzz.http.test.ts, run inside the node's namespace (real sockets). Argument:
 * JSON `{seed, budgetMs, target, port, nodeKey, senders: [seedHex], foreign}`; every sender's derived address and
 * `foreign` (an address outside 200::/7) must be on an interface. Sends a seeded mix of valid, replayed, mutated and
 * malformed requests, checks each answer, and prints one JSON report:
 *   {cases, statuses, fiveXX: [...], wrongAccepts: [...], badReceipts: [...], legit: [{peer,id,kind,content}], ...}
 * `legit` lists every message the node acknowledged that was really signed by us as sent: the test compares it with
 * the node's inbox afterwards.
 * The first half of the senders only ever sends well-signed messages (their answers are checked exactly); the other
 * half sends everything that may carry a forged signature, since the node rightly shuts a forger out for a while.
 */
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { buildEnvelope, decodeJsonBody, newMessageId, newNonce, parseEnvelope, parsePingProof, parseReceipt, verifyEnvelope, verifyPingProof, verifyReceipt, type Envelope } from "../../src/core/wire.ts";
import { buildV1Message, parseV1Message, v1MessageId, verifyV1, type V1Message } from "../../src/core/wire-v1.ts";
import { Rng, duplicateMember, mutateBytes, mutateObject, randomString, randomValue } from "./fuzz-gen.ts";

interface Args { seed: number; budgetMs: number; target: string; port: number; nodeKey: string; senders: string[]; foreign: string }
const a = JSON.parse(process.argv[2]!) as Args;
const root = new Rng(a.seed);
const senders = a.senders.map((hex) => {
  const kp = keyPairFromSeed(Buffer.from(hex, "hex"));
  const address = formatIPv6(deriveAddress(kp.publicKey));
  return { ...kp, address, agent: new Agent({ keepAlive: true, maxSockets: 4 }) };
});
const half = Math.max(1, senders.length >> 1);
/** A sender that never forges (answers to it are checked exactly), or one that may (only 5xx and wrong accepts count). */
const honest = (rng: Rng) => rng.int(half);
const forger = (rng: Rng) => (senders.length > 1 ? half + rng.int(senders.length - half) : 0);
const foreignAgent = new Agent({ keepAlive: true, maxSockets: 2 });
const enc = new TextEncoder();

const report = {
  cases: 0,
  byCategory: {} as Record<string, number>,
  statuses: {} as Record<string, number>,
  fiveXX: [] as string[],
  wrongAccepts: [] as string[],
  badReceipts: [] as string[],
  unexpected: [] as string[],
  /** Messages the node acknowledged (200 with a good receipt, or a 200 to a raw request carrying the envelope). */
  legit: [] as { peer: string; id: string; kind: string; content: string }[],
  /** Every message we signed, in any category: whatever the node stores must be one of these, unchanged. */
  signed: [] as { peer: string; id: string; kind: string; content: string }[],
  netErrors: {} as Record<string, number>,
};
const sentValid: { from: number; body: string }[] = [];

function note(list: string[], what: string): void {
  if (list.length < 20) list.push(what.length > 600 ? `${what.slice(0, 600)}...` : what);
}
function count(status: number | string): void {
  report.statuses[String(status)] = (report.statuses[String(status)] ?? 0) + 1;
}

interface Reply { status: number; body: Buffer; error?: string }
function send(from: number | "foreign", method: string, path: string, body?: Uint8Array, headers: Record<string, string | number> = {}): Promise<Reply> {
  const s = from === "foreign" ? undefined : senders[from]!;
  return new Promise((resolve) => {
    const req = request({
      host: a.target, port: a.port, family: 6, method, path, agent: s ? s.agent : foreignAgent,
      localAddress: s ? s.address : a.foreign,
      headers: body ? { "Content-Type": "application/json", "Content-Length": body.length, ...headers } : headers,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on("error", (e) => resolve({ status: -1, body: Buffer.alloc(0), error: e.message }));
    });
    req.setTimeout(20_000, () => req.destroy(new Error("client timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ status: -1, body: Buffer.alloc(0), error: e.code ?? e.message }));
    req.end(body);
  });
}

function check5xx(r: Reply, what: string): void {
  if (r.status >= 500) note(report.fiveXX, `${r.status} ${r.body.toString().slice(0, 200)} on ${what}`);
}

/** A 200 for /v2/message: the receipt must verify, name this message, and be signed by the node's key. */
function checkReceipt(r: Reply, env: Envelope, what: string): boolean {
  const j = decodeJsonBody(r.body);
  const rec = j.ok ? parseReceipt((j.value as { receipt?: unknown }).receipt) : j;
  if (!rec.ok || !verifyReceipt(rec.value) || rec.value.id !== env.id || rec.value.from !== env.from || rec.value.to !== env.to || rec.value.key !== a.nodeKey) {
    note(report.badReceipts, `${what}: ${r.body.toString().slice(0, 300)}`);
    return false;
  }
  return true;
}

function freshEnvelope(rng: Rng, s: number, content?: string): Envelope {
  const now = Date.now();
  const env = buildEnvelope(senders[s]!, a.target, "chat", content ?? randomString(rng, rng.int(60)).toWellFormed(), { id: newMessageId(now), ts: now });
  report.signed.push({ peer: env.from, id: env.id, kind: env.kind, content: env.content });
  return env;
}
function signedV1(m: V1Message): V1Message {
  report.signed.push({ peer: formatIPv6(deriveAddress(Buffer.from(m.publicKey, "base64"))), id: v1MessageId(m), kind: "chat", content: m.content });
  return m;
}

/** What the server would make of these bytes, if it accepted them (parse + verify). */
function acceptedAs(bytes: Uint8Array): Envelope | undefined {
  const j = decodeJsonBody(bytes);
  if (!j.ok) return undefined;
  const p = parseEnvelope(j.value);
  return p.ok && verifyEnvelope(p.value) ? p.value : undefined;
}

const categories: [string, number, (rng: Rng) => Promise<void>][] = [
  ["valid", 3, async (rng) => {
    const s = honest(rng);
    const env = freshEnvelope(rng, s);
    const body = JSON.stringify(env);
    const r = await send(s, "POST", "/v2/message", enc.encode(body));
    count(r.status);
    check5xx(r, "valid envelope");
    if (r.status !== 200) return note(report.unexpected, `valid envelope got ${r.status} ${r.error ?? r.body.toString().slice(0, 200)}`);
    if (checkReceipt(r, env, "valid")) {
      report.legit.push({ peer: env.from, id: env.id, kind: env.kind, content: env.content });
      sentValid.push({ from: s, body });
    }
  }],
  ["replay", 1, async (rng) => {
    if (sentValid.length === 0) return;
    const { from, body } = rng.pick(sentValid);
    const r = await send(from, "POST", "/v2/message", enc.encode(body));
    count(r.status);
    check5xx(r, "replay");
    if (r.status !== 200 || !r.body.toString().includes('"duplicate":true')) note(report.unexpected, `replay got ${r.status} ${r.body.toString().slice(0, 200)}`);
  }],
  ["mutated", 6, async (rng) => {
    const s = forger(rng);
    const env = freshEnvelope(rng, s);
    const o = env as unknown as Record<string, unknown>;
    const k = rng.int(3);
    const bytes = k === 0 ? enc.encode(JSON.stringify(mutateObject(rng, o))) : k === 1 ? enc.encode(duplicateMember(rng, o)) : mutateBytes(rng, enc.encode(JSON.stringify(o)));
    const r = await send(s, "POST", "/v2/message", bytes);
    count(r.status);
    check5xx(r, `mutated envelope ${Buffer.from(bytes).toString().slice(0, 300)}`);
    if (r.status === 200) {
      const as = acceptedAs(bytes);
      const same = as !== undefined && JSON.stringify(as) === JSON.stringify(env);
      if (!same) note(report.wrongAccepts, `accepted a mutated envelope: ${Buffer.from(bytes).toString().slice(0, 400)}`);
      else if (checkReceipt(r, env, "mutated-but-equal")) report.legit.push({ peer: env.from, id: env.id, kind: env.kind, content: env.content });
    }
  }],
  ["wrong-source", 1, async (rng) => {
    const s = rng.int(senders.length);
    const t = (s + 1 + rng.int(half - 1 || 1)) % half; // another honest source (it is refused, never penalised)
    const env = freshEnvelope(rng, s);
    const useForeign = rng.bool(0.3);
    // A message signed by sender s, posted from another source (another sender, or outside 200::/7).
    const v1 = rng.bool(0.2);
    const body = v1 ? JSON.stringify(signedV1(buildV1Message(senders[s]!, "from someone else", Date.now()))) : JSON.stringify(env);
    const r = await send(useForeign ? "foreign" : t, "POST", v1 ? "/peer/message" : "/v2/message", enc.encode(body));
    count(r.status);
    check5xx(r, "wrong source");
    if (r.status !== 403) note(report.unexpected, `message from the wrong source got ${r.status} ${r.body.toString().slice(0, 200)}`);
  }],
  ["v1", 2, async (rng) => {
    const mutate = rng.bool(0.6);
    const s = mutate ? forger(rng) : honest(rng);
    const m: V1Message = signedV1(buildV1Message(senders[s]!, randomString(rng, rng.int(40)).toWellFormed(), Date.now()));
    const bytes = mutate ? (rng.bool() ? enc.encode(JSON.stringify(mutateObject(rng, m as unknown as Record<string, unknown>))) : mutateBytes(rng, enc.encode(JSON.stringify(m)))) : enc.encode(JSON.stringify(m));
    const r = await send(s, "POST", "/peer/message", bytes);
    count(r.status);
    check5xx(r, `v1 ${Buffer.from(bytes).toString().slice(0, 300)}`);
    if (r.status === 200) {
      const j = decodeJsonBody(bytes);
      const p = j.ok ? parseV1Message(j.value) : j;
      const same = p.ok && verifyV1(p.value) && v1MessageId(p.value) === v1MessageId(m) && p.value.content === m.content && p.value.fromYgg === m.fromYgg;
      if (!same) note(report.wrongAccepts, `accepted a mutated v1 message: ${Buffer.from(bytes).toString().slice(0, 400)}`);
      else report.legit.push({ peer: senders[s]!.address, id: v1MessageId(m), kind: "chat", content: m.content });
    } else if (!mutate) note(report.unexpected, `valid v1 got ${r.status} ${r.body.toString().slice(0, 200)}`);
  }],
  ["ping", 1, async (rng) => {
    const s = rng.int(senders.length);
    const good = newNonce();
    const nonce = rng.bool(0.5) ? good : rng.bool() ? Buffer.from(mutateBytes(rng, enc.encode(good))).toString("latin1") : randomString(rng, rng.int(90));
    const q = rng.bool(0.9) ? `nonce=${rng.bool(0.8) ? encodeURIComponent(nonce.toWellFormed()) : nonce}` : rng.pick(["", "nonce", "nonce=&nonce=x", "%zz", "nonce=%E0%A4%A", "a=b&nonce=" + good]);
    const r = await send(s, "GET", `/v2/ping?${q}`.replace(/[^\x21-\x7e]/g, "_"));
    count(r.status);
    check5xx(r, `ping ?${q}`);
    if (r.status === 200) {
      const j = decodeJsonBody(r.body);
      const p = j.ok ? parsePingProof(j.value) : j;
      const sentNonce = new URLSearchParams(q.replace(/[^\x21-\x7e]/g, "_")).get("nonce") ?? "";
      if (!p.ok || !verifyPingProof(p.value, sentNonce) || p.value.key !== a.nodeKey) note(report.unexpected, `ping proof did not verify for ?${q}`);
    }
  }],
  ["routes", 1, async (rng) => {
    const s = rng.int(senders.length);
    const method = rng.pick(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]);
    const path = rng.pick(["/", "/v2/message", "/v2/ping", "/peer/message", "/peer/ping", "/v2/message/", "/V2/MESSAGE", "/v2/../peer/ping", "//v2/ping", "/v3/message", "/v2/message?x=1", "/inbox", "/peers", `/${randomString(rng, 8).replace(/[^\x21-\x7e]/g, "")}`]);
    const body = rng.bool(0.3) ? enc.encode(JSON.stringify(randomValue(rng)) ?? "null") : undefined;
    const r = await send(s, method, path, body);
    count(r.status);
    check5xx(r, `${method} ${path}`);
  }],
  ["raw", 3, async (rng) => {
    const s = forger(rng);
    const env = JSON.stringify(freshEnvelope(rng, s));
    const base = rng.pick([
      `POST /v2/message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(env)}\r\n\r\n${env}`,
      `POST /v2/message HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(env).toString(16)}\r\n${env}\r\n0\r\n\r\n`,
      `GET /v2/ping?nonce=${newNonce()} HTTP/1.1\r\nHost: x\r\n\r\n`,
      `POST /v2/message HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{}`,
      `POST /v2/message HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}`,
      `POST /v2/message HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nffffffffffffffff\r\n`,
      `GET / HTTP/1.0\r\n\r\n`,
      `POST /peer/message HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(20_000)}\r\n\r\n`,
      `GET /v2/ping HTTP/1.1\r\nHost: x\r\n\r\nGET /peer/ping HTTP/1.1\r\nHost: x\r\n\r\n`,
    ]);
    const bytes = rng.bool(0.7) ? mutateBytes(rng, enc.encode(base)) : enc.encode(base);
    const r = await raw(s, bytes);
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(r);
    count(m ? Number(m[1]) : "no-response");
    if (m && Number(m[1]) >= 500) note(report.fiveXX, `${m[1]} on raw ${JSON.stringify(Buffer.from(bytes).toString("latin1").slice(0, 300))}: ${r.slice(0, 200)}`);
    // Every pipelined answer counts, not just the first.
    for (const x of r.matchAll(/HTTP\/1\.[01] (5\d\d)/g)) if (x.index !== 0) note(report.fiveXX, `${x[1]} (pipelined) on raw ${JSON.stringify(Buffer.from(bytes).toString("latin1").slice(0, 300))}`);
    // Any 200 (pipelining counts) to bytes carrying our envelope's id is an acknowledgement of that message; the
    // inbox comparison then checks it was stored, and stored unchanged.
    const envelope = JSON.parse(env) as Envelope;
    if (/HTTP\/1\.[01] 200/.test(r) && Buffer.from(bytes).toString("latin1").includes(envelope.id) && /message/.test(Buffer.from(bytes).toString("latin1"))) {
      if (acceptedAs(enc.encode(env))) report.legit.push({ peer: envelope.from, id: envelope.id, kind: envelope.kind, content: envelope.content });
    }
  }],
];

/** Writes bytes on a fresh socket, half-closes, and collects whatever comes back (at most 1 s after the last byte). */
function raw(s: number, bytes: Uint8Array): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host: a.target, port: a.port, family: 6, localAddress: senders[s]!.address });
    let out = "";
    let timer = setTimeout(() => sock.destroy(), 3_000);
    sock.on("connect", () => sock.end(bytes));
    sock.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      clearTimeout(timer);
      timer = setTimeout(() => sock.destroy(), 1_000);
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      report.netErrors[e.code ?? e.message] = (report.netErrors[e.code ?? e.message] ?? 0) + 1;
    });
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

const weights = categories.reduce((n, c) => n + c[1], 0);
const deadline = performance.now() + a.budgetMs;
const WORKERS = 8;
// One independent generator per worker: each worker's request stream is a function of the seed alone.
async function worker(rng: Rng): Promise<void> {
  while (performance.now() < deadline) {
    let x = rng.int(weights);
    const c = categories.find((c) => (x -= c[1]) < 0)!;
    report.byCategory[c[0]] = (report.byCategory[c[0]] ?? 0) + 1;
    report.cases++;
    await c[2](rng);
  }
}
await Promise.all(Array.from({ length: WORKERS }, () => worker(root.fork())));
for (const s of senders) s.agent.destroy();
foreignAgent.destroy();
process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
