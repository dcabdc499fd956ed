/**
 * One running node per data directory. CLI commands and the OpenClaw host open the directory freely (the store makes
 * that safe), but two *running* nodes on it (`declaw run` next to the gateway's service, say) would both answer for the
 * same identity and, in spawn mode, each supervise a Yggdrasil daemon with the same key, killing the other's.
 *
 * `start()` takes `node.lock` in the data directory (created exclusively: the whole file appears or nothing does) and
 * `stop()` removes it. A lock left behind by a process that died is taken over. A lock counts as held while its
 * process is alive and either is still starting (the lock is younger than `staleMs`) or keeps the node's heartbeat
 * fresh (`beating`): a process id reused by an unrelated program after a crash does not keep the directory locked.
 * A lock written on another machine (a shared filesystem) cannot have its process checked: the heartbeat decides.
 * A lock written by this very process is held while the RunLock that wrote it has not released it: OpenClaw can load
 * this module more than once in one process, and a reload can start a new node before the old one stopped, so the
 * locks this process holds are kept in a registry shared by every copy of the module (LIVE_LOCKS).
 * Taking over a stale lock is check-then-replace, so two nodes starting in the same millisecond over a stale lock
 * could both pass; the heartbeat in `declaw status` would still show only one.
 */
import { randomUUID } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { P2PError } from "./errors.ts";
import { createFileExclusive } from "./fsutil.ts";
import { pidAlive } from "./process.ts";

export const LOCK_FILE = "node.lock";

export interface LockInfo {
  pid: number;
  hostname: string;
  since: number;
  host: string;
  /** Names this acquisition in LIVE_LOCKS (absent from locks written before it existed). */
  token?: string;
}

/**
 * Tokens of the locks this process holds, shared through globalThis by every copy of this module loaded in the
 * process (a module-level Set would be one per copy, and each copy would take the other's lock as stale).
 */
const LIVE_LOCKS: Set<string> = ((globalThis as unknown as Record<symbol, Set<string> | undefined>)[Symbol.for("declaw.runLocks")] ??= new Set());

export interface RunLockOptions {
  dataDir: string;
  /** Which program holds it ("declaw", "openclaw"), for the error message. */
  host: string;
  /** Whether the node heartbeat of process `pid` is fresh. */
  beating: (pid: number) => boolean;
  /** How long a lock counts as held without a heartbeat (a node that is still starting). */
  staleMs: number;
}

export class RunLock {
  readonly #o: RunLockOptions;
  readonly #path: string;
  #mine: LockInfo | undefined;

  constructor(o: RunLockOptions) {
    this.#o = o;
    this.#path = join(o.dataDir, LOCK_FILE);
  }

  /**
   * Takes the lock, or throws P2P_ERR_PORT_IN_USE naming the process that holds it, or P2P_ERR_DATA_DIR when the lock
   * file cannot be written or replaced (a read-only or full data directory, wrong owner).
   */
  acquire(now = Date.now()): void {
    try {
      this.#acquire(now);
    } catch (err) {
      if (err instanceof P2PError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      const hint = code === "ENOSPC" || code === "EDQUOT" ? "free some disk space, then start again" : `make ${this.#o.dataDir} writable by this user (it is private to its owner), or choose another data directory`;
      throw new P2PError("P2P_ERR_DATA_DIR", `cannot take the run lock ${this.#path}: ${(err as Error).message}`, { hint, cause: err });
    }
  }

  #acquire(now: number): void {
    const token = randomUUID();
    const mine: LockInfo = { pid: process.pid, hostname: hostname(), since: now, host: this.#o.host, token };
    for (let tries = 0; tries < 3; tries++) {
      if (createFileExclusive(this.#path, `${JSON.stringify(mine)}\n`)) {
        this.#mine = mine;
        LIVE_LOCKS.add(token);
        return;
      }
      const held = readLock(this.#path);
      if (held && this.#live(held, now)) {
        const who = held.pid === process.pid && held.hostname === hostname() ? "this same process" : `pid ${held.pid} on ${held.hostname}`;
        throw new P2PError("P2P_ERR_PORT_IN_USE", `another node (${held.host}, ${who}) is already running on the data directory ${this.#o.dataDir}`, {
          hint: `stop that one first (declaw run, or the OpenClaw gateway's service), or give this one another data directory; if no node runs there, delete ${this.#path}`,
        });
      }
      try {
        unlinkSync(this.#path); // stale or unreadable: replaced
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    throw new P2PError("P2P_ERR_PORT_IN_USE", `could not take ${this.#path}: other processes keep replacing it`, { hint: "check what else starts a node on this data directory" });
  }

  /** Removes the lock if it is still ours. Safe to call twice, and without acquire(). */
  release(): void {
    const mine = this.#mine;
    this.#mine = undefined;
    if (!mine) return;
    if (mine.token) LIVE_LOCKS.delete(mine.token);
    const held = readLock(this.#path);
    if (held?.pid !== mine.pid || held.since !== mine.since || held.hostname !== mine.hostname || held.token !== mine.token) return;
    try {
      unlinkSync(this.#path);
    } catch {
      // already gone
    }
  }

  #live(held: LockInfo, now: number): boolean {
    const sameMachine = held.hostname === hostname();
    // This process: live while the RunLock that wrote it holds it; else a node in it that never released it.
    if (sameMachine && held.pid === process.pid) return typeof held.token === "string" && LIVE_LOCKS.has(held.token);
    if (sameMachine && !pidAlive(held.pid)) return false;
    return now - held.since <= this.#o.staleMs || this.#o.beating(held.pid);
  }
}

function readLock(path: string): LockInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(path, "utf8")) as LockInfo;
    return typeof v?.pid === "number" && typeof v.since === "number" && typeof v.hostname === "string" ? { ...v, host: String(v.host ?? "a node") } : undefined;
  } catch {
    return undefined;
  }
}
