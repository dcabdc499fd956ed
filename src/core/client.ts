/**
 * The peer client: one HTTP exchange with another node, with short connect timeouts (an unknown 200:: address does
 * not refuse, it hangs) and a cap on what we read back. Classifies every outcome for the outbox: delivered (with a
 * verified receipt), retry later, failed for good, or "this peer speaks only v1".
 */
import { Agent, request } from "node:http";
import { keyMatchesAddress, parseIPv6 } from "./address.ts";
import { isErrorCode, P2PError } from "./errors.ts";
import { escapeControls } from "./text.ts";
import {
  decodeJsonBody,
  newNonce,
  parsePingProof,
  parseReceipt,
  verifyPingProof,
  verifyReceipt,
  type Envelope,
  type Receipt,
} from "./wire.ts";
import type { V1Message } from "./wire-v1.ts";

export interface Target {
  address: string;
  port: number;
  /** Source address to bind (tests with several 200::/7 addresses in one namespace). */
  localAddress?: string;
}

export const CONNECT_TIMEOUT_MS = 5_000;
export const RESPONSE_TIMEOUT_MS = 15_000;
const MAX_RESPONSE_BYTES = 64 * 1024;

// One keep-alive pool for the whole process: repeated sends to a peer reuse the connection.
const agent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16, timeout: 30_000 });

interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

type ExchangeOptions = { connectTimeoutMs?: number; timeoutMs?: number };

/** One request. Network failures become P2P_ERR_UNREACHABLE with the reason; never hangs past the timeouts. */
export async function httpExchange(t: Target, method: "GET" | "POST", path: string, body?: string, o: ExchangeOptions = {}): Promise<HttpReply> {
  try {
    return await exchange(t, method, path, body, o, agent);
  } catch (err) {
    // A pooled keep-alive connection that the peer had closed (it restarted, or its idle timeout ended just then)
    // fails at once: sent again, once, on a new connection. Safe even if the first copy got through: every request
    // here is a ping or a message the receiver deduplicates.
    if (!(err instanceof StaleConnection)) throw err;
    return exchange(t, method, path, body, o, false);
  }
}

class StaleConnection extends P2PError {}

function exchange(t: Target, method: "GET" | "POST", path: string, body: string | undefined, o: ExchangeOptions, via: Agent | false): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body, "utf8");
    const req = request({
      host: t.address,
      family: 6,
      port: t.port,
      method,
      path,
      agent: via,
      localAddress: t.localAddress,
      headers: payload ? { "Content-Type": "application/json", "Content-Length": payload.length } : {},
    });
    let settled = false;
    const finish = (err: P2PError | undefined, reply?: HttpReply) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(reply!);
    };
    const unreachable = (why: string) => new P2PError("P2P_ERR_UNREACHABLE", `${t.address} port ${t.port}: ${why}`);
    const connectTimer = setTimeout(() => finish(unreachable(`no connection within ${(o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS) / 1000} s`)), o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
    const totalTimer = setTimeout(() => finish(unreachable(`no answer within ${(o.timeoutMs ?? RESPONSE_TIMEOUT_MS) / 1000} s`)), o.timeoutMs ?? RESPONSE_TIMEOUT_MS);
    req.on("socket", (socket) => {
      // A reused keep-alive socket is already connected.
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once("connect", () => clearTimeout(connectTimer));
    });
    let answered = false;
    req.on("error", (err: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && !answered && (err.code === "ECONNRESET" || err.code === "EPIPE");
      finish(stale ? new StaleConnection("P2P_ERR_UNREACHABLE", `${t.address} port ${t.port}: ${connectFailure(err)}`) : unreachable(connectFailure(err)));
    });
    req.on("response", (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) finish(new P2PError("P2P_ERR_BAD_RESPONSE", `${t.address} sent an oversized response`));
        else chunks.push(c);
      });
      res.on("end", () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", (err) => finish(unreachable(err.message)));
    });
    req.end(payload);
  });
}

export type Delivery =
  | { kind: "delivered"; receipt: Receipt | null; storedAt: number; duplicate: boolean }
  /** `otherKey`: a receipt that verifies but is signed by another key than the one pinned for the peer. */
  | { kind: "retry"; reason: string; retryAfterMs?: number; code?: string; otherKey?: string }
  | { kind: "failed"; reason: string; code: string }
  | { kind: "v1-only" };

/** Error codes after which retrying the same message cannot help (the outbox marks it failed at once). */
export const PERMANENT_CODES: ReadonlySet<string> = new Set([
  "P2P_ERR_WRONG_RECIPIENT",
  "P2P_ERR_KEY_MISMATCH",
  "P2P_ERR_PEER_BLOCKED",
  "P2P_ERR_BAD_SIGNATURE",
  "P2P_ERR_BODY_TOO_LARGE",
  "P2P_ERR_CONTENT_TOO_LARGE",
  "P2P_ERR_UNSUPPORTED_KIND",
]);

// The shape of our own error codes (errors.ts); a peer's `error` that does not match is not taken as a code.
const PEER_CODE = /^[A-Z0-9_]{1,64}$/;
const PEER_MESSAGE_MAX_CHARS = 300;

/**
 * A peer's refusal as `<code>: <detail>`, for the outbox, the CLI, slash-command replies and the agent's tool result.
 * Everything in the body is the peer's choice: the code is kept only when it looks like one (else `HTTP_<status>`),
 * and its message is capped, kept to one line with terminal controls made visible, and marked as the peer's words.
 */
function refusal(reply: HttpReply): { code: string; reason: string } {
  const j = decodeJsonBody(reply.body);
  const v = j.ok ? (j.value as { error?: unknown; message?: unknown }) : undefined;
  const code = typeof v?.error === "string" && PEER_CODE.test(v.error) ? v.error : `HTTP_${reply.status}`;
  const detail = typeof v?.message === "string" ? `peer said: ${escapeControls(v.message.slice(0, PEER_MESSAGE_MAX_CHARS), { oneLine: true })}` : `HTTP ${reply.status}`;
  return { code, reason: `${code}: ${detail}` };
}

/**
 * What a stale-timestamp refusal means for the user. A receiver of ours says "timestamp <ours> is more than N s from
 * now (<its>)": the two numbers give the difference of the clocks (only numbers are read from the peer's words).
 */
function clockAdvice(reason: string): string {
  const m = /timestamp (\d{1,16}) is more than \d+ s from now \((\d{1,16})\)/.exec(reason);
  const apart = m ? `this machine's clock is ${clockOffsetText(Number(m[1]) - Number(m[2]))} the peer's` : "this machine's clock and the peer's differ by more than the protocol allows";
  return `${apart}: one of them is wrong; check both (timedatectl, NTP). The message is retried and goes once they agree`;
}

/** "about 3600 s ahead of" / "about 90 s behind" for a clock difference in ms (positive: ours is ahead). */
export function clockOffsetText(ms: number): string {
  return `about ${Math.round(Math.abs(ms) / 1000)} s ${ms >= 0 ? "ahead of" : "behind"}`;
}

function classifyRefusal(reply: HttpReply): Delivery {
  const { code, reason } = refusal(reply);
  if (reply.status === 429 || reply.status === 503) {
    const after = Number(reply.headers["retry-after"]);
    return { kind: "retry", reason, code, retryAfterMs: Number.isFinite(after) ? Math.min(after, 3600) * 1000 : undefined };
  }
  if (reply.status >= 500 || reply.status === 408) return { kind: "retry", reason, code };
  // Known permanent refusals and any other 4xx (the peer understood and said no): retrying the same bytes won't help.
  // Two exceptions, both about this side: a stale timestamp (the next attempt is signed afresh with the current
  // time), and a message that left from another address than ours (a local routing problem: the mesh interface was
  // down or lacks our address; it goes once that is fixed, and the reason says where to look).
  if (code === "P2P_ERR_STALE_TIMESTAMP") return { kind: "retry", reason: `${reason} (${clockAdvice(reason)})`, code };
  if (code === "P2P_ERR_SENDER_MISMATCH") return { kind: "retry", reason: `${reason} (this machine sent it from another address than its own: is its Yggdrasil interface up with this node's address? \`status\` shows it)`, code };
  if (PERMANENT_CODES.has(code) || (reply.status >= 400 && reply.status < 500) || !isErrorCode(code)) return { kind: "failed", reason, code };
  return { kind: "retry", reason, code };
}

/**
 * Sends one v2 envelope. A 200 counts only with a receipt that verifies, names this message, and is signed by a key
 * bound to the recipient: the key we pinned for it, or with none pinned yet, any (derived, or pinned now: TOFU).
 */
export async function deliverV2(t: Target, env: Envelope, pinnedKey: string | null): Promise<Delivery> {
  let reply: HttpReply;
  try {
    reply = await httpExchange(t, "POST", "/v2/message", JSON.stringify(env));
  } catch (err) {
    return { kind: "retry", reason: (err as Error).message, code: (err as P2PError).code };
  }
  if (reply.status === 404) return { kind: "v1-only" };
  if (reply.status !== 200) return classifyRefusal(reply);
  const j = decodeJsonBody(reply.body);
  const obj = j.ok ? (j.value as { receipt?: unknown; duplicate?: unknown }) : undefined;
  const r = parseReceipt(obj?.receipt);
  if (!r.ok) return { kind: "retry", reason: `P2P_ERR_BAD_RESPONSE: receipt invalid (${r.code})`, code: "P2P_ERR_BAD_RESPONSE" };
  const receipt = r.value;
  const problem = receiptProblem(receipt, env, pinnedKey);
  if (problem === OTHER_KEY) {
    // The peer (whoever holds its address now) stored the message, but under another key: a re-created node behind a
    // system daemon, say. Not proof of delivery to the peer we know; the user decides (status shows the mismatch).
    const reason = `P2P_ERR_KEY_MISMATCH: the peer answered with key ${receipt.key}, not the one pinned for it; if its owner re-created its node, confirm that key with them, then \`add ${env.to} --key ${receipt.key}\` (the message is retried meanwhile)`;
    return { kind: "retry", reason, code: "P2P_ERR_KEY_MISMATCH", otherKey: receipt.key };
  }
  if (problem) return { kind: "retry", reason: `P2P_ERR_BAD_RESPONSE: ${problem}`, code: "P2P_ERR_BAD_RESPONSE" };
  return { kind: "delivered", receipt, storedAt: receipt.stored, duplicate: obj?.duplicate === true };
}

const OTHER_KEY = "receipt signed by a key that is not the one pinned for the peer";

export function receiptProblem(r: Receipt, env: Envelope, pinnedKey: string | null): string | undefined {
  if (r.id !== env.id || r.from !== env.from || r.to !== env.to) return "receipt names another message";
  if (!verifyReceipt(r)) return "receipt signature does not verify";
  // The key pinned for the peer is the only one (protocol.md section 12), even against a key that derives to the
  // address: the same rule the receiver applies to incoming messages, and what `add --key` promises.
  if (pinnedKey !== null) return r.key === pinnedKey ? undefined : OTHER_KEY;
  return undefined; // unpinned: a derived key is bound by construction, any other is pinned now (outbox.ts, TOFU)
}

/** Sends one legacy v1 message. v1 answers `{"ok":true}` and has no receipt. */
export async function deliverV1(t: Target, m: V1Message): Promise<Delivery> {
  let reply: HttpReply;
  try {
    reply = await httpExchange(t, "POST", "/peer/message", JSON.stringify(m));
  } catch (err) {
    return { kind: "retry", reason: (err as Error).message, code: (err as P2PError).code };
  }
  if (reply.status < 200 || reply.status >= 300) return classifyRefusal(reply);
  const j = decodeJsonBody(reply.body);
  if (!j.ok || (j.value as { ok?: unknown } | null)?.ok !== true) {
    return { kind: "retry", reason: `P2P_ERR_BAD_RESPONSE: HTTP ${reply.status} without v1's {"ok":true}`, code: "P2P_ERR_BAD_RESPONSE" };
  }
  return { kind: "delivered", receipt: null, storedAt: Date.now(), duplicate: false };
}

/**
 * True when the peer's `/peer/ping` answers as a v1 node does (`200 {"ok":true,"ts":<ms>}`) without listing v2 in
 * `versions` (a v2 node lists it); else why not, as text. Asked before a peer that answered 404 is switched to v1.
 */
export async function speaksOnlyV1(t: Target): Promise<true | string> {
  let reply: HttpReply;
  try {
    reply = await httpExchange(t, "GET", "/peer/ping");
  } catch (err) {
    return `its /peer/ping did not answer (${(err as Error).message})`;
  }
  const j = decodeJsonBody(reply.body);
  const v = j.ok ? (j.value as { ok?: unknown; ts?: unknown; versions?: unknown } | null) : undefined;
  if (reply.status !== 200 || v?.ok !== true || !Number.isSafeInteger(v.ts)) return `its /peer/ping answer (HTTP ${reply.status}) is not a v1 node's`;
  if (Array.isArray(v.versions) && v.versions.includes(2)) return "its /peer/ping lists v2";
  return true;
}

export interface PingResult {
  address: string;
  publicKey: string;
  versions: number[];
  rttMs: number;
  /** True when the answer is a signed proof over our nonce by a key bound to the address (derived or pinned). */
  verified: boolean;
  keyBinding: "derived" | "pinned" | "unbound" | "none";
  protocol: 1 | 2;
  /** The peer's clock minus ours, from its signed `ts` at the middle of the round trip (v2 only). */
  clockOffsetMs?: number;
}

/** Pings a peer: v2 signed proof bound to a fresh nonce; falls back to the unsigned v1 ping for v1-only peers. */
export async function pingPeer(t: Target, pinnedKey: string | null): Promise<PingResult> {
  const nonce = newNonce();
  const started = performance.now();
  const reply = await httpExchange(t, "GET", `/v2/ping?nonce=${nonce}`);
  const rttMs = performance.now() - started;
  if (reply.status === 404) {
    const v1 = await httpExchange(t, "GET", "/peer/ping");
    if (v1.status < 200 || v1.status >= 300) throw new P2PError("P2P_ERR_PEER_REFUSED", `${t.address} answered ping with HTTP ${v1.status}`);
    return { address: t.address, publicKey: "", versions: [1], rttMs, verified: false, keyBinding: "none", protocol: 1 };
  }
  if (reply.status !== 200) {
    throw new P2PError("P2P_ERR_PEER_REFUSED", `${t.address} refused ping: ${refusal(reply).reason}`);
  }
  const j = decodeJsonBody(reply.body);
  const p = j.ok ? parsePingProof(j.value) : j;
  if (!p.ok) throw new P2PError("P2P_ERR_BAD_RESPONSE", `${t.address} answered ping with an invalid proof (${p.code})`);
  const proof = p.value;
  if (proof.address !== t.address) throw new P2PError("P2P_ERR_BAD_RESPONSE", `ping answered by ${proof.address}, not ${t.address}`);
  if (!verifyPingProof(proof, nonce)) throw new P2PError("P2P_ERR_BAD_RESPONSE", `${t.address}: ping proof does not verify against our nonce`);
  const derived = keyMatchesAddress(Buffer.from(proof.key, "base64"), parseIPv6(t.address)!);
  // As for receipts: a pinned key is the only one, a derived key counts when none is pinned.
  const keyBinding = pinnedKey !== null && proof.key !== pinnedKey ? "none" : derived ? "derived" : pinnedKey === null ? "unbound" : "pinned";
  if (keyBinding === "none") {
    throw new P2PError("P2P_ERR_KEY_MISMATCH", `${t.address} answered with key ${proof.key}, not the one pinned for it`, {
      hint: `if its owner re-created its node, confirm that key with them, then \`add ${t.address} --key ${proof.key}\``,
    });
  }
  const clockOffsetMs = Math.round(proof.ts - (Date.now() - rttMs / 2));
  return { address: proof.address, publicKey: proof.key, versions: proof.versions, rttMs, verified: keyBinding !== "unbound", keyBinding, protocol: 2, clockOffsetMs };
}

/**
 * A socket error as a person reads it, the system's code kept at the end (scripts and searches match on it): a refused
 * connection means no node listens there; no route means this side of the mesh is down.
 */
export function connectFailure(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused: the peer's node is not running, or listens on another port (ECONNREFUSED)";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no route to the peer: is this machine's Yggdrasil running and connected to the mesh? (${err.code})`;
    case "EADDRNOTAVAIL":
      return "this machine has no address to send from (EADDRNOTAVAIL)";
    case "ECONNRESET":
      return "the connection was reset (ECONNRESET)";
    case "ETIMEDOUT":
      return "the connection timed out (ETIMEDOUT)";
    default:
      return err.code ?? err.message;
  }
}
