/**
 * The Node facade: one data directory, one identity, one store; and, once started, the peer server, the outbox
 * worker and Yggdrasil supervision. Hosts (the `declaw` CLI, the OpenClaw plugin) drive only this. Everything a host
 * shows comes from the data directory, so a CLI command sees what a running gateway's node does and vice versa.
 *
 * Lifecycle: open -> start -> stop (idempotent). A node that is only opened (CLI commands) holds no sockets.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { canonicalAddress, isYggdrasilAddress, keyMatchesAddress, parseIPv6 } from "./address.ts";
import { pingPeer, type PingResult } from "./client.ts";
import { DEFAULT_CONFIG, type NodeConfig } from "./config.ts";
import { OperationError, P2PError } from "./errors.ts";
import { writeFileAtomic } from "./fsutil.ts";
import { IDENTITY_FILE, loadOrCreateIdentity, type Identity } from "./identity.ts";
import { silentLogger, type Logger } from "./log.ts";
import { DEFAULT_PEER_PORT, LEASE_MS, Outbox } from "./outbox.ts";
import { RunLock } from "./run-lock.ts";
import { PeerServer } from "./server.ts";
import { DB_FILE, Store, type MessageRow, type PeerRow } from "./store.ts";
import { ALIAS_RULE, ALIAS_RE, isBlank } from "./text.ts";
import { buildEnvelope, MAX_CONTENT_BYTES, newMessageId, SUPPORTED_KINDS, type Receipt } from "./wire.ts";
import { diagnoseYggdrasil, YggdrasilSupervisor, type YggStatus } from "../yggdrasil/supervisor.ts";
import { pidAlive } from "./process.ts";

export { defaultDataDir } from "./config.ts";

export type SendResult =
  | { state: "delivered"; id: string; peer: string; deliveredAt: number; receipt: Receipt }
  | { state: "sent"; id: string; peer: string; sentAt: number }
  | { state: "queued"; id: string; peer: string; reason: string; nextAttemptAt: number }
  | { state: "failed"; id: string; peer: string; reason: string };

/** A peer the user removed or blocked, and how many messages still queued to it that failed (PEER_REMOVED/BLOCKED). */
export type PeerChange = PeerRow & { failedQueued: number };

export interface NodeProcessInfo {
  running: boolean;
  pid?: number;
  since?: number;
  host?: string;
  peerPort?: number;
}

export interface StatusReport {
  address: string;
  publicKey: string;
  subnet: string;
  dataDir: string;
  peerPort: number;
  node: NodeProcessInfo;
  yggdrasil: YggStatus;
  counts: { peers: number; pending: number; inbox: number; queued: number; failed: number };
  pendingPeers: PeerRow[];
  /** How many pending peers this node keeps (config.pendingMaxPeers): at that count, new senders are refused. */
  pendingMaxPeers: number;
  keyMismatches: PeerRow[];
}

const HEARTBEAT_FILE = "node.json";
const HEARTBEAT_INTERVAL_MS = 10_000;
const HEARTBEAT_STALE_MS = 45_000;
const PRUNE_INTERVAL_MS = 10 * 60_000;
const MESH_WATCH_INTERVAL_MS = 5_000;
/** How often a peer's inbound messages may make what is queued to it due now (Node.#peerAlive). */
const PEER_ALIVE_MS = 10_000;
const SELF_ADDRESS_META = "self_address";
/** Yggdrasil mode "off": the host manages the mesh (or the tests put addresses on interfaces themselves). */
const OFF_STATUS: YggStatus = Object.freeze({ mode: "off", effectiveMode: "off", state: "stopped", keyBinding: "n/a" });

interface Heartbeat {
  pid: number;
  since: number;
  updatedAt: number;
  host: string;
  hostname: string;
  peerPort: number;
  address: string;
  yggdrasil: YggStatus;
}

export class Node {
  readonly identity: Identity;
  readonly store: Store;
  readonly config: NodeConfig;
  readonly dataDir: string;
  readonly #log: Logger;
  readonly #host: string;
  #server: PeerServer | undefined;
  #outbox: Outbox | undefined;
  #ygg: YggdrasilSupervisor | undefined;
  #yggStatus: YggStatus | undefined;
  #lock: RunLock | undefined;
  #timers: NodeJS.Timeout[] = [];
  #state: "open" | "starting" | "running" | "stopping" | "closed" = "open";
  /** Settles when a start() in flight has finished, either way (stop() waits for it). */
  #startSettled: Promise<void> | undefined;
  #stopRequested = false;
  #since = 0;
  #inboundListeners = new Set<() => void>();
  #meshWatching = false;
  #meshSeen: { pid: number | undefined; up: number; state: string } | undefined;
  /** When each peer last made its queued messages due (#peerAlive, throttled for inbound messages). */
  #aliveAt = new Map<string, number>();
  /** Source address to bind for outgoing connections (tests only). */
  #localAddress: string | undefined;
  readonly #sharedEventLoop: boolean;

  private constructor(o: { dataDir: string; config: NodeConfig; log: Logger; host: string; identity: Identity; store: Store; localAddress?: string; sharedEventLoop: boolean }) {
    this.dataDir = o.dataDir;
    this.config = o.config;
    this.#log = o.log;
    this.#host = o.host;
    this.identity = o.identity;
    this.store = o.store;
    this.#localAddress = o.localAddress;
    this.#sharedEventLoop = o.sharedEventLoop;
  }

  /**
   * Opens the data directory: store and identity (created on first use). No sockets, no timers. "First use" excludes a
   * database that already served under a key (it recorded our address, or holds messages): an identity.json missing
   * there (a partial restore, a copy made without it) is refused rather than replaced by a key no peer has pinned,
   * which would also be presented under the recorded address.
   */
  /**
   * `sharedEventLoop`: the process's event loop serves a host too (OpenClaw's gateway), so the peer server keeps every
   * commit off it (PeerServerOptions.sharedEventLoop); a standalone node commits a lone message inline, the faster path.
   */
  static open(o: { dataDir: string; config?: Partial<NodeConfig>; log?: Logger; host?: string; localAddress?: string; sharedEventLoop?: boolean }): Node {
    const store = Store.open(o.dataDir);
    try {
      if (identityMissing(o.dataDir) && (store.getMeta(SELF_ADDRESS_META) !== undefined || store.hasMessages())) {
        const file = join(o.dataDir, IDENTITY_FILE);
        throw new P2PError("P2P_ERR_IDENTITY_CORRUPT", `identity file ${file} is missing, but this data directory's database was already used under an identity; refusing to create a new one`, {
          hint: `restore ${file} from a backup (peers pinned its key); to start over with a new identity instead, move ${join(o.dataDir, DB_FILE)}* out of the way too`,
        });
      }
      return new Node({
        dataDir: o.dataDir,
        config: { ...DEFAULT_CONFIG, ...o.config },
        log: o.log ?? silentLogger,
        host: o.host ?? "declaw",
        identity: loadOrCreateIdentity(o.dataDir),
        store,
        localAddress: o.localAddress,
        sharedEventLoop: o.sharedEventLoop ?? false,
      });
    } catch (err) {
      store.close();
      throw err;
    }
  }

  /** The address peers reach us at (see addressFor); a process that did not start a node knows no mode. */
  get address(): string {
    return addressFor(this.#yggStatus, this.store.getMeta(SELF_ADDRESS_META), this.identity.address);
  }

  #self(): Identity {
    return { ...this.identity, address: this.address };
  }

  /** Registers a callback run after new inbound messages were committed (in this process's server). */
  onInbound(cb: () => void): () => void {
    this.#inboundListeners.add(cb);
    return () => this.#inboundListeners.delete(cb);
  }

  async start(): Promise<void> {
    if (this.#state !== "open") throw new P2PError("P2P_ERR_BAD_ARGUMENT", `node cannot start from state ${this.#state}`);
    this.#state = "starting";
    this.#since = Date.now();
    let settled!: () => void;
    this.#startSettled = new Promise((resolve) => (settled = resolve));
    try {
      this.#lock = new RunLock({ dataDir: this.dataDir, host: this.#host, staleMs: HEARTBEAT_STALE_MS, beating: (pid) => heartbeatFresh(readHeartbeat(this.dataDir), pid) });
      this.#lock.acquire();
      await this.#startYggdrasil();
      this.#checkNotStopped();
      this.store.setMeta(SELF_ADDRESS_META, this.address);
      this.#server = new PeerServer({
        self: this.#self(),
        store: this.store,
        config: this.config,
        log: this.#log,
        onInbound: (peer) => {
          this.#inboundListeners.forEach((cb) => cb());
          this.#peerAlive(peer, true);
        },
        sharedEventLoop: this.#sharedEventLoop,
      });
      const port = await this.#server.listen(this.config.peerPort);
      this.#checkNotStopped();
      this.#log.info(`peer server listening on [::]:${port} as ${this.address}`);
      this.#outbox = new Outbox({ self: this.#self(), store: this.store, log: this.#log, localAddress: this.#localAddress });
      // What waits out a backoff is tried now: the reason it failed (this node down, a wrong clock, the peer away) may
      // be gone, and a user who starts the node expects it to try.
      const due = this.#rescheduleQueued();
      if (due > 0) this.#log.info(`retrying ${due} queued message(s) now`);
      this.#outbox.start();
      this.#writeHeartbeat();
      this.#timers.push(setInterval(() => this.#writeHeartbeat(), HEARTBEAT_INTERVAL_MS));
      this.#timers.push(setInterval(() => this.#prune(), PRUNE_INTERVAL_MS));
      if (this.#ygg) this.#timers.push(setInterval(() => void this.#watchMesh(), MESH_WATCH_INTERVAL_MS));
      this.#timers.forEach((t) => t.unref());
      this.#state = "running";
    } catch (err) {
      await this.#teardown();
      throw err;
    } finally {
      settled();
    }
  }

  /** Makes queued messages (every peer's, or one peer's) due now; best effort: they keep their schedule if it fails. */
  #rescheduleQueued(peer?: string): number {
    try {
      return this.store.rescheduleQueued(Date.now(), peer);
    } catch (err) {
      this.#log.warn(`could not move queued messages forward: ${(err as Error).message}`);
      return 0;
    }
  }

  /**
   * The peer showed it is up (a message from it, a ping it answered, the user allowed or re-added it): what is queued
   * to it is tried now, not after its backoff (up to an hour). In any process: a running node's outbox picks due rows
   * up within a second. `throttled`: for inbound messages, at most once per PEER_ALIVE_MS per peer.
   */
  #peerAlive(address: string, throttled = false): void {
    const now = Date.now();
    if (throttled) {
      if (now - (this.#aliveAt.get(address) ?? 0) < PEER_ALIVE_MS) return;
      if (this.#aliveAt.size >= 4096) this.#aliveAt.clear();
      this.#aliveAt.set(address, now);
    }
    if (this.#rescheduleQueued(address) > 0) this.#outbox?.kick();
  }

  /** After each wait of start(): a stop() meanwhile ends the start here (start() then undoes what it did). */
  #checkNotStopped(): void {
    if (this.#stopRequested) throw new P2PError("P2P_ERR_SHUTTING_DOWN", "the node was stopped while it was starting");
  }

  async #startYggdrasil(): Promise<void> {
    if (this.config.yggdrasil === "off") {
      this.#yggStatus = OFF_STATUS;
      // Mode off leaves the address to something else (a daemon run outside declaw); say so when nothing has put it here.
      if (!onLocalInterface(this.address)) this.#log.warn(`yggdrasil is off and ${this.address} is on no network interface of this machine: peers cannot reach this node until a Yggdrasil daemon run outside declaw puts it on one (or use yggdrasil mode auto)`);
      return;
    }
    this.#ygg = new YggdrasilSupervisor({
      dataDir: this.dataDir,
      identity: this.identity,
      mode: this.config.yggdrasil,
      peers: this.config.yggdrasilPeers,
      listen: this.config.yggdrasilListen,
      multicast: this.config.yggdrasilMulticast,
      adminSocket: this.config.yggdrasilAdminSocket,
      binary: this.config.yggdrasilBinary,
      log: (level, msg) => this.#log[level](msg), // the supervisor prefixes its own lines
    });
    try {
      this.#yggStatus = await this.#ygg.start();
    } catch (err) {
      // Everything else keeps working without the mesh: inbox, peers, queueing. `status` shows the diagnosis.
      this.#yggStatus = await this.#ygg.status();
      if (!this.#yggStatus.problem) this.#log.warn(`yggdrasil unavailable: ${(err as Error).message}`); // else said below
    }
    const p = this.#yggStatus.problem;
    if (p) this.#log.warn(`yggdrasil: ${p.message}; fix: ${p.fix.join(" ; ")}`);
  }

  /**
   * Applies a new list of Yggdrasil peers to the running daemon through its admin socket (additions are live; on
   * the 0.4 line a removal restarts our daemon, because 0.4 re-dials removed peers). No-op without a supervisor.
   */
  async setYggdrasilPeers(peers: string[]): Promise<void> {
    await this.#ygg?.setPeers(peers);
  }

  /**
   * Stops everything this process started and closes the store. Safe to call twice, and during start(): the start
   * is cut short (Yggdrasil's start is stopped at once, the rest at its next step), start() rejects with
   * P2P_ERR_SHUTTING_DOWN, and this returns once everything it had started is stopped.
   */
  async stop(): Promise<void> {
    if (this.#state === "starting") {
      this.#stopRequested = true;
      void this.#ygg?.stop().catch(() => undefined); // the supervisor's start ends as soon as it notices (and stops what it spawned)
      await this.#startSettled;
    }
    await this.#teardown();
  }

  async #teardown(): Promise<void> {
    if (this.#state === "closed" || this.#state === "stopping") return;
    this.#state = "stopping";
    this.#timers.forEach((t) => clearInterval(t));
    this.#timers = [];
    await this.#server?.close();
    await this.#outbox?.stop();
    await this.#ygg?.stop();
    this.#clearHeartbeat();
    this.#lock?.release();
    this.store.close();
    this.#state = "closed";
  }

  /** For command-style use (no start): closes the store. */
  close(): void {
    if (this.#state === "open") {
      this.store.close();
      this.#state = "closed";
    }
  }

  // ---- peers ----

  resolvePeer(peer: string): PeerRow {
    const row = this.store.resolvePeer(canonicalAddress(peer) ?? peer);
    if (!row) throw new P2PError("P2P_ERR_PEER_NOT_FOUND", `no peer "${peer}"`, { hint: "list peers with `peers`, or add one with `add <address> --alias NAME`" });
    return row;
  }

  addPeer(address: string, o: { alias?: string; key?: string; port?: number } = {}): PeerRow {
    const addr = requireAddress(address);
    // `send` refuses our own address; a peer entry for it would only invite that (every host adds through here).
    if (addr === this.address || addr === this.identity.address) {
      throw new P2PError("P2P_ERR_BAD_ARGUMENT", `${addr} is this node's own address, not a peer`, { hint: "add the address of another node (its owner's `status` shows it)" });
    }
    if (o.alias !== undefined && !ALIAS_RE.test(o.alias)) throw new P2PError("P2P_ERR_BAD_ARGUMENT", `alias "${o.alias}" must be ${ALIAS_RULE}`);
    if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) throw new P2PError("P2P_ERR_BAD_ARGUMENT", `port must be 1-65535`);
    let keyFields: { publicKey?: string; keyBinding?: "derived" | "user" } = {};
    if (o.key !== undefined) {
      const key = Buffer.from(o.key, "base64");
      if (key.length !== 32 || key.toString("base64") !== o.key) throw new P2PError("P2P_ERR_BAD_ARGUMENT", "--key must be the peer's 32-byte Ed25519 public key in padded base64");
      // A key that derives to the address is bound by construction; any other key is the user's explicit word.
      keyFields = { publicKey: o.key, keyBinding: keyMatchesAddress(key, parseIPv6(addr)!) ? "derived" : "user" };
    }
    const row = this.store.upsertPeer({ address: addr, alias: o.alias, port: o.port, trust: "trusted", ...keyFields });
    this.#peerAlive(addr);
    return row;
  }

  /** The peer as it was, and how many messages still queued to it were failed (nothing more is sent to it). */
  removePeer(peer: string): PeerChange {
    const row = this.resolvePeer(peer);
    return { ...row, failedQueued: this.store.removePeer(row.address).failedQueued };
  }

  allow(peer: string): PeerRow {
    const { failedQueued: _, ...row } = this.store.setTrust(this.#addressOf(peer), "trusted");
    this.#peerAlive(row.address);
    return row;
  }

  /** The peer, and how many messages still queued to it were failed (nothing is sent to a blocked peer). */
  block(peer: string): PeerChange {
    return this.store.setTrust(this.#addressOf(peer), "blocked");
  }

  /** An alias or a known peer, else a valid address (allow/block work on addresses never seen yet). */
  #addressOf(peer: string): string {
    const row = this.store.resolvePeer(canonicalAddress(peer) ?? peer);
    return row ? row.address : requireAddress(peer, true);
  }

  /** Peers in the order first seen; `trust` (any text a user typed) keeps only those of that trust level. */
  peers(o: { limit?: number; offset?: number; trust?: string } = {}): PeerRow[] {
    const { trust } = o;
    if (trust !== undefined && trust !== "trusted" && trust !== "pending" && trust !== "blocked") {
      throw new P2PError("P2P_ERR_BAD_ARGUMENT", `trust must be trusted, pending or blocked (got "${trust.slice(0, 32)}")`);
    }
    return this.store.listPeers({ ...o, trust });
  }

  inbox(o: { peer?: string; limit?: number; beforeSeq?: number } = {}): MessageRow[] {
    const peer = o.peer === undefined ? undefined : this.#addressOf(o.peer);
    return this.store.listInbox({ peer, limit: o.limit, beforeSeq: o.beforeSeq });
  }

  outbox(o: { limit?: number; beforeSeq?: number } = {}): MessageRow[] {
    return this.store.listOutbox(o);
  }

  /** Stops retrying a queued message (a mistyped address, a peer that is gone). P2P_ERR_BAD_ARGUMENT if none is queued. */
  cancel(id: string): MessageRow {
    if (!this.store.cancelOutbound(id)) {
      const m = this.store.getMessage("out", id);
      throw new OperationError("P2P_ERR_BAD_ARGUMENT", m ? `message ${id} is ${m.state}, not queued: there is nothing to cancel` : `no sent message has id ${id}`, {
        hint: "`outbox` lists sent messages with their ids and states; only queued ones can be cancelled",
      });
    }
    return this.store.getMessage("out", id)!;
  }

  // ---- messaging ----

  /**
   * Stores the message in the outbox, then tries once right away. Returns delivered (verified receipt), queued (with
   * the reason; the node's outbox worker keeps trying) or failed (the peer refused it for good).
   * Sending to an address never seen before adds it as a trusted peer: writing to someone is consent to hear back;
   * a blocked peer is refused (P2P_ERR_PEER_BLOCKED). `onQueued` is told the message's id once it is stored, leased to
   * this call for the first attempt (a host can then say what became of it if interrupted, and hand the lease back).
   */
  async send(peer: string, text: string, o: { kind?: string; onQueued?: (id: string) => void } = {}): Promise<SendResult> {
    const kind = o.kind ?? "chat";
    if (!SUPPORTED_KINDS.includes(kind)) throw new P2PError("P2P_ERR_UNSUPPORTED_KIND", `kind "${kind}" is not supported`);
    if (typeof text !== "string" || isBlank(text)) throw new P2PError("P2P_ERR_BAD_ARGUMENT", text === "" ? "message text is empty" : "message text shows nothing (only white space or invisible characters)");
    if (!text.isWellFormed()) throw new P2PError("P2P_ERR_BAD_CONTENT", "message text contains invalid Unicode");
    if (Buffer.byteLength(text, "utf8") > MAX_CONTENT_BYTES) throw new P2PError("P2P_ERR_CONTENT_TOO_LARGE", `message is larger than ${MAX_CONTENT_BYTES} bytes`);
    // Every check before the first change to the store: a refused send leaves no peer and no queued row behind.
    const known = this.store.resolvePeer(canonicalAddress(peer) ?? peer);
    if (known?.trust === "blocked") {
      const name = known.alias ?? known.address;
      throw new P2PError("P2P_ERR_PEER_BLOCKED", `${name} is blocked: nothing is sent to a blocked peer`, { hint: `allow it first (\`allow ${name}\`), then send again` });
    }
    let address = known?.address;
    if (address === undefined) {
      if (canonicalAddress(peer) === undefined) throw new P2PError("P2P_ERR_PEER_NOT_FOUND", `no peer "${peer}"`, { hint: "use a 200::/7 address, or add the peer first with `add <address> --alias NAME`" });
      address = requireAddress(peer); // what addPeer checks below, so that it cannot refuse after we checked the rest
    }
    if (address === this.address) throw new P2PError("P2P_ERR_BAD_ARGUMENT", "that is this node's own address");
    const now = Date.now();
    try {
      // The signed JSON body must fit in MAX_BODY_BYTES, and JSON escapes control characters into 6 bytes each, so
      // content under MAX_CONTENT_BYTES can still be too large. Building the envelope the outbox would send is the
      // exact check (a v1 message of the same content is smaller).
      buildEnvelope(this.#self(), address, kind, text, { ts: now });
    } catch (err) {
      if (!(err instanceof P2PError) || err.code !== "P2P_ERR_CONTENT_TOO_LARGE") throw err;
      throw new P2PError("P2P_ERR_CONTENT_TOO_LARGE", `message is too large to send: ${err.message}; nothing was queued`, {
        hint: "shorten the message or split it; control characters and \\ or \" count 2-6 bytes each once JSON-escaped",
      });
    }
    const row = known ?? this.addPeer(address);
    // Born leased to this call (a fresh id, so the row is new): no outbox, ours or a running node's, takes it before
    // the first attempt below, whose outcome this call then reports.
    const msg = this.store.enqueueOutbound(
      { id: newMessageId(now), peer: row.address, kind, content: text, ts: now, protocol: row.protocol, expiresAt: now + this.config.maxMessageAgeMs },
      now,
      LEASE_MS,
    );
    o.onQueued?.(msg.id);
    let r: Awaited<ReturnType<Outbox["attempt"]>>;
    try {
      const outbox = this.#outbox ?? new Outbox({ self: this.#self(), store: this.store, log: this.#log, localAddress: this.#localAddress });
      r = await outbox.attempt(msg);
    } catch (err) {
      // The message is stored: whatever went wrong with this first try (a store locked too long, say), it is queued,
      // and the outbox tries it again once the lease ends. Saying "failed" here would invite a duplicate send.
      const e = err as { code?: string; message?: string };
      this.#log.warn(`message ${msg.id} to ${row.address}: first attempt did not complete: ${e.message ?? String(err)}`);
      return { state: "queued", id: msg.id, peer: row.address, reason: `stored, but the first attempt did not complete (${e.code ?? "error"}: ${e.message ?? String(err)}); it is retried`, nextAttemptAt: Date.now() + LEASE_MS };
    }
    if (r.state === "delivered") return { state: "delivered", id: msg.id, peer: row.address, deliveredAt: r.deliveredAt, receipt: JSON.parse(r.receipt) as Receipt };
    if (r.state === "sent") return { state: "sent", id: msg.id, peer: row.address, sentAt: r.sentAt };
    if (r.state === "queued") {
      this.#outbox?.kick();
      return { state: "queued", id: msg.id, peer: row.address, reason: r.reason, nextAttemptAt: r.nextAttemptAt };
    }
    return { state: "failed", id: msg.id, peer: row.address, reason: r.reason };
  }

  async ping(peer: string): Promise<PingResult> {
    const row = this.store.resolvePeer(canonicalAddress(peer) ?? peer);
    const address = row?.address ?? requireAddress(peer, true);
    const r = await pingPeer({ address, port: row?.port ?? DEFAULT_PEER_PORT, localAddress: this.#localAddress }, row?.publicKey ?? null);
    if (row) this.#peerAlive(address);
    return r;
  }

  // ---- status ----

  processInfo(): NodeProcessInfo & { heartbeat?: Heartbeat } {
    if (this.#state === "running") return { running: true, pid: process.pid, since: this.#since, host: this.#host, peerPort: this.config.peerPort };
    const hb = readHeartbeat(this.dataDir);
    if (!hb || !heartbeatFresh(hb, hb.pid) || !pidAlive(hb.pid)) return { running: false };
    return { running: true, pid: hb.pid, since: hb.since, host: hb.host, peerPort: hb.peerPort, heartbeat: hb };
  }

  async status(): Promise<StatusReport> {
    const proc = this.processInfo();
    let ygg: YggStatus;
    if (this.#state === "running" && this.#ygg) ygg = await this.#ygg.status();
    else if (this.#yggStatus) ygg = this.#yggStatus;
    else if (proc.heartbeat) ygg = agedStatus(proc.heartbeat.yggdrasil, Date.now() - proc.heartbeat.updatedAt);
    else if (this.config.yggdrasil === "off") ygg = OFF_STATUS;
    else ygg = await diagnoseYggdrasil({ mode: this.config.yggdrasil, dataDir: this.dataDir, adminSocket: this.config.yggdrasilAdminSocket, binary: this.config.yggdrasilBinary });
    return {
      address: proc.heartbeat?.address ?? this.address,
      publicKey: this.identity.publicKeyBase64,
      subnet: this.identity.subnet,
      dataDir: this.dataDir,
      peerPort: proc.peerPort ?? this.config.peerPort,
      node: { running: proc.running, pid: proc.pid, since: proc.since, host: proc.host, peerPort: proc.peerPort },
      yggdrasil: ygg,
      counts: this.store.counts(),
      pendingPeers: this.store.listPeers({ trust: "pending", limit: 50 }),
      pendingMaxPeers: this.config.pendingMaxPeers,
      keyMismatches: this.store.listKeyMismatches(),
    };
  }

  /**
   * Keeps the mesh and the outbox in step: re-dials lost Yggdrasil peers, and when the daemon was restarted or a mesh
   * peer came up, retries queued messages now instead of waiting out their backoff (which may be minutes).
   */
  async #watchMesh(): Promise<void> {
    if (this.#state !== "running" || !this.#ygg || this.#meshWatching) return;
    this.#meshWatching = true;
    try {
      await this.#ygg.redial().catch((err) => this.#log.debug(`yggdrasil redial: ${(err as Error).message}`));
      const s = await this.#ygg.status();
      const up = (s.peers ?? []).filter((p) => p.up).length;
      const prev = this.#meshSeen;
      this.#meshSeen = { pid: s.pid, up, state: s.state };
      // A system daemon that stopped answering (or came back): said once per change, not at every check.
      if (prev && prev.state !== s.state && s.state === "unavailable") this.#log.warn(`yggdrasil: ${s.problem?.message ?? "the daemon does not answer"}; ${s.problem?.fix.join("; ") ?? ""}`);
      if (prev?.state === "unavailable" && s.state === "running") this.#log.info("yggdrasil answers again");
      if (prev && (s.pid !== prev.pid || up > prev.up) && s.state === "running") {
        const n = this.#rescheduleQueued();
        if (n > 0) this.#log.info(`mesh changed (daemon ${s.pid !== prev.pid ? "restarted" : "gained a peer"}): retrying ${n} queued message(s) now`);
        this.#outbox?.kick();
        this.#writeHeartbeat();
      }
    } catch (err) {
      this.#log.debug(`mesh watch: ${(err as Error).message}`);
    } finally {
      this.#meshWatching = false;
    }
  }

  #writeHeartbeat(): void {
    const write = async () => {
      const ygg = this.#ygg ? await this.#ygg.status() : this.#yggStatus!;
      const hb: Heartbeat = { pid: process.pid, since: this.#since, updatedAt: Date.now(), host: this.#host, hostname: hostname(), peerPort: this.config.peerPort, address: this.address, yggdrasil: ygg };
      // A liveness hint rewritten every 10 s, read by other processes (a torn or empty file reads as no heartbeat):
      // atomic, but no fsync on the host's thread for it.
      writeFileAtomic(join(this.dataDir, HEARTBEAT_FILE), `${JSON.stringify(hb)}\n`, 0o600, { durable: false });
    };
    write().catch((err) => this.#log.warn(`cannot write ${HEARTBEAT_FILE}: ${(err as Error).message}`));
  }

  #clearHeartbeat(): void {
    const hb = readHeartbeat(this.dataDir);
    if (hb?.pid === process.pid) {
      try {
        writeFileSync(join(this.dataDir, HEARTBEAT_FILE), `${JSON.stringify({ ...hb, updatedAt: 0 })}\n`, { mode: 0o600 });
      } catch { /* best effort: a stale heartbeat is detected by its age and pid anyway */ }
    }
  }

  #prune(): void {
    try {
      this.store.pruneReplay(Date.now(), this.config.timestampWindowMs * 2);
    } catch (err) {
      this.#log.warn(`replay cache pruning failed: ${(err as Error).message}`);
    }
  }
}

/**
 * The canonical 200::/7 address `text` names. `aliasAllowed`: the caller took a peer name too (its alias lookup found
 * nothing), so an unknown name is a peer not found, as `send` says; else only an address will do.
 */
function requireAddress(text: string, aliasAllowed = false): string {
  const b = parseIPv6(text);
  if (!b && aliasAllowed) throw new P2PError("P2P_ERR_PEER_NOT_FOUND", `no peer "${text}"`, { hint: "name a peer by alias, address (200:...) or peer id; list them with `peers`" });
  if (!b) throw new P2PError("P2P_ERR_BAD_ARGUMENT", `"${text}" is not an IPv6 address`, { hint: "Yggdrasil addresses look like 200:1234:5678::1" });
  if (!isYggdrasilAddress(b)) throw new P2PError("P2P_ERR_BAD_ARGUMENT", `${text} is not a Yggdrasil address (200::/7)`);
  return canonicalAddress(text)!;
}

/**
 * The address a node answers for: the system daemon's in system mode; the one derived from our key when we spawn the
 * daemon ourselves (whatever an earlier system-mode run recorded); otherwise (mode "off": the host manages the mesh
 * and may have recorded the address it gave us, such as one of our 300::/8 subnet; or no node started in this
 * process) the address the last started node recorded, else the derived one.
 */
export function addressFor(ygg: Pick<YggStatus, "effectiveMode" | "address"> | undefined, recorded: string | undefined, derived: string): string {
  if (ygg?.effectiveMode === "system" && ygg.address) return ygg.address;
  if (ygg?.effectiveMode === "spawn") return derived;
  return recorded ?? derived;
}

/** Whether `address` is assigned to an interface of this machine (in this network namespace). */
function onLocalInterface(address: string): boolean {
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.family === "IPv6" && canonicalAddress(i.address.split("%")[0]!) === address));
}

/** identity.json is absent (an unreadable one is loadOrCreateIdentity's to report). */
function identityMissing(dataDir: string): boolean {
  try {
    statSync(join(dataDir, IDENTITY_FILE));
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "ENOENT";
  }
}

/**
 * The Yggdrasil status a heartbeat recorded `ageMs` ago, with its uptimes (the daemon's, its up peers') brought to
 * now, so that a status read from another process does not lag by up to the heartbeat interval.
 */
export function agedStatus(s: YggStatus, ageMs: number): YggStatus {
  const age = Math.max(0, ageMs);
  const aged: YggStatus = { ...s };
  if (s.uptimeMs !== undefined) aged.uptimeMs = s.uptimeMs + age;
  if (s.peers) aged.peers = s.peers.map((p) => (p.up && p.uptimeMs !== undefined ? { ...p, uptimeMs: p.uptimeMs + age } : p));
  return aged;
}

/** Whether `hb` is process `pid`'s and was written within HEARTBEAT_STALE_MS. */
function heartbeatFresh(hb: Heartbeat | undefined, pid: number): boolean {
  return hb?.pid === pid && Date.now() - hb.updatedAt <= HEARTBEAT_STALE_MS;
}

function readHeartbeat(dataDir: string): Heartbeat | undefined {
  try {
    const hb = JSON.parse(readFileSync(join(dataDir, HEARTBEAT_FILE), "utf8")) as Heartbeat;
    return typeof hb?.pid === "number" ? hb : undefined;
  } catch {
    return undefined;
  }
}
