/**
 * The peer server on `[::]:peer_port`. Every request passes the checks of docs/protocol.md ("Receiver checks") in
 * order, cheap before expensive; every refusal is a status with JSON `{error, message}`. Nothing served here reveals
 * the inbox, the peer list or anything else private: the only endpoints are message intake and ping.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { formatIPv6, isYggdrasilAddress, keyMatchesAddress, parseIPv6 } from "./address.ts";
import { CommitBatcher } from "./batcher.ts";
import { Checkpointer } from "./checkpointer.ts";
import type { NodeConfig } from "./config.ts";
import { ERROR_TABLE, P2PError, type ErrorCode } from "./errors.ts";
import type { KeyPair } from "./keys.ts";
import type { Logger } from "./log.ts";
import { RateLimiter } from "./rate-limit.ts";
import type { InboundSender, Store } from "./store.ts";
import { SignatureThread } from "./sig-thread.ts";
import { verifyBytes } from "./keys.ts";
import { buildPingProof, decodeJsonBody, envelopeSignedParts, parseEnvelope, parseNonce, parseQuery, receiptFor, unsignedReceiptFor, withReceiptSig, type Receipt, type SignedParts } from "./wire.ts";
import { parseV1Message, v1MessageId, v1SignedParts } from "./wire-v1.ts";

export interface PeerServerOptions {
  /** Our signing key and the address we answer for (derived from the key, or the system daemon's address). */
  self: KeyPair & { address: string };
  store: Store;
  config: NodeConfig;
  log: Logger;
  /** Called after a new message from `peer` was committed (not for duplicates). */
  onInbound?: (peer: string) => void;
  /** The event loop serves a host too (OpenClaw's gateway): every commit, a lone message's too, runs in the commit thread. */
  sharedEventLoop?: boolean;
}

const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
const IDLE_SOCKET_TIMEOUT_MS = 30_000;
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_CONNECTIONS = 2048;
/** Open connections one source (a 200::/8 address, or a whole 300::/8 /64) may hold; more are dropped at accept. */
const MAX_CONNECTIONS_PER_SOURCE = 32;
/**
 * Open connections from outside 200::/7, all sources together. They are only ever answered 403 (step 1), so a few
 * suffice for that answer to be seen; per source alone, 64 addresses of one /64 could hold every slot.
 */
const MAX_FOREIGN_CONNECTIONS = 64;
const FOREIGN = "outside 200::/7";
/** How often Node enforces the header and request timeouts (its default, 30 s, would stretch them to 30 s). */
const TIMEOUT_CHECK_INTERVAL_MS = 1_000;
const LISTEN_BACKLOG = 4096;
/** When a peer at its pending quota should try again (the user may accept it meanwhile). */
const PENDING_QUOTA_RETRY_S = 600;
/** Requests' worth of rate budget a forged signature costs its source (at the default 50/s: 10 s of silence). */
const BAD_SIGNATURE_PENALTY = 500;
const PROTOCOL_VERSIONS = [1, 2];
/** Sources remembered as having proved their key (a node talks with far fewer peers than this). */
const MAX_PROVED = 4096;
/** When a sender answered busy (its signature was not checked: too many unproved ones waiting) should try again. */
const BUSY_RETRY_S = 5;

class Refusal {
  readonly code: ErrorCode;
  readonly message: string;
  readonly headers: Record<string, string>;
  constructor(code: ErrorCode, message?: string, headers: Record<string, string> = {}) {
    this.code = code;
    this.message = message ?? ERROR_TABLE[code].text;
    this.headers = headers;
  }
}

export class PeerServer {
  readonly #o: PeerServerOptions;
  readonly #server: Server;
  readonly #limiter: RateLimiter;
  readonly #batcher: CommitBatcher;
  readonly #checkpointer: Checkpointer;
  readonly #sigs: SignatureThread;
  /** Sources whose last signature verified, oldest first (bounded): their messages skip the queue of unproved ones. */
  readonly #proved = new Set<string>();
  /** v2 messages from proved sources between arrival and answer: when more than one, signature work goes to #sigs. */
  #provedAccepting = 0;
  #closing = false;
  readonly #perSource = new Map<string, number>();
  /** Each connection's source, parsed once at accept (every request on it has the same one). */
  readonly #sources = new WeakMap<Socket, Source>();

  constructor(o: PeerServerOptions) {
    this.#o = o;
    this.#limiter = new RateLimiter(o.config.rateLimit);
    this.#checkpointer = new Checkpointer(o.store);
    this.#sigs = new SignatureThread(o.self);
    this.#batcher = new CommitBatcher(o.store, { afterCommit: () => this.#checkpointer.written(), walAutoCheckpoint: Checkpointer.BACKSTOP_PAGES, coming: () => this.#sigs.knownPending, loneInline: !o.sharedEventLoop });
    this.#server = createServer(
      {
        maxHeaderSize: MAX_HEADER_BYTES,
        requestTimeout: REQUEST_TIMEOUT_MS,
        headersTimeout: HEADERS_TIMEOUT_MS,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
      },
      (req, res) => {
        this.#handle(req, res).catch((err) => this.#internalError(res, err));
      },
    );
    this.#server.maxConnections = MAX_CONNECTIONS;
    this.#server.on("connection", (socket: Socket) => this.#admit(socket));
    this.#server.setTimeout(IDLE_SOCKET_TIMEOUT_MS, (socket: Socket) => socket.destroy());
    // Malformed HTTP: answer 400 if the socket is still writable, never crash.
    this.#server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable) return socket.destroy();
      const code: ErrorCode = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "P2P_ERR_REQUEST_TIMEOUT" : err.code === "HPE_HEADER_OVERFLOW" ? "P2P_ERR_HEADERS_TOO_LARGE" : "P2P_ERR_BAD_JSON";
      const body = JSON.stringify({ error: code, message: code === "P2P_ERR_BAD_JSON" ? "malformed HTTP request" : ERROR_TABLE[code].text });
      socket.end(`HTTP/1.1 ${ERROR_TABLE[code].status} Error\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
    // An Expect other than 100-continue: Node would answer 417 with no body; the same answer, in our shape.
    this.#server.on("checkExpectation", (_req: IncomingMessage, res: ServerResponse) => this.#refuse(res, new Refusal("P2P_ERR_EXPECTATION_FAILED"), true));
  }

  /**
   * Caps connections per source before any HTTP parsing: one flooding source cannot starve the others, and sources
   * outside the mesh share one small allowance.
   */
  #admit(socket: Socket): void {
    const source = sourceOf(socket.remoteAddress);
    const key = source.bucket;
    const n = (this.#perSource.get(key) ?? 0) + 1;
    // A source that was already answered 429 and is still over its rate gets no HTTP at all until it slows down:
    // dropping a connection costs far less than parsing and refusing a request, which keeps others served.
    if (n > (key === FOREIGN ? MAX_FOREIGN_CONNECTIONS : MAX_CONNECTIONS_PER_SOURCE) || this.#limiter.shouldDrop(key)) {
      socket.destroy();
      return;
    }
    this.#perSource.set(key, n);
    this.#sources.set(socket, source);
    socket.once("close", () => {
      const left = (this.#perSource.get(key) ?? 1) - 1;
      if (left <= 0) this.#perSource.delete(key);
      else this.#perSource.set(key, left);
    });
  }

  listen(port: number, host = "::"): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const another = "choose another port (declaw run --port, or peer_port in the config)";
        reject(
          err.code === "EADDRINUSE"
            ? new P2PError("P2P_ERR_PORT_IN_USE", `peer port ${port} is already in use`, {
                hint: `another program listens on it (another declaw run, or an OpenClaw gateway's node): stop it, or ${another}`,
              })
            : err.code === "EACCES"
              ? new P2PError("P2P_ERR_CONFIG", `peer port ${port} may not be used by this user: ports below 1024 need root`, { hint: `${another} of 1024 or more; the default is 8099` })
              : err,
        );
      };
      this.#server.once("error", onError);
      this.#server.listen({ port, host, ipv6Only: false, backlog: LISTEN_BACKLOG }, () => {
        this.#server.off("error", onError);
        const addr = this.#server.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  }

  /** Stops accepting, lets in-flight requests finish briefly, then drops what is left. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    this.#server.closeIdleConnections();
    const timer = setTimeout(() => this.#server.closeAllConnections(), 2_000);
    await closed;
    clearTimeout(timer);
    this.#sigs.close();
    await this.#batcher.close();
    await this.#checkpointer.close();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // 1. The source must be a Yggdrasil address. No switch turns this off.
    const { src, text: source, bucket } = this.#sources.get(req.socket) ?? sourceOf(req.socket.remoteAddress);
    if (!src || !isYggdrasilAddress(src)) {
      this.#limiter.take(bucket); // counted too, so that a flood from outside the mesh is dropped at accept
      return this.#refuse(res, new Refusal("P2P_ERR_SOURCE_NOT_YGGDRASIL"), true);
    }
    if (this.#closing) return this.#refuse(res, new Refusal("P2P_ERR_SHUTTING_DOWN"), true);

    // 2. Rate limit per source (a 300::/8 subnet belongs to one key: limit it as one source).
    const wait = this.#limiter.take(bucket);
    // Closed, and further connections from this source are dropped at accept until its bucket refills (#admit).
    if (wait > 0) return this.#refuse(res, new Refusal("P2P_ERR_RATE_LIMITED", undefined, { "Retry-After": String(wait) }), true);

    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const route = ROUTES[path];
    if (!route) return this.#refuse(res, new Refusal("P2P_ERR_NOT_FOUND"));
    if (req.method !== route.method) return this.#refuse(res, new Refusal("P2P_ERR_METHOD_NOT_ALLOWED", undefined, { Allow: route.method }));

    let body: Uint8Array | undefined;
    if (route.method === "POST") {
      const read = await this.#readBody(req);
      if (read instanceof Refusal) return this.#refuse(res, read, true);
      body = read;
    }
    const out = await route.run(this, { src, source, query: q === -1 ? "" : url.slice(q + 1), body });
    if (out instanceof Refusal) {
      // A forged signature is never an honest mistake: the source loses its connection and, for a while, its access
      // (later connections are dropped at accept), so a flood of forgeries cannot keep the verifier busy. A source
      // answered busy is told when to come back, and is kept out until then the same way (its signature was not
      // checked, so an unproved flooder would otherwise keep the event loop parsing and answering for free).
      const penalty = out.code === "P2P_ERR_BAD_SIGNATURE" ? BAD_SIGNATURE_PENALTY : out.code === "P2P_ERR_BUSY" ? BUSY_RETRY_S * this.#o.config.rateLimit.perSecond : 0;
      if (penalty > 0) this.#limiter.penalize(bucket, penalty);
      return this.#refuse(res, out, penalty > 0);
    }
    this.#json(res, 200, out);
  }

  /** Reads the body up to the cap; refuses before buffering anything past it. */
  #readBody(req: IncomingMessage): Promise<Uint8Array | Refusal> {
    const limit = this.#o.config.bodyLimitBytes;
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      return Promise.resolve(new Refusal("P2P_ERR_BODY_TOO_LARGE", `body exceeds ${limit} bytes`));
    }
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      req.on("data", (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > limit) {
          done = true;
          chunks.length = 0;
          resolve(new Refusal("P2P_ERR_BODY_TOO_LARGE", `body exceeds ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      req.on("end", () => {
        if (!done) resolve(Buffer.concat(chunks, size));
        done = true;
      });
      req.on("error", () => {
        if (!done) resolve(new Refusal("P2P_ERR_REQUEST_TIMEOUT", "request aborted"));
        done = true;
      });
    });
  }

  /** Steps 3-10 for a v2 envelope. */
  async acceptV2(ctx: RouteContext): Promise<object | Refusal> {
    const proved = this.#proved.has(ctx.source);
    if (proved) this.#provedAccepting++;
    try {
      return await this.#acceptV2(ctx);
    } finally {
      if (proved) this.#provedAccepting--;
    }
  }

  async #acceptV2(ctx: RouteContext): Promise<object | Refusal> {
    const { self, config } = this.#o;
    const json = decodeJsonBody(ctx.body!);
    if (!json.ok) return new Refusal(json.code, json.message);
    const parsed = parseEnvelope(json.value);
    if (!parsed.ok) return new Refusal(parsed.code, parsed.message);
    const env = parsed.value;
    if (env.from !== ctx.source) return new Refusal("P2P_ERR_SENDER_MISMATCH", `from ${env.from} does not match TCP source ${ctx.source}`);
    if (env.to !== self.address) return new Refusal("P2P_ERR_WRONG_RECIPIENT", `this node is ${self.address}, not ${env.to}`);
    const now = Date.now();
    if (Math.abs(env.ts - now) > config.timestampWindowMs) return new Refusal("P2P_ERR_STALE_TIMESTAMP", `timestamp ${env.ts} is more than ${config.timestampWindowMs / 1000} s from now (${now})`);
    const signed = await this.#checkSignature(ctx.source, envelopeSignedParts(env), () => unsignedReceiptFor(self, env, now));
    if (signed === "busy") return busyRefusal();
    if (!signed) return new Refusal("P2P_ERR_BAD_SIGNATURE");
    const sender = this.#sender(ctx.src, env.key);
    const outcome = await this.#commit({ id: env.id, peer: env.from, kind: env.kind, content: env.content, ts: env.ts, protocol: 2, storedAt: now, sender });
    if (outcome instanceof Refusal) return outcome;
    // A duplicate is answered with the receipt of its first arrival (another storedAt than the one signed ahead).
    const receipt = signed !== true && outcome.storedAt === now ? signed : receiptFor(self, env, outcome.storedAt);
    return { ok: true, duplicate: outcome.duplicate, receipt };
  }

  /**
   * Step 7. A message from a sender that proved its key before (its last signature verified), while no other proved
   * sender's message is being accepted, is checked inline: the shortest path for one message, whatever unproved
   * senders are doing meanwhile. Everything else goes to the signature thread: proved senders' messages that overlap
   * (in parallel with the event loop), and every sender not proved yet, so that forgeries are never verified on the
   * event loop, and queue behind proved senders' work (sig-thread.ts; past a bound, unproved senders are answered
   * busy). The thread also signs the receipt ahead when there is one (v2, for `storedAt`; sent only after the commit).
   * Returns false for a bad signature, "busy", or the receipt signed ahead (true when there is none). A source proves
   * its key with a signature that verifies, and loses that with one that does not, or when step 8 refuses it.
   */
  async #checkSignature(source: string, parts: SignedParts | undefined, receipt?: () => ReturnType<typeof unsignedReceiptFor>): Promise<boolean | Receipt | "busy"> {
    if (!parts) return false;
    const proved = this.#proved.has(source);
    let result: boolean | Receipt | "busy";
    if (proved && this.#provedAccepting <= 1) {
      result = verifyBytes(parts.key, parts.data, parts.sig);
    } else {
      const ahead = receipt?.();
      const r = await this.#sigs.run({ ...parts, receipt: ahead?.bytes }, proved);
      if (r === "busy") return r;
      result = !r.valid ? false : r.receiptSig && ahead ? withReceiptSig(ahead.unsigned, r.receiptSig) : true;
    }
    this.#proved.delete(source);
    if (result) {
      this.#proved.add(source); // the most recent last: the oldest is forgotten first
      if (this.#proved.size > MAX_PROVED) this.#proved.delete(this.#proved.values().next().value!);
    }
    return result;
  }

  /** The same checks for a legacy v1 message (v1 has no recipient field, so step 5 cannot apply). */
  async acceptV1(ctx: RouteContext): Promise<object | Refusal> {
    const json = decodeJsonBody(ctx.body!);
    if (!json.ok) return new Refusal(json.code, json.message);
    const parsed = parseV1Message(json.value);
    if (!parsed.ok) return new Refusal(parsed.code, parsed.message);
    const m = parsed.value;
    const from = parseIPv6(m.fromYgg);
    if (!from || formatIPv6(from) !== ctx.source) return new Refusal("P2P_ERR_SENDER_MISMATCH", `from_ygg ${m.fromYgg} does not match TCP source ${ctx.source}`);
    const now = Date.now();
    if (Math.abs(m.timestamp - now) > this.#o.config.timestampWindowMs) return new Refusal("P2P_ERR_STALE_TIMESTAMP");
    const signed = await this.#checkSignature(ctx.source, v1SignedParts(m));
    if (signed === "busy") return busyRefusal();
    if (!signed) return new Refusal("P2P_ERR_BAD_SIGNATURE", "Invalid Ed25519 signature");
    const sender = this.#sender(ctx.src, m.publicKey);
    const outcome = await this.#commit({ id: v1MessageId(m), peer: ctx.source, kind: m.event, content: m.content, ts: m.timestamp, protocol: 1, storedAt: now, sender });
    if (outcome instanceof Refusal) return outcome;
    return { ok: true };
  }

  pingV2(ctx: RouteContext): object | Refusal {
    const query = parseQuery(ctx.query);
    if (!query.ok) return new Refusal(query.code, query.message);
    const nonce = parseNonce(query.value.get("nonce") ?? "");
    if (!nonce.ok) return new Refusal(nonce.code, nonce.message);
    return buildPingProof(this.#o.self, nonce.value);
  }

  /**
   * Steps 8 and 9 happen in the message's own transaction (Store.acceptInbound): the key is bound to the source (a key
   * that derives to it by construction, otherwise the first key seen is pinned), then a peer the user has not accepted
   * yet gets config.pendingMaxMessages stored, no more, and a new sender is not taken past config.pendingMaxPeers
   * peers not accepted yet.
   */
  #sender(src: Uint8Array, key: string): InboundSender {
    const derived = keyMatchesAddress(Buffer.from(key, "base64"), src);
    const { pendingMaxMessages, pendingMaxPeers } = this.#o.config;
    return { key, binding: derived ? "derived" : "tofu", pendingQuota: pendingMaxMessages, pendingPeers: pendingMaxPeers };
  }

  async #commit(item: Parameters<CommitBatcher["add"]>[0]): Promise<{ duplicate: boolean; storedAt: number } | Refusal> {
    try {
      const outcome = await this.#batcher.add(item);
      if (outcome.refused) this.#proved.delete(item.peer); // it proved a key, but not one this node accepts from it
      if (outcome.refused === "blocked") return new Refusal("P2P_ERR_PEER_BLOCKED");
      if (outcome.refused === "mismatch") {
        this.#o.log.warn(`key mismatch for ${item.peer}: refused a message signed by a different key than the pinned one`);
        return new Refusal("P2P_ERR_KEY_MISMATCH", `public key for ${item.peer} differs from the pinned key; the owner must re-add the peer to accept a new key`);
      }
      // Not stored: the sender keeps it queued and tries again later (or once the user has accepted it).
      if (outcome.overQuota) {
        const message = outcome.overQuota === "peers"
          ? `this node keeps messages from ${item.sender?.pendingPeers} peers its user has not accepted yet, and has that many waiting; retry later`
          : `this node keeps ${item.sender?.pendingQuota} messages from a peer its user has not accepted yet; retry later`;
        return new Refusal("P2P_ERR_PENDING_QUOTA", message, { "Retry-After": String(PENDING_QUOTA_RETRY_S) });
      }
      if (!outcome.duplicate) this.#o.onInbound?.(item.peer);
      return outcome;
    } catch (err) {
      return this.#storageRefusal(err);
    }
  }

  #storageRefusal(err: unknown): Refusal {
    this.#o.log.error(`storage failure, message not acknowledged: ${(err as Error).message}`);
    return new Refusal("P2P_ERR_STORAGE", "message could not be stored; retry later", { "Retry-After": "30" });
  }

  #refuse(res: ServerResponse, r: Refusal, close = false): void {
    if (close) res.setHeader("Connection", "close");
    for (const [k, v] of Object.entries(r.headers)) res.setHeader(k, v);
    this.#json(res, ERROR_TABLE[r.code].status, { error: r.code, message: r.message });
  }

  #json(res: ServerResponse, status: number, body: object): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  }

  #internalError(res: ServerResponse, err: unknown): void {
    // A bug, not a peer's fault: log it, answer without details, keep serving.
    this.#o.log.error(`peer server: unexpected error: ${(err as Error)?.stack ?? String(err)}`);
    if (!res.headersSent && !res.destroyed) {
      res.setHeader("Connection", "close");
      this.#json(res, 500, { error: "P2P_ERR_INTERNAL", message: "internal error" });
    }
  }
}

/** Step 7 did not check the signature: too many unproved senders' signatures wait (sig-thread.ts). */
function busyRefusal(): Refusal {
  return new Refusal("P2P_ERR_BUSY", undefined, { "Retry-After": String(BUSY_RETRY_S) });
}

interface Source {
  /** The parsed source address (undefined if the socket has none we can read). */
  src: Uint8Array | undefined;
  /** Its canonical text. */
  text: string;
  /** The unit of rate and connection limits: the source address, or its whole /64 for a 300::/8 source. */
  bucket: string;
}

/**
 * The source and its bucket: what connection caps and the rate limit count by. A 300::/8 source counts by its /64 (one
 * key owns it); every source outside 200::/7 counts as one (each is only ever refused, and one bucket each would let a
 * single /64 elsewhere fill the limiter's table and push out the penalties of forging peers).
 */
function sourceOf(remote: string | undefined): Source {
  const src = parseIPv6(remote ?? "");
  if (!src || !isYggdrasilAddress(src)) return { src, text: src ? formatIPv6(src) : (remote ?? "?"), bucket: FOREIGN };
  const text = formatIPv6(src);
  if (src[0] !== 0x03) return { src, text, bucket: text };
  const net = new Uint8Array(16);
  net.set(src.subarray(0, 8));
  return { src, text, bucket: formatIPv6(net) };
}

interface RouteContext {
  src: Uint8Array;
  source: string;
  query: string;
  body: Uint8Array | undefined;
}

const ROUTES: Record<string, { method: "GET" | "POST"; run: (s: PeerServer, c: RouteContext) => Promise<object | Refusal> | object | Refusal }> = {
  "/v2/message": { method: "POST", run: (s, c) => s.acceptV2(c) },
  "/v2/ping": { method: "GET", run: (s, c) => s.pingV2(c) },
  "/peer/message": { method: "POST", run: (s, c) => s.acceptV1(c) },
  // v1 ping is unsigned and proves nothing; kept so v1 nodes see us as reachable.
  "/peer/ping": { method: "GET", run: () => ({ ok: true, ts: Date.now(), versions: PROTOCOL_VERSIONS }) },
};
