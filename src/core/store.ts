/**
 * The durable state of a node: peers, inbound and outbound messages, replay memory and a few settings, in
 * `<data_dir>/peers.db` (SQLite through `node:sqlite`). Shape after undici's `cache/sqlite-cache-store.js`: one
 * connection, every statement prepared once in a private field.
 *
 * Durability: WAL with `synchronous=FULL`, so a transaction is on disk when COMMIT returns; the peer server only
 * sends a receipt after `acceptInbound` returns. Several processes (the gateway service, CLI commands) share the
 * file: every read-check-write runs in `BEGIN IMMEDIATE` (the write lock is taken up front, so no transaction fails
 * half-way with SQLITE_BUSY on upgrade), and the outbox hands rows out under a time lease (`claimDue`).
 *
 * Failures are coded, never raw: a file that is not a database or is damaged is `P2P_ERR_DB_CORRUPT` and is never
 * reset, deleted or renamed; a file that cannot be opened is `P2P_ERR_DB_UNAVAILABLE`; a write that fails (disk full,
 * read-only, I/O error, lock timeout) is `P2P_ERR_STORAGE` after the transaction is rolled back.
 */
import { closeSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync, type SQLOutputValue, type StatementSync } from "node:sqlite";
import { canonicalAddress, keyMatchesAddress, parseIPv6 } from "./address.ts";
import { P2PError } from "./errors.ts";
import { ensureDataDir } from "./identity.ts";
import { APPLICATION_ID, MIGRATIONS, OLDEST_READER_META, OLDEST_READER_SCHEMA, SCHEMA_VERSION } from "./schema.ts";

export const DB_FILE = "peers.db";
export const DEFAULT_PEER_PORT = 8099;
/** How long a writer waits for another process's write lock before giving up with P2P_ERR_STORAGE. */
export const BUSY_TIMEOUT_MS = 5000;
/**
 * `bindKey` rewrites `lastSeen` at most this often per peer. Without it every inbound message would cost its own
 * fsync'd commit just to move a timestamp; with it a known sender costs a read only. `lastSeen` is precise to this.
 */
export const LAST_SEEN_RESOLUTION_MS = 10_000;
/**
 * No attempt is scheduled further ahead than this (the outbox's longest backoff is 1 h +20%, a peer's Retry-After is
 * capped at 1 h): a queued row due later was scheduled under a clock that ran ahead, and claimDue makes it due now.
 * A lease ending more than this after one taken now is taken as such a leftover too.
 */
export const MAX_SCHEDULE_AHEAD_MS = 2 * 3_600_000;
/**
 * `handled_at` of an inbound message its host holds back until the user accepts the peer (markHeld); never a real
 * time, and shown as `held: true, handledAt: null`. Accepting the peer (allow, or add as trusted) hands such messages
 * over again (handled_at back to null).
 */
const HELD = 0;
/** The last error of an outbound message the user cancelled (cancelOutbound). */
export const CANCELLED = "cancelled by the user";
/** The last error of outbound messages still queued to a peer the user removed: nothing more is sent to it. */
export const PEER_REMOVED = "the peer was removed: nothing more is sent to it";
/** The last error of outbound messages still queued to a peer the user blocked. */
export const PEER_BLOCKED = "the peer is blocked: nothing is sent to it (allow it, then send again)";

export type Trust = "trusted" | "pending" | "blocked";
export type KeyBinding = "derived" | "tofu" | "user";
export interface PeerRow {
  address: string;
  alias: string | null;
  publicKey: string | null;
  keyBinding: KeyBinding | null;
  trust: Trust;
  port: number;
  /** 1 = known to speak only v1 */
  protocol: 1 | 2;
  firstSeen: number;
  lastSeen: number | null;
  lastKeyMismatchAt: number | null;
  lastMismatchKey: string | null;
}
export type Direction = "in" | "out";
export type DeliveryState = "received" | "queued" | "sent" | "delivered" | "failed";
export interface MessageRow {
  seq: number;
  id: string;
  peer: string;
  direction: Direction;
  kind: string;
  content: string;
  ts: number;
  createdAt: number;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number | null;
  expiresAt: number | null;
  lastError: string | null;
  /** receipt JSON */
  receipt: string | null;
  deliveredAt: number | null;
  protocol: 1 | 2;
  /** When the host (the OpenClaw channel) handed an inbound message to its agent; null while not handed over. */
  handledAt: number | null;
  /** Inbound, not handed over: the host holds it back until the user accepts its peer (Store.markHeld). */
  held: boolean;
}
export interface InboundItem {
  id: string;
  peer: string;
  kind: string;
  content: string;
  ts: number;
  protocol: 1 | 2;
  storedAt: number;
  /** At most this many inbound messages may be stored from `peer` (a peer not accepted yet); unset: no limit. */
  quota?: number;
  /** The key that signed the item: bound to `peer` (as bindKey does) in the same transaction, before it is stored. */
  sender?: InboundSender;
}
/** What an inbound item's transaction binds first (the peer server's step 8). */
export interface InboundSender {
  /** The public key (base64) that signed the item. */
  key: string;
  /** How a key new to this peer is pinned: it derives to the sender's address, or trust on first use. */
  binding: "derived" | "tofu";
  /** The item's quota when its peer is still pending (not accepted by the user yet); it overrides `quota`. */
  pendingQuota: number;
  /**
   * How many peers not accepted yet (pending) may exist: a sender new to this node that would be one more is not
   * created and its item not stored ({overQuota: "peers"}), so that strangers' disk use is bounded in total, however
   * many addresses they send from. Unset: no limit.
   */
  pendingPeers?: number;
}
/**
 * What became of one inbound item: stored, or already stored (duplicate, with the first storedAt), or not stored
 * because its peer is at its quota (overQuota "messages") or it would be one pending peer too many (overQuota
 * "peers"), or its sender was refused (refused: the peer is blocked, or the item was signed by another key than the
 * one pinned for it); when not stored, duplicate is false and storedAt 0.
 */
export interface InboundOutcome {
  duplicate: boolean;
  storedAt: number;
  overQuota?: "messages" | "peers";
  refused?: "blocked" | "mismatch";
}
export interface OutboundItem {
  id: string;
  peer: string;
  kind: string;
  content: string;
  ts: number;
  protocol: 1 | 2;
  expiresAt: number;
}
export interface PeerUpsert {
  address: string;
  alias?: string | null;
  publicKey?: string;
  keyBinding?: KeyBinding;
  trust?: Trust;
  port?: number;
  protocol?: 1 | 2;
}
export interface StoreOptions {
  /** How long a write waits for another process's lock before P2P_ERR_STORAGE; default BUSY_TIMEOUT_MS. */
  busyTimeoutMs?: number;
}
/** "full": a new peer would be one pending peer too many (only when a limit is given: InboundSender.pendingPeers). */
type Refused = "mismatch" | "blocked" | "full";
export type BindKeyResult = { ok: true; peer: PeerRow } | { ok: false; reason: Refused; peer: PeerRow };
type Binding = { ok: true; trust: Trust } | { ok: false; reason: Refused };

// SQLite primary result codes (https://www.sqlite.org/rescode.html); node:sqlite reports the extended code in
// `err.errcode`, whose low byte is the primary code.
const SQLITE_PERM = 3;
const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_READONLY = 8;
const SQLITE_IOERR = 10;
const SQLITE_CORRUPT = 11;
const SQLITE_FULL = 13;
const SQLITE_CANTOPEN = 14;
const SQLITE_CONSTRAINT = 19;
const SQLITE_NOTADB = 26;

type Row = Record<string, SQLOutputValue>;

/** `{code:'ERR_SQLITE_ERROR', errcode, errstr}` is what node:sqlite throws for an SQLite failure. */
function sqliteErrcode(err: unknown): number | undefined {
  const e = err as { code?: unknown; errcode?: unknown } | null;
  return typeof e === "object" && e !== null && e.code === "ERR_SQLITE_ERROR" && typeof e.errcode === "number"
    ? e.errcode
    : undefined;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toPeer(r: Row): PeerRow {
  return {
    address: r.address as string,
    alias: r.alias as string | null,
    publicKey: r.public_key as string | null,
    keyBinding: r.key_binding as KeyBinding | null,
    trust: r.trust as Trust,
    port: r.port as number,
    protocol: r.protocol as 1 | 2,
    firstSeen: r.first_seen as number,
    lastSeen: r.last_seen as number | null,
    lastKeyMismatchAt: r.last_key_mismatch_at as number | null,
    lastMismatchKey: r.last_mismatch_key as string | null,
  };
}

/**
 * bindKey's answer for a peer row when binding `publicKey` now would change nothing but timestamps within
 * LAST_SEEN_RESOLUTION_MS; undefined when it would write (new pin, lastSeen or mismatch record out of date).
 */
function unchangedBinding(cur: Row, publicKey: string, now: number): Binding | undefined {
  const fresh = (t: SQLOutputValue) => typeof t === "number" && now >= t && now - t < LAST_SEEN_RESOLUTION_MS;
  const key = cur.public_key as string | null;
  if (cur.trust === "blocked") {
    // A blocked row's key is neither pinned nor compared; lastSeen is kept only for the pinned (or no) key.
    return (key !== null && key !== publicKey) || fresh(cur.last_seen) ? { ok: false, reason: "blocked" } : undefined;
  }
  if (key === publicKey) return fresh(cur.last_seen) ? { ok: true, trust: cur.trust as Trust } : undefined;
  if (key !== null && cur.last_mismatch_key === publicKey && fresh(cur.last_key_mismatch_at)) return { ok: false, reason: "mismatch" };
  return undefined;
}

function withPeer(b: Binding, peer: PeerRow): BindKeyResult {
  return b.ok ? { ok: true, peer } : { ok: false, reason: b.reason, peer };
}

function toMessage(r: Row): MessageRow {
  return {
    seq: r.seq as number,
    id: r.id as string,
    peer: r.peer as string,
    direction: r.direction as Direction,
    kind: r.kind as string,
    content: r.content as string,
    ts: r.ts as number,
    createdAt: r.created_at as number,
    state: r.state as DeliveryState,
    attempts: r.attempts as number,
    nextAttemptAt: r.next_attempt_at as number | null,
    expiresAt: r.expires_at as number | null,
    lastError: r.last_error as string | null,
    receipt: r.receipt as string | null,
    deliveredAt: r.delivered_at as number | null,
    protocol: r.protocol as 1 | 2,
    handledAt: r.handled_at === HELD ? null : (r.handled_at as number | null),
    held: r.handled_at === HELD,
  };
}

function badArgument(message: string): P2PError {
  return new P2PError("P2P_ERR_BAD_ARGUMENT", message);
}

/** A page size or offset from a caller (often a CLI flag): a non-negative safe integer, or the default. */
function count(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0) throw badArgument(`${name} must be a non-negative integer, got ${v}`);
  return v;
}

/** Aliases never contain ":" so that an alias can never be mistaken for an address (resolvePeer relies on it). */
function checkAlias(alias: string): void {
  if (alias.length === 0 || alias.includes(":")) {
    throw badArgument(`alias ${JSON.stringify(alias)} is invalid: it must be non-empty and contain no ":"`);
  }
}

const PAGE_DEFAULT = 100;
const NO_LIMIT = -1; // SQLite: LIMIT -1 means no limit
const SEQ_MAX = Number.MAX_SAFE_INTEGER;

export class Store {
  readonly file: string;
  #db: DatabaseSync;
  #busyTimeoutMs: number;
  #closed = false;

  #begin: StatementSync;
  #commit: StatementSync;
  #rollback: StatementSync;

  #getPeer: StatementSync;
  #getPeerByAlias: StatementSync;
  #insertPeer: StatementSync;
  #updatePeer: StatementSync;
  #deletePeer: StatementSync;
  #touchPeer: StatementSync;
  #setProtocol: StatementSync;
  #pinKey: StatementSync;
  #recordMismatch: StatementSync;
  #listPeers: StatementSync;
  #listPeersByTrust: StatementSync;
  #listKeyMismatches: StatementSync;
  #countPeers: StatementSync;

  #replayGet: StatementSync;
  #replayPrune: StatementSync;
  #insertInbound: StatementSync;
  #inboundStoredAt: StatementSync;
  #countInboundFrom: StatementSync;
  #countPendingUpTo: StatementSync;

  #insertOutbound: StatementSync;
  #claimDue: StatementSync;
  #postponeQueued: StatementSync;
  #anyClaimable: StatementSync;
  #rescheduleQueued: StatementSync;
  #rescheduleQueuedTo: StatementSync;
  #waitingTo: StatementSync;
  #markDelivered: StatementSync;
  #markRetry: StatementSync;
  #setExpiry: StatementSync;
  #markFailed: StatementSync;
  #rescheduleFarAhead: StatementSync;
  #failQueuedTo: StatementSync;

  #getMessageByPeer: StatementSync;
  #getOutMessage: StatementSync;
  #getInMessage: StatementSync;
  #listInbox: StatementSync;
  #listInboxByPeer: StatementSync;
  #listOutbox: StatementSync;
  #listOutboxByState: StatementSync;
  #listUnhandled: StatementSync;
  #markHeld: StatementSync;
  #reopenHeldOf: StatementSync;
  #reopenAllHeld: StatementSync;
  #markHandled: StatementSync;
  #counts: StatementSync;

  #getMeta: StatementSync;
  #setMeta: StatementSync;

  private constructor(file: string, db: DatabaseSync, busyTimeoutMs: number) {
    this.file = file;
    this.#db = db;
    this.#busyTimeoutMs = busyTimeoutMs;
    const p = (sql: string) => db.prepare(sql);

    this.#begin = p("BEGIN IMMEDIATE");
    this.#commit = p("COMMIT");
    this.#rollback = p("ROLLBACK");

    this.#getPeer = p("SELECT * FROM peers WHERE address = ?");
    this.#getPeerByAlias = p("SELECT * FROM peers WHERE alias = ?");
    this.#insertPeer = p(
      `INSERT INTO peers (address, alias, public_key, key_binding, trust, port, protocol, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#updatePeer = p(
      `UPDATE peers SET alias = ?, public_key = ?, key_binding = ?, trust = ?, port = ?, protocol = ?
       WHERE address = ?`,
    );
    this.#deletePeer = p("DELETE FROM peers WHERE address = ?");
    this.#touchPeer = p("UPDATE peers SET last_seen = ? WHERE address = ?");
    this.#setProtocol = p("UPDATE peers SET protocol = ? WHERE address = ?");
    this.#pinKey = p("UPDATE peers SET public_key = ?, key_binding = ?, last_seen = ? WHERE address = ?");
    this.#recordMismatch = p("UPDATE peers SET last_key_mismatch_at = ?, last_mismatch_key = ? WHERE address = ?");
    this.#listPeers = p("SELECT * FROM peers ORDER BY first_seen, address LIMIT ? OFFSET ?");
    this.#listPeersByTrust = p("SELECT * FROM peers WHERE trust = ? ORDER BY first_seen, address LIMIT ? OFFSET ?");
    this.#listKeyMismatches = p(
      "SELECT * FROM peers WHERE last_key_mismatch_at IS NOT NULL ORDER BY last_key_mismatch_at DESC LIMIT ?",
    );
    this.#countPeers = p("SELECT count(*) AS n FROM peers");

    // Filled by the messages_deleted_to_replay trigger (schema 3): a deleted inbound row still refuses its replay.
    this.#replayGet = p("SELECT stored_at FROM replay WHERE peer = ? AND id = ?");
    // An entry may go once both the message's own time and its arrival are outside the window: a replay of it
    // would then be refused as stale by the timestamp check anyway.
    this.#replayPrune = p("DELETE FROM replay WHERE stored_at < ? AND ts < ?");
    this.#insertInbound = p(
      `INSERT INTO messages (id, peer, direction, kind, content, ts, created_at, state, protocol)
       VALUES (?, ?, 'in', ?, ?, ?, ?, 'received', ?)
       ON CONFLICT (direction, peer, id) DO NOTHING`,
    );
    this.#inboundStoredAt = p("SELECT created_at FROM messages WHERE direction = 'in' AND peer = ? AND id = ?");
    // Bounded: stops counting at the quota (messages_dir_peer_seq).
    this.#countInboundFrom = p("SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE direction = 'in' AND peer = ? LIMIT ?)");
    // Bounded the same way (peers_trust_order); read only when a sender new to this node arrives.
    this.#countPendingUpTo = p("SELECT count(*) AS n FROM (SELECT 1 FROM peers WHERE trust = 'pending' LIMIT ?)");

    this.#insertOutbound = p(
      `INSERT INTO messages (id, peer, direction, kind, content, ts, created_at, state, attempts, next_attempt_at,
                             expires_at, protocol, lease_until)
       VALUES (?, ?, 'out', ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)
       ON CONFLICT (direction, peer, id) DO NOTHING
       RETURNING *`,
    );
    // A lease ending far later than one taken now (?4: now + leaseMs + MAX_SCHEDULE_AHEAD_MS; another process's
    // lease may end a little after ours would, its clock read later) was taken under a clock that ran ahead and was
    // set back since: it counts as ended, or its row would wait until the clock caught up (possibly years).
    this.#claimDue = p(
      `UPDATE messages SET lease_until = ?1
       WHERE seq IN (SELECT seq FROM messages
                     WHERE state = 'queued' AND next_attempt_at <= ?2 AND (lease_until IS NULL OR lease_until <= ?2 OR lease_until > ?4)
                     ORDER BY next_attempt_at, seq LIMIT ?3)
       RETURNING *`,
    );
    // What claimDue would change, read first (a reader takes no lock in WAL mode): with nothing due, the outbox's tick
    // costs no write transaction, so it never waits on another process's write lock (that wait blocks the thread).
    this.#anyClaimable = p(
      `SELECT EXISTS (SELECT 1 FROM messages WHERE state = 'queued' AND next_attempt_at <= ?1
                        AND (lease_until IS NULL OR lease_until <= ?1 OR lease_until > ?3))
           OR EXISTS (SELECT 1 FROM messages WHERE state = 'queued' AND next_attempt_at > ?2) AS any`,
    );
    // Rows in flight (leased) are left to their own attempt.
    this.#postponeQueued = p(
      `UPDATE messages SET next_attempt_at = ?1
       WHERE peer = ?2 AND state = 'queued' AND direction = 'out' AND next_attempt_at < ?1 AND (lease_until IS NULL OR lease_until <= ?3)`,
    );
    // The same for an attempt scheduled further ahead than any backoff or Retry-After (messages_due range).
    this.#rescheduleFarAhead = p("UPDATE messages SET next_attempt_at = ?1 WHERE state = 'queued' AND next_attempt_at > ?2");
    // Only a row still in flight moves; a delivered row never moves again (idempotent, and never back to queued).
    // "failed" may still become delivered/sent: a receipt is proof, whatever the outbox decided meanwhile.
    this.#markDelivered = p(
      `UPDATE messages SET state = ?, receipt = ?, delivered_at = ?, lease_until = NULL, next_attempt_at = NULL
       WHERE direction = 'out' AND id = ? AND state IN ('queued', 'failed')`,
    );
    this.#rescheduleQueued = p(
      "UPDATE messages INDEXED BY messages_due SET next_attempt_at = ? WHERE direction = 'out' AND state = 'queued' AND next_attempt_at > ?",
    );
    this.#waitingTo = p(
      `SELECT 1 FROM messages INDEXED BY messages_due_peer
       WHERE peer = ?2 AND state = 'queued' AND next_attempt_at > ?1 AND direction = 'out' LIMIT 1`,
    );
    this.#rescheduleQueuedTo = p(
      `UPDATE messages INDEXED BY messages_due_peer SET next_attempt_at = ?1
       WHERE peer = ?2 AND state = 'queued' AND next_attempt_at > ?1 AND direction = 'out'`,
    );
    this.#markRetry = p(
      `UPDATE messages SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, lease_until = NULL
       WHERE direction = 'out' AND id = ? AND state = 'queued'`,
    );
    this.#setExpiry = p("UPDATE messages SET expires_at = ? WHERE direction = 'out' AND id = ? AND state = 'queued'");
    this.#markFailed = p(
      `UPDATE messages SET state = 'failed', last_error = ?, lease_until = NULL, next_attempt_at = NULL
       WHERE direction = 'out' AND id = ? AND state = 'queued'`,
    );
    this.#failQueuedTo = p(
      `UPDATE messages SET state = 'failed', last_error = ?, lease_until = NULL, next_attempt_at = NULL
       WHERE direction = 'out' AND peer = ? AND state = 'queued'`,
    );

    this.#getMessageByPeer = p("SELECT * FROM messages WHERE direction = ? AND peer = ? AND id = ?");
    this.#getOutMessage = p("SELECT * FROM messages WHERE direction = 'out' AND id = ? ORDER BY seq LIMIT 1");
    // No index serves this one (schema 4): it reads the inbox newest first until it finds the id.
    this.#getInMessage = p("SELECT * FROM messages WHERE direction = 'in' AND id = ? ORDER BY seq DESC LIMIT 1");
    this.#listInbox = p("SELECT * FROM messages WHERE direction = 'in' AND seq < ? ORDER BY seq DESC LIMIT ?");
    this.#listInboxByPeer = p(
      "SELECT * FROM messages WHERE direction = 'in' AND peer = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
    );
    this.#listOutbox = p("SELECT * FROM messages WHERE direction = 'out' AND seq < ? ORDER BY seq DESC LIMIT ?");
    this.#listOutboxByState = p(
      "SELECT * FROM messages WHERE direction = 'out' AND state = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
    );
    // INDEXED BY: without statistics the planner prefers messages_dir_seq and would walk every handled row.
    this.#listUnhandled = p(
      "SELECT * FROM messages INDEXED BY messages_unhandled WHERE direction = 'in' AND handled_at IS NULL ORDER BY seq LIMIT ?",
    );
    // Held only while its peer is still not accepted (pending, or gone): an allow that came first wins.
    this.#markHeld = p(
      `UPDATE messages SET handled_at = ${HELD} WHERE seq = ? AND direction = 'in' AND handled_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM peers WHERE peers.address = messages.peer AND peers.trust <> 'pending')`,
    );
    this.#reopenHeldOf = p(`UPDATE messages SET handled_at = NULL WHERE direction = 'in' AND peer = ? AND handled_at = ${HELD}`);
    this.#reopenAllHeld = p(`UPDATE messages SET handled_at = NULL WHERE direction = 'in' AND handled_at = ${HELD}`);
    this.#markHandled = p(
      "UPDATE messages SET handled_at = ? WHERE seq = ? AND direction = 'in' AND handled_at IS NULL",
    );
    this.#counts = p(
      `SELECT (SELECT count(*) FROM peers) AS peers,
              (SELECT count(*) FROM peers WHERE trust = 'pending') AS pending,
              (SELECT count(*) FROM messages WHERE direction = 'in') AS inbox,
              (SELECT count(*) FROM messages WHERE direction = 'out' AND state = 'queued') AS queued,
              (SELECT count(*) FROM messages WHERE direction = 'out' AND state = 'failed') AS failed`,
    );

    this.#getMeta = p("SELECT value FROM meta WHERE key = ?");
    this.#setMeta = p("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  }

  /**
   * Opens (creating on first use, mode 0600) `<dataDir>/peers.db` and brings its schema up to date. An existing file
   * is never deleted, renamed or recreated: a damaged one is refused with P2P_ERR_DB_CORRUPT, one written by a
   * newer declaw or by another program with P2P_ERR_DB_UNAVAILABLE, in both cases before anything is written to it.
   */
  static open(dataDir: string, options: StoreOptions = {}): Store {
    const busyTimeoutMs = options.busyTimeoutMs ?? BUSY_TIMEOUT_MS;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new RangeError(`busyTimeoutMs must be a non-negative integer, got ${busyTimeoutMs}`);
    }
    ensureDataDir(dataDir);
    const file = join(dataDir, DB_FILE);
    createIfMissing(file);
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(file, { enableForeignKeyConstraints: false });
    } catch (err) {
      throw openError(file, err);
    }
    try {
      db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
      // The first read of the file: a non-database or a damaged header fails here, before any write.
      checkOwnership(file, db);
      const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
      if (mode !== "wal") {
        throw new P2PError("P2P_ERR_DB_UNAVAILABLE", `cannot switch ${file} to WAL mode (got ${String(mode)})`, {
          hint: "keep the data directory on a local filesystem that supports shared memory (not NFS)",
        });
      }
      db.exec("PRAGMA synchronous = FULL");
      // Never trust SQL stored in the schema (views/triggers calling functions) of a file someone else handed us.
      db.exec("PRAGMA trusted_schema = OFF");
      migrate(file, db);
      return new Store(file, db, busyTimeoutMs);
    } catch (err) {
      try {
        db.close();
      } catch {
        // already unusable; the original error matters
      }
      throw openError(file, err);
    }
  }

  /**
   * Pages in the WAL past which a commit on this connection also checkpoints (SQLite's default: 1000). The peer
   * server raises it while its checkpointer thread does that work off the request path (checkpointer.ts).
   */
  setWalAutoCheckpoint(pages: number): void {
    if (this.#closed) return;
    this.#run("set the checkpoint size", () => this.#db.exec(`PRAGMA wal_autocheckpoint = ${Math.trunc(pages)}`));
  }

  get walAutoCheckpoint(): number {
    return this.#run("read the checkpoint size", () => pragmaNumber(this.#db, "wal_autocheckpoint"));
  }

  /** Idempotent. Other processes keep the file open independently. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#db.close();
    } catch {
      // closing a connection whose file vanished still releases it
    }
  }

  // ---------------------------------------------------------------- peers

  getPeer(address: string): PeerRow | undefined {
    return this.#run("read a peer", () => {
      const r = this.#getPeer.get(address);
      return r === undefined ? undefined : toPeer(r);
    });
  }

  /** `addressOrAlias` is an address (any IPv6 text form: it contains ":") or an alias (case-insensitive). */
  resolvePeer(addressOrAlias: string): PeerRow | undefined {
    return this.#run("resolve a peer", () => {
      const r = addressOrAlias.includes(":")
        ? this.#getPeer.get(canonicalAddress(addressOrAlias) ?? addressOrAlias)
        : this.#getPeerByAlias.get(addressOrAlias);
      return r === undefined ? undefined : toPeer(r);
    });
  }

  /**
   * Creates or updates a peer; fields left undefined keep their value (new rows: trust "pending", port 8099,
   * protocol 2). `alias: null` clears the alias. Throws P2P_ERR_ALIAS_TAKEN when another peer has the alias.
   *
   * A pinned key is never changed silently: giving a different key throws P2P_ERR_KEY_MISMATCH unless
   * `keyBinding: "user"` is passed explicitly, which is how a user re-pins (`declaw peer add <addr> --key K`), or
   * `keyBinding: "derived"` with a key that does derive to the address (checked here: the address is that key's).
   * Automatic callers (inbound TOFU) go through `bindKey`, which only records a mismatch. A first pin without a
   * binding is "user" (the caller supplied the key). `keyBinding` without `publicKey` is refused.
   */
  upsertPeer(p: PeerUpsert, now: number = Date.now()): PeerRow {
    if (p.alias !== undefined && p.alias !== null) checkAlias(p.alias);
    if (p.keyBinding !== undefined && p.publicKey === undefined) {
      throw badArgument("keyBinding can only be given together with publicKey");
    }
    return this.#tx("save a peer", () => {
      const cur = this.#getPeer.get(p.address);
      if (p.trust === "trusted" && cur?.trust !== "trusted") this.#reopenHeldOf.run(p.address);
      if (p.alias !== undefined && p.alias !== null) {
        const owner = this.#getPeerByAlias.get(p.alias);
        if (owner !== undefined && owner.address !== p.address) {
          throw new P2PError("P2P_ERR_ALIAS_TAKEN", `alias "${p.alias}" is already used by ${String(owner.address)}`, {
            hint: "choose another alias, or remove it from the other peer first",
          });
        }
      }
      if (cur === undefined) {
        this.#insertPeer.run(
          p.address,
          p.alias ?? null,
          p.publicKey ?? null,
          p.publicKey === undefined ? null : (p.keyBinding ?? "user"),
          p.trust ?? "pending",
          p.port ?? DEFAULT_PEER_PORT,
          p.protocol ?? 2,
          now,
          null,
        );
      } else {
        let publicKey = cur.public_key as string | null;
        let keyBinding = cur.key_binding as KeyBinding | null;
        if (p.publicKey !== undefined) {
          if (publicKey !== null && publicKey !== p.publicKey && p.keyBinding !== "user" && !(p.keyBinding === "derived" && derivesTo(p.publicKey, p.address))) {
            throw new P2PError(
              "P2P_ERR_KEY_MISMATCH",
              `peer ${p.address} is pinned to key ${publicKey}; refusing to replace it with ${p.publicKey}`,
              { hint: "to re-pin deliberately, add the peer again with its new key given explicitly (--key)" },
            );
          }
          if (publicKey === null || publicKey !== p.publicKey) keyBinding = p.keyBinding ?? "user";
          else if (p.keyBinding !== undefined) keyBinding = p.keyBinding;
          publicKey = p.publicKey;
          // A key given for the peer settles the mismatch status showed (README: confirm the key, re-add with --key).
          this.#recordMismatch.run(null, null, p.address);
        }
        this.#updatePeer.run(
          p.alias === undefined ? cur.alias : p.alias,
          publicKey,
          keyBinding,
          p.trust ?? cur.trust,
          p.port ?? cur.port,
          p.protocol ?? cur.protocol,
          p.address,
        );
      }
      return toPeer(this.#getPeer.get(p.address) as Row);
    });
  }

  /**
   * Forgets a peer (its messages stay in the inbox/outbox); messages still queued to it are failed (PEER_REMOVED), and
   * `failedQueued` says how many. An attempt on its way finds it gone (the outbox checks).
   */
  removePeer(address: string): { removed: boolean; failedQueued: number } {
    return this.#tx("remove a peer", () => {
      const removed = Number(this.#deletePeer.run(address).changes) > 0;
      const failedQueued = removed ? Number(this.#failQueuedTo.run(PEER_REMOVED, address).changes) : 0;
      return { removed, failedQueued };
    });
  }

  /**
   * Creates the row (key unpinned) if missing. Blocking fails the messages still queued to the peer (PEER_BLOCKED);
   * `failedQueued` says how many (always 0 for the other trust levels).
   */
  setTrust(address: string, trust: Trust, now: number = Date.now()): PeerRow & { failedQueued: number } {
    return this.#tx("change a peer's trust", () => {
      const failedQueued = trust === "blocked" ? Number(this.#failQueuedTo.run(PEER_BLOCKED, address).changes) : 0;
      const cur = this.#getPeer.get(address);
      if (trust === "trusted" && cur?.trust !== "trusted") this.#reopenHeldOf.run(address);
      if (cur === undefined) {
        this.#insertPeer.run(address, null, null, null, trust, DEFAULT_PEER_PORT, 2, now, null);
      } else {
        this.#updatePeer.run(cur.alias, cur.public_key, cur.key_binding, trust, cur.port, cur.protocol, address);
      }
      return { ...toPeer(this.#getPeer.get(address) as Row), failedQueued };
    });
  }

  listPeers(o: { trust?: Trust; limit?: number; offset?: number } = {}): PeerRow[] {
    const limit = count("limit", o.limit, NO_LIMIT);
    const offset = count("offset", o.offset, 0);
    return this.#run("list peers", () =>
      (o.trust === undefined
        ? this.#listPeers.all(limit, offset)
        : this.#listPeersByTrust.all(o.trust, limit, offset)
      ).map(toPeer),
    );
  }

  /** Peers whose address was recently used with a key other than the pinned one, newest first (for status). */
  listKeyMismatches(limit = 50): PeerRow[] {
    return this.#run("list key mismatches", () => this.#listKeyMismatches.all(count("limit", limit, 50)).map(toPeer));
  }

  countPeers(): number {
    return this.#run("count peers", () => this.#countPeers.get()?.n as number);
  }

  /**
   * Atomic key check for an inbound sender: unknown peer -> row created (trust "pending", key pinned with `binding`);
   * known peer with no key -> pin; pinned key differs -> record mismatch (lastKeyMismatchAt, lastMismatchKey) and
   * return mismatch; blocked -> blocked (checked first; a blocked row's key is neither pinned nor compared). Updates
   * lastSeen when the key matches, to LAST_SEEN_RESOLUTION_MS: a sender seen that recently costs a read, no commit.
   */
  bindKey(address: string, publicKey: string, binding: "derived" | "tofu", now: number): BindKeyResult {
    return this.#bindKey(address, publicKey, binding, now, true)!;
  }

  /**
   * bindKey for a key that a delivery receipt proved (the outbox), but only for a peer that is still known: a peer the
   * user removed while a message to it was on its way stays removed (undefined), instead of coming back as pending.
   */
  bindReceiptKey(address: string, publicKey: string, binding: "derived" | "tofu", now: number): BindKeyResult | undefined {
    return this.#bindKey(address, publicKey, binding, now, false);
  }

  #bindKey(address: string, publicKey: string, binding: "derived" | "tofu", now: number, create: boolean): BindKeyResult | undefined {
    // Fast path on a read snapshot: nothing would change except timestamps within their resolution.
    const seen = this.#run("check a peer's key", () => this.#getPeer.get(address));
    if (seen === undefined && !create) return undefined;
    const unchanged = seen && unchangedBinding(seen, publicKey, now);
    if (unchanged) return withPeer(unchanged, toPeer(seen));
    return this.#tx("bind a peer's key", () => {
      if (!create && this.#getPeer.get(address) === undefined) return undefined;
      const b = this.#bind(address, publicKey, binding, now);
      return withPeer(b, toPeer(this.#getPeer.get(address) as Row));
    });
  }

  /** Records which protocol a known peer speaks (the outbox's v1 fallback); false, creating nothing, for an unknown one. */
  setPeerProtocol(address: string, protocol: 1 | 2): boolean {
    return this.#run("save a peer's protocol", () => Number(this.#setProtocol.run(protocol, address).changes) > 0);
  }

  /** bindKey's check and writes, in the caller's transaction; `maxPending`: see InboundSender.pendingPeers. */
  #bind(address: string, publicKey: string, binding: "derived" | "tofu", now: number, protocol: 1 | 2 = 1, maxPending?: number): Binding {
    const cur = this.#getPeer.get(address);
    if (cur === undefined) {
      if (maxPending !== undefined && (this.#countPendingUpTo.get(maxPending)?.n as number) >= maxPending) return { ok: false, reason: "full" };
      this.#insertPeer.run(address, null, publicKey, binding, "pending", DEFAULT_PEER_PORT, 2, now, now);
      return { ok: true, trust: "pending" };
    }
    // A peer we write to in v1 (it once answered as a v1-only node) that sends us v2 speaks v2 now: receipts again.
    if (protocol === 2 && cur.protocol === 1 && cur.public_key === publicKey) this.#setProtocol.run(2, address);
    const unchanged = unchangedBinding(cur, publicKey, now);
    if (unchanged) return unchanged;
    const key = cur.public_key as string | null;
    if (cur.trust === "blocked") {
      this.#touchPeer.run(now, address); // only reached for the pinned (or no) key
      return { ok: false, reason: "blocked" };
    }
    if (key === null) {
      this.#pinKey.run(publicKey, binding, now, address);
    } else if (key !== publicKey) {
      this.#recordMismatch.run(now, publicKey, address);
      return { ok: false, reason: "mismatch" };
    } else {
      this.#touchPeer.run(now, address);
    }
    return { ok: true, trust: cur.trust as Trust };
  }

  // ---------------------------------------------------------------- inbound

  /**
   * Stores a batch in one transaction (one fsync for the lot). Each (peer, id) already seen, in the messages table,
   * earlier in the same batch, or in the replay memory (rows deleted within the window, filled by a trigger), is
   * reported as a duplicate with the storedAt of its first arrival, so that the rebuilt receipt is identical. A new
   * item with a `quota` its peer has reached is not stored ({overQuota}); a duplicate is still answered as one. An
   * item with a `sender` first has its key bound (bindKey, in the same transaction, so the server's check and store
   * cost one transaction, not a read and a write): a refused sender's item is not stored ({refused}, even a
   * duplicate), a pending peer's item gets `sender.pendingQuota`, and a sender new to this node is not created past
   * `sender.pendingPeers` pending peers ({overQuota: "peers"}; a duplicate of a removed peer's message is still one).
   * Returns one result per item, in order. All or nothing: on P2P_ERR_STORAGE no item is stored and none may be
   * acknowledged.
   */
  acceptInbound(batch: readonly InboundItem[]): InboundOutcome[] {
    if (batch.length === 0) return [];
    return this.#tx("store inbound messages", () => {
      const out: InboundOutcome[] = [];
      for (const m of batch) {
        let quota = m.quota;
        let full = false;
        if (m.sender) {
          const b = this.#bind(m.peer, m.sender.key, m.sender.binding, m.storedAt, m.protocol, m.sender.pendingPeers);
          if (!b.ok && b.reason !== "full") {
            out.push({ duplicate: false, storedAt: 0, refused: b.reason });
            continue;
          }
          // A removed peer's messages stay stored: one of them sent again is still answered as a duplicate.
          if (!b.ok) full = true;
          else if (b.trust === "pending") quota = m.sender.pendingQuota;
        }
        const replayed = this.#replayGet.get(m.peer, m.id);
        if (replayed !== undefined) {
          out.push({ duplicate: true, storedAt: replayed.stored_at as number });
          continue;
        }
        if (full || quota !== undefined) {
          const stored = this.#inboundStoredAt.get(m.peer, m.id);
          if (stored !== undefined) {
            out.push({ duplicate: true, storedAt: stored.created_at as number });
            continue;
          }
          if (full) {
            out.push({ duplicate: false, storedAt: 0, overQuota: "peers" });
            continue;
          }
          if ((this.#countInboundFrom.get(m.peer, quota!)?.n as number) >= quota!) {
            out.push({ duplicate: false, storedAt: 0, overQuota: "messages" });
            continue;
          }
        }
        const r = this.#insertInbound.run(m.id, m.peer, m.kind, m.content, m.ts, m.storedAt, m.protocol);
        if (Number(r.changes) === 0) {
          out.push({ duplicate: true, storedAt: this.#inboundStoredAt.get(m.peer, m.id)?.created_at as number });
          continue;
        }
        out.push({ duplicate: false, storedAt: m.storedAt });
      }
      return out;
    });
  }

  // ---------------------------------------------------------------- outbound

  /**
   * Queues a message, due at once. Enqueueing the same (peer, id) again returns the existing row (a caller that
   * retries after an error cannot queue it twice); the same id with other content is refused.
   * `leaseMs`: a new row is born leased to the caller for its first attempt ("send and wait"), so that no outbox, in
   * this process or another, claims it between the insert and that attempt (a row that already existed keeps its
   * lease as it is: only a caller with a fresh id can count on holding one).
   */
  enqueueOutbound(m: OutboundItem, now: number, leaseMs?: number): MessageRow {
    return this.#tx("queue a message", () => {
      const lease = leaseMs === undefined ? null : now + leaseMs;
      const r = this.#insertOutbound.get(m.id, m.peer, m.kind, m.content, m.ts, now, now, m.expiresAt, m.protocol, lease);
      if (r !== undefined) return toMessage(r);
      const cur = toMessage(this.#getMessageByPeer.get("out", m.peer, m.id) as Row);
      if (cur.kind !== m.kind || cur.content !== m.content) {
        throw badArgument(`message id ${m.id} to ${m.peer} is already queued with other content`);
      }
      return cur;
    });
  }

  /**
   * Leases up to `limit` queued rows due at `now` for `leaseMs`, oldest due first. Other processes skip a leased row
   * until the lease runs out, so two senders never send the same row at the same time; markDelivered/markRetry/
   * markFailed release it. Pick `leaseMs` longer than one send attempt can take: the marks carry no lease token.
   */
  claimDue(now: number, limit: number, leaseMs: number): MessageRow[] {
    if (limit <= 0) return [];
    const any = this.#run("look for due messages", () => this.#anyClaimable.get(now, now + MAX_SCHEDULE_AHEAD_MS, now + leaseMs + MAX_SCHEDULE_AHEAD_MS)?.any);
    if (!any) return [];
    return this.#tx("claim due messages", () => {
      this.#rescheduleFarAhead.run(now, now + MAX_SCHEDULE_AHEAD_MS);
      return this.#claimDue
        .all(now + leaseMs, now, limit, now + leaseMs + MAX_SCHEDULE_AHEAD_MS)
        .map(toMessage)
        .sort((a, b) => (a.nextAttemptAt ?? 0) - (b.nextAttemptAt ?? 0) || a.seq - b.seq);
    });
  }

  /**
   * Records delivery of an outbound message: state "delivered" with the receipt JSON, or "sent" when
   * `receiptJson` is null (a v1 peer accepted it but cannot prove storage). A row already delivered/sent is left
   * as it is (idempotent); unknown ids are ignored.
   */
  markDelivered(id: string, receiptJson: string | null, deliveredAt: number): void {
    this.#run("mark a message delivered", () => {
      this.#markDelivered.run(receiptJson === null ? "sent" : "delivered", receiptJson, deliveredAt, id);
    });
  }

  /**
   * Makes queued outbound rows waiting out a backoff due now, every peer's (the mesh came back) or one peer's (a
   * message to it was just delivered); returns how many. Leases are left alone.
   */
  rescheduleQueued(now: number, peer?: string): number {
    return this.#run("reschedule queued messages", () => {
      if (peer === undefined) return Number(this.#rescheduleQueued.run(now, now).changes);
      // A read first (no write lock) for the usual case with nothing waiting: callers run on every peer's sign of life.
      if (this.#waitingTo.get(now, peer) === undefined) return 0;
      return Number(this.#rescheduleQueuedTo.run(now, peer).changes);
    });
  }

  /**
   * The peer said when to come back (Retry-After: its rate limit, its strangers' quota, busy): its other queued rows
   * due before `until` wait until then too, instead of each being refused in turn. No attempt is counted and the last
   * error is kept; rows in flight (leased at `now`) are left alone. Returns how many moved.
   */
  postponeQueued(peer: string, until: number, now: number): number {
    return this.#run("postpone queued messages", () => Number(this.#postponeQueued.run(until, peer, now).changes));
  }

  /** attempts++, next try at `nextAttemptAt`, lease released. Only a queued row changes. */
  markRetry(id: string, nextAttemptAt: number, error: string): void {
    this.#run("reschedule a message", () => {
      this.#markRetry.run(nextAttemptAt, error, id);
    });
  }

  /** Moves the expiry of a queued outbound row (the outbox, for a row queued under a clock far behind: outbox.ts). */
  setExpiry(id: string, expiresAt: number): void {
    this.#run("move a message's expiry", () => {
      this.#setExpiry.run(expiresAt, id);
    });
  }

  /** Gives up on a queued row (lease released). A delivered row is never marked failed. */
  markFailed(id: string, reason: string): void {
    this.#run("mark a message failed", () => {
      this.#markFailed.run(reason, id);
    });
  }

  /**
   * The user stops the retries of a queued outbound message: it is failed with the reason "cancelled by the user".
   * False when no queued message has that id (delivered, failed, or unknown). An attempt already on its way may still
   * deliver it; its receipt then marks it delivered, as the truth is.
   */
  cancelOutbound(id: string): boolean {
    return this.#run("cancel a message", () => Number(this.#markFailed.run(CANCELLED, id).changes) > 0);
  }

  // ---------------------------------------------------------------- reading messages

  /**
   * Without `peer`, a message with that id in that direction: for outbound the first stored (indexed); for inbound the
   * newest, found by reading the inbox backwards (not indexed: pass the peer where it is known).
   */
  getMessage(direction: Direction, id: string, peer?: string): MessageRow | undefined {
    return this.#run("read a message", () => {
      const byId = direction === "out" ? this.#getOutMessage : this.#getInMessage;
      const r = peer === undefined ? byId.get(id) : this.#getMessageByPeer.get(direction, peer, id);
      return r === undefined ? undefined : toMessage(r);
    });
  }

  /** Newest first; page with `beforeSeq` = the last seq of the previous page. Default limit 100. */
  listInbox(o: { peer?: string; limit?: number; beforeSeq?: number } = {}): MessageRow[] {
    const limit = count("limit", o.limit, PAGE_DEFAULT);
    const before = count("beforeSeq", o.beforeSeq, SEQ_MAX);
    return this.#run("list the inbox", () =>
      (o.peer === undefined
        ? this.#listInbox.all(before, limit)
        : this.#listInboxByPeer.all(o.peer, before, limit)
      ).map(toMessage),
    );
  }

  /** Newest first; page with `beforeSeq`. Default limit 100. */
  listOutbox(o: { state?: DeliveryState; limit?: number; beforeSeq?: number } = {}): MessageRow[] {
    const limit = count("limit", o.limit, PAGE_DEFAULT);
    const before = count("beforeSeq", o.beforeSeq, SEQ_MAX);
    return this.#run("list the outbox", () =>
      (o.state === undefined
        ? this.#listOutbox.all(before, limit)
        : this.#listOutboxByState.all(o.state, before, limit)
      ).map(toMessage),
    );
  }

  /** Inbound messages not yet handed to the host, oldest first. */
  listUnhandled(limit: number): MessageRow[] {
    const n = count("limit", limit, PAGE_DEFAULT);
    return this.#run("list unhandled messages", () => this.#listUnhandled.all(n).map(toMessage));
  }

  /**
   * Marks inbound rows as held (handledAt HELD) while their peer is not accepted: they leave listUnhandled, so that
   * however many a stranger sends, they never fill the host's window, and come back when the peer is accepted.
   * Returns the seqs marked (a row whose peer was accepted meanwhile, or that was handled, is left alone).
   */
  markHeld(seqs: readonly number[]): number[] {
    if (seqs.length === 0) return [];
    return this.#tx("hold messages", () => seqs.filter((seq) => Number(this.#markHeld.run(seq).changes) > 0));
  }

  /** Every held inbound row back to unhandled (a host that now hands strangers' messages over too). */
  reopenHeld(): number {
    return this.#run("hand held messages over again", () => Number(this.#reopenAllHeld.run().changes));
  }

  /** Sets handledAt on inbound rows that have none yet (already handled rows keep their first time). */
  markHandled(seqs: readonly number[], now: number): void {
    if (seqs.length === 0) return;
    this.#tx("mark messages handled", () => {
      for (const seq of seqs) this.#markHandled.run(now, seq);
    });
  }

  /**
   * How many peers await a trust decision, counted up to `upTo` (a bounded read, for what runs on a timer: counts()
   * reads every inbound row's index entry).
   */
  countPending(upTo: number): number {
    return this.#run("count pending peers", () => this.#countPendingUpTo.get(upTo)?.n as number);
  }

  /** `inbox` counts all inbound messages; `pending` counts peers awaiting a trust decision. */
  counts(): { peers: number; pending: number; inbox: number; queued: number; failed: number } {
    return this.#run("count messages", () => {
      const r = this.#counts.get() as Row;
      return {
        peers: r.peers as number,
        pending: r.pending as number,
        inbox: r.inbox as number,
        queued: r.queued as number,
        failed: r.failed as number,
      };
    });
  }

  /** Forgets replay entries whose message time and arrival are both older than `now - windowMs`. */
  pruneReplay(now: number, windowMs: number): number {
    const horizon = now - windowMs;
    return this.#run("prune the replay memory", () => Number(this.#replayPrune.run(horizon, horizon).changes));
  }

  /** True once any message was stored, sent or received (Node.open: the data directory has spoken under a key). */
  hasMessages(): boolean {
    return this.#run("look for messages", () => this.#db.prepare("SELECT 1 AS found FROM messages LIMIT 1").get() !== undefined);
  }

  getMeta(key: string): string | undefined {
    return this.#run("read a setting", () => this.#getMeta.get(key)?.value as string | undefined);
  }

  setMeta(key: string, value: string): void {
    this.#run("save a setting", () => {
      this.#setMeta.run(key, value);
    });
  }

  /**
   * Runs SQLite's `PRAGMA quick_check` (for a `doctor` command; not run at open: it reads the whole file, ~300 ms
   * for 200k messages on the development machine). Returns the problems found, [] when the file is sound.
   */
  quickCheck(): string[] {
    return this.#run("check the database", () => {
      const problems = this.#db.prepare("PRAGMA quick_check").all().map((r) => String(r.quick_check));
      return problems.length === 1 && problems[0] === "ok" ? [] : problems;
    });
  }

  // ---------------------------------------------------------------- plumbing

  /** A read, or one autocommit statement (SQLite makes a single statement atomic on its own). */
  #run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.#error(err, what);
    }
  }

  /** Runs `fn` in BEGIN IMMEDIATE ... COMMIT; any failure rolls back and is coded. */
  #tx<T>(what: string, fn: () => T): T {
    try {
      this.#begin.run();
    } catch (err) {
      throw this.#error(err, what);
    }
    try {
      const result = fn();
      this.#commit.run();
      return result;
    } catch (err) {
      // SQLite may already have rolled back by itself (e.g. some SQLITE_FULL/IOERR cases).
      if (this.#db.isOpen && this.#db.isTransaction) {
        try {
          this.#rollback.run();
        } catch {
          // the connection reports the original error; nothing more to undo
        }
      }
      throw this.#error(err, what);
    }
  }

  #error(err: unknown, what: string): P2PError {
    if (err instanceof P2PError) return err;
    if (this.#closed) {
      return new P2PError("P2P_ERR_DB_UNAVAILABLE", `cannot ${what}: the store for ${this.file} is closed`, { cause: err });
    }
    const code = sqliteErrcode(err);
    if (code === undefined) {
      // node:sqlite refuses to bind a value of the wrong type (undefined, an object) with a TypeError: caller misuse.
      const bad = err instanceof TypeError || err instanceof RangeError;
      return new P2PError(bad ? "P2P_ERR_BAD_ARGUMENT" : "P2P_ERR_STORAGE", `cannot ${what}: ${errText(err)}`, { cause: err });
    }
    const primary = code & 0xff;
    if (primary === SQLITE_CORRUPT || primary === SQLITE_NOTADB) return corruptError(this.file, err);
    if (primary === SQLITE_CONSTRAINT) {
      // CHECK/NOT NULL: a caller passed a value outside the contract's unions.
      return new P2PError("P2P_ERR_BAD_ARGUMENT", `cannot ${what}: ${errText(err)}`, { cause: err });
    }
    return new P2PError("P2P_ERR_STORAGE", `cannot ${what} in ${this.file}: ${describeSqlite(primary, err, this.#busyTimeoutMs)}`, {
      hint: storageHint(primary),
      cause: err,
    });
  }
}

function describeSqlite(primary: number, err: unknown, busyTimeoutMs: number): string {
  const text = errText(err);
  if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED) {
    return `${text} (another process held the write lock for more than ${busyTimeoutMs} ms)`;
  }
  return text;
}

function storageHint(primary: number): string | undefined {
  switch (primary) {
    case SQLITE_FULL:
      return "free disk space on the data directory's filesystem";
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return "make the data directory and peers.db writable by this user";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another declaw process is holding the database; try again";
    case SQLITE_IOERR:
      return "check the disk and the kernel log for I/O errors";
    default:
      return undefined;
  }
}

function corruptError(file: string, cause: unknown): P2PError {
  return new P2PError("P2P_ERR_DB_CORRUPT", `database ${file} is not a valid SQLite database or is damaged (${errText(cause)})`, {
    hint: `restore ${file} from a backup (stop declaw first); it is never reset automatically`,
    cause,
  });
}

/** Coded error for anything that goes wrong while opening. */
function openError(file: string, err: unknown): P2PError {
  if (err instanceof P2PError) return err;
  const code = sqliteErrcode(err);
  if (code !== undefined && ((code & 0xff) === SQLITE_CORRUPT || (code & 0xff) === SQLITE_NOTADB)) {
    return corruptError(file, err);
  }
  const primary = code === undefined ? undefined : code & 0xff;
  return new P2PError("P2P_ERR_DB_UNAVAILABLE", `cannot open database ${file}: ${errText(err)}`, {
    hint:
      primary === SQLITE_FULL
        ? "free disk space on the data directory's filesystem"
        : primary === SQLITE_BUSY || primary === SQLITE_LOCKED
          ? "another declaw process is holding the database; try again"
          : "make the data directory and peers.db readable and writable by this user (a local filesystem)",
    cause: err,
  });
}

/** The first open creates the file itself so that it gets mode 0600 (SQLite gives -wal/-shm the same mode). */
function createIfMissing(file: string): void {
  try {
    statSync(file);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw openError(file, err);
  }
  try {
    closeSync(openSync(file, "wx", 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw openError(file, err);
  }
}

/** True when the base64 key is one the address is derived from (200::/8) or whose /64 it is (300::/8). */
function derivesTo(publicKey: string, address: string): boolean {
  const addr = parseIPv6(address);
  return addr !== undefined && keyMatchesAddress(Buffer.from(publicKey, "base64"), addr);
}

function pragmaNumber(db: DatabaseSync, name: string): number {
  return db.prepare(`PRAGMA ${name}`).get()?.[name] as number;
}

/**
 * Refuses a database this code must not touch: one from a newer declaw, or one that another program wrote. A new
 * (empty) file passes. Called again inside the migration transaction, where the answer is final.
 */
function checkOwnership(file: string, db: DatabaseSync): number {
  const appId = pragmaNumber(db, "application_id");
  const version = pragmaNumber(db, "user_version");
  if (version > SCHEMA_VERSION && appId === APPLICATION_ID) {
    // A newer declaw's database: usable as it is when that version says code of our schema still can.
    let oldest = NaN;
    try {
      oldest = Number(db.prepare("SELECT value FROM meta WHERE key = ?").get(OLDEST_READER_META)?.value);
    } catch {
      // no meta table: not a database any declaw wrote; refused below
    }
    if (Number.isSafeInteger(oldest) && oldest <= SCHEMA_VERSION) return version;
  }
  if (version > SCHEMA_VERSION) {
    throw new P2PError(
      "P2P_ERR_DB_UNAVAILABLE",
      `database ${file} was written by a newer declaw (schema ${version}; this version knows up to ${SCHEMA_VERSION}); not touching it`,
      { hint: "upgrade declaw, or point --data-dir elsewhere" },
    );
  }
  const empty = appId === 0 && version === 0 && (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get()?.n as number) === 0;
  if (appId !== APPLICATION_ID && !empty) {
    throw new P2PError("P2P_ERR_DB_UNAVAILABLE", `${file} is an SQLite database of another program; not touching it`, {
      hint: "point --data-dir at a directory of declaw's own",
    });
  }
  return version;
}

/**
 * Applies the missing migrations in one BEGIN IMMEDIATE transaction (concurrent openers wait, then see them done),
 * and records which older schemas' code can still use the result (OLDEST_READER_SCHEMA). A newer declaw's database
 * that checkOwnership let through is left exactly as it is.
 */
function migrate(file: string, db: DatabaseSync): void {
  if (pragmaNumber(db, "user_version") >= SCHEMA_VERSION) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    const version = checkOwnership(file, db);
    if (version >= SCHEMA_VERSION) {
      db.exec("COMMIT"); // another process migrated it meanwhile
      return;
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
    db.prepare("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(OLDEST_READER_META, String(OLDEST_READER_SCHEMA));
    db.exec(`PRAGMA application_id = ${APPLICATION_ID}`);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (err) {
    if (db.isTransaction) {
      try {
        db.exec("ROLLBACK");
      } catch {
        // the original error matters
      }
    }
    throw err;
  }
}
