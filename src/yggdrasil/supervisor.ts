/**
 * YggdrasilSupervisor: one lifecycle for the node's Yggdrasil connectivity.
 *
 *   stopped -> starting -> running -> (daemon died) restarting -> running ...
 *                       \-> failed (cannot work without a fix) | unavailable (auto mode found no way)
 *
 * Modes: "spawn" runs our own daemon with our identity's key (address derived from our key); "system" uses a
 * running daemon's admin socket (its key, so peers bind ours on first use); "auto" spawns when privileged, else uses
 * a system daemon, else reports "unavailable" with a diagnosis; "off" does nothing.
 * Every failure goes through #fail; stop() is idempotent and is the only path that kills the daemon on purpose.
 */
import { chmodSync, mkdirSync, unlinkSync } from "node:fs";
import { bytesEqual, parseIPv6 } from "../core/address.ts";
import { P2PError, type ErrorCode } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fsutil.ts";
import { yggdrasilPrivateKeyHex } from "../core/identity.ts";
import { addPeer, getPeers, getSelf, peerUriKey, removePeer, type AdminPeer } from "./admin.ts";
import { findYggdrasilBinary, probeBinary, type BinaryInfo } from "./binary.ts";
import { buildDaemonConfig, renderDaemonConfig } from "./config.ts";
import { spawnDaemon, stopDaemon, waitReady, type DaemonHandle } from "./daemon.ts";
import {
  detectPlatform, probeSystemDaemon, problemAddressMismatch, problemAdminUnreachable, problemBinaryMissing,
  problemNoPrivilege, problemStartFailed,
} from "./diagnose.ts";
import { RotatingLog } from "./logfile.ts";
import { spawnPaths, SYSTEM_ADMIN_SOCKETS, type SpawnPaths } from "./paths.ts";
import { killStaleDaemon, removePid, writePid } from "./pidfile.ts";
import { canSpawnTun, checkPrivileges } from "./privileges.ts";
import type { YggOptions, YggPeerStatus, YggProblem, YggState, YggStatus } from "./types.ts";

export type { YggMode, YggOptions, YggPeerStatus, YggProblem, YggState, YggStatus } from "./types.ts";
export { diagnoseYggdrasil } from "./diagnose.ts";

/** Restart delays after unexpected exits (jittered +-20%); the last tier repeats. */
export const RESTART_BACKOFF_MS: readonly number[] = [500, 1000, 2000, 5000, 10_000, 30_000];
/** A daemon that ran this long before dying starts the backoff table from the top again. */
export const STABLE_RUN_MS = 60_000;
const STATUS_ADMIN_TIMEOUT_MS = 1500;
/**
 * A spawned daemon whose admin socket has not answered for this long (hung, or stopped with SIGSTOP) is killed, and the
 * exit path restarts it: a process that is alive is not a working mesh. The node asks every 5 s (redial, status).
 */
export const UNRESPONSIVE_MS = 30_000;
/** Failures that retrying cannot fix. */
const FATAL_CODES: readonly string[] = ["P2P_ERR_YGG_NO_PRIVILEGE", "P2P_ERR_YGG_ADDRESS_MISMATCH", "P2P_ERR_YGG_BINARY_MISSING", "P2P_ERR_CONFIG"];
/**
 * System mode reads the daemon's address once, at start, and the node serves that address: a failed system-mode start
 * is not retried in the background, so every fix for it ends with this step.
 */
const SYSTEM_DOWN_FIX = "start the system daemon (sudo systemctl start yggdrasil): this node uses it again as soon as it answers, no restart needed";
const SYSTEM_RESTART_FIX = "then restart the node (declaw run, or the OpenClaw gateway) so that it uses the system daemon";
/** Auto mode looks for a way onto the mesh only when the node starts: once fixed, the node has to start again. */
const AUTO_RESTART_FIX = "then restart the node (declaw run, or the OpenClaw gateway): it looks for Yggdrasil again when it starts";

function jitter(ms: number): number {
  return Math.round(ms * (0.8 + Math.random() * 0.4));
}

function displayVersion(info: BinaryInfo): string {
  return info.version === "unknown" ? `${info.line}.x` : info.version;
}

function uniq(list: readonly string[]): string[] {
  return [...new Set(list.map((s) => s.trim()).filter(Boolean))];
}

function toPeerStatus(p: AdminPeer): YggPeerStatus {
  const out: YggPeerStatus = { address: p.address, key: p.key, up: p.up };
  if (p.uri !== undefined) out.uri = p.uri;
  if (p.uptimeMs !== undefined) out.uptimeMs = p.uptimeMs;
  return out;
}

export class YggdrasilSupervisor {
  readonly #o: YggOptions;
  readonly #paths: SpawnPaths;
  readonly #daemonLog: RotatingLog;
  #state: YggState = "stopped";
  #effective: YggStatus["effectiveMode"] = "none";
  #problem: YggProblem | undefined;
  #peers: string[];
  #binary: BinaryInfo | undefined;
  #daemon: DaemonHandle | undefined;
  /** Daemons we are stopping on purpose: their exit must not trigger a restart. */
  readonly #expectedExits = new WeakSet<DaemonHandle>();
  #address: string | undefined;
  #subnet: string | undefined;
  #systemSocket: string | undefined;
  #systemVersion: string | undefined;
  /** Peers we added to a system daemon: the only ones we may remove from it. */
  readonly #systemAdded = new Set<string>();
  #restartTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  /** The pending restart (status shows it while restarting). */
  #nextRestart: { reason: string; at: number } | undefined;
  /** Since when our spawned daemon's admin socket has not answered (undefined: it answered last time). */
  #unansweredSince: number | undefined;
  /** Per peer URI, the redial error last warned about: a peer that keeps failing is reported once, not every call. */
  readonly #redialErrors = new Map<string, string>();
  /** Bumped by stop(): work started under an older generation gives up quietly. */
  #generation = 0;
  #starting: Promise<YggStatus> | undefined;
  /** Serialises setPeers and restarts so two config rewrites never interleave. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(o: YggOptions) {
    this.#o = o;
    this.#paths = spawnPaths(o.dataDir);
    this.#daemonLog = new RotatingLog(this.#paths.log);
    this.#peers = uniq(o.peers);
  }

  #log(level: "info" | "warn" | "error", msg: string): void {
    try {
      this.#o.log?.(level, `yggdrasil: ${msg}`);
    } catch { /* a broken logger must not break supervision */ }
  }

  get state(): YggState {
    return this.#state;
  }

  /** Starts per the mode. Explicit modes throw a P2PError (after recording the problem); auto never throws. */
  start(): Promise<YggStatus> {
    if (this.#state === "running" || this.#state === "restarting") return this.status();
    this.#starting ??= this.#start().finally(() => { this.#starting = undefined; });
    return this.#starting;
  }

  async #start(): Promise<YggStatus> {
    const gen = this.#generation;
    this.#problem = undefined;
    const mode = this.#o.mode;
    if (mode === "off") {
      this.#effective = "off";
      this.#state = "stopped";
      return this.status();
    }
    this.#state = "starting";
    try {
      if (mode === "spawn") await this.#startSpawn(gen);
      else if (mode === "system") await this.#startSystem(gen);
      else await this.#startAuto(gen);
    } catch (err) {
      if (gen !== this.#generation) {
        this.#state = "stopped"; // stop() won the race, and undid what this start had begun
        return this.status();
      }
      const p = err instanceof P2PError ? err : new P2PError("P2P_ERR_YGG_START_FAILED", (err as Error).message, { cause: err });
      let problem = this.#problem ?? { code: p.code, message: p.message, fix: p.hint ? [p.hint] : [] };
      if (mode === "system") problem = { ...problem, fix: [...problem.fix, SYSTEM_RESTART_FIX] };
      this.#fail(problem);
      if (this.#effective === "spawn" && !FATAL_CODES.includes(p.code)) {
        // Like a daemon that dies after running: retry with backoff, so the node (which carries on off the mesh)
        // comes onto it once the cause is gone. Status keeps the problem until a start succeeds.
        this.#state = "restarting";
        this.#scheduleRestart(`start failed: ${p.message}`);
      }
      if (mode === "auto" && p.code !== "P2P_ERR_YGG_ADDRESS_MISMATCH") return this.status();
      throw new P2PError(p.code, this.#problem!.message, { hint: this.#problem!.fix.join("\n"), cause: err });
    }
    return this.status();
  }

  /**
   * Throws once stop() has superseded the work begun under `gen` (checked after every await of a start), so that a
   * start interrupted by stop() goes no further and undoes what it spawned.
   */
  #checkCurrent(gen: number): void {
    if (gen !== this.#generation) throw new P2PError("P2P_ERR_SHUTTING_DOWN", "stopped while yggdrasil was starting");
  }

  /** The one failure path: record the problem, settle the state, tell the log. */
  #fail(problem: YggProblem, state: YggState = "failed"): void {
    this.#problem = problem;
    this.#state = state;
    if (state === "unavailable") this.#effective = "none";
    this.#log(state === "unavailable" ? "warn" : "error", `${problem.code}: ${problem.message}${problem.fix.length ? ` — fix: ${problem.fix.join(" ; ")}` : ""}`);
  }

  async #startAuto(gen: number): Promise<void> {
    const platform = detectPlatform();
    const binary = findYggdrasilBinary(this.#o.binary);
    let spawnProblem: YggProblem | undefined;
    if (!binary) spawnProblem = problemBinaryMissing(platform, this.#o.binary);
    else {
      const r = await checkPrivileges(binary);
      this.#checkCurrent(gen);
      if (canSpawnTun(r)) {
        try {
          await this.#startSpawn(gen);
          return;
        } catch (err) {
          // Privileges looked fine but the daemon disagreed (e.g. a seccomp'd container): try a system daemon.
          if (!(err instanceof P2PError) || err.code !== "P2P_ERR_YGG_NO_PRIVILEGE") throw err;
          spawnProblem = this.#problem;
          this.#problem = undefined;
          this.#effective = "none"; // not spawning: a failure below must not be retried as a spawn
        }
      } else spawnProblem = problemNoPrivilege(platform, binary, r);
    }
    const sys = await probeSystemDaemon(this.#systemCandidates());
    this.#checkCurrent(gen);
    if (sys.self) {
      await this.#useSystem(sys.socket!, gen);
      return;
    }
    const sysProblem = problemAdminUnreachable(platform, sys.errno === "EACCES" && sys.socket ? [sys.socket] : this.#systemCandidates(), sys.errno, sys.detail);
    const problem = sys.errno === "EACCES" || !spawnProblem ? sysProblem : spawnProblem;
    this.#fail({ ...problem, fix: [...problem.fix, AUTO_RESTART_FIX] }, "unavailable");
  }

  #systemCandidates(): readonly string[] {
    return this.#o.adminSocket ? [this.#o.adminSocket] : SYSTEM_ADMIN_SOCKETS;
  }

  // ---------------------------------------------------------------- system mode

  async #startSystem(gen: number): Promise<void> {
    const candidates = this.#systemCandidates();
    const sys = await probeSystemDaemon(candidates);
    this.#checkCurrent(gen);
    if (!sys.self) {
      this.#problem = problemAdminUnreachable(detectPlatform(), sys.errno === "EACCES" && sys.socket ? [sys.socket] : candidates, sys.errno, sys.detail);
      throw new P2PError("P2P_ERR_YGG_ADMIN_UNREACHABLE", this.#problem.message);
    }
    await this.#useSystem(sys.socket!, gen);
  }

  async #useSystem(socket: string, gen: number): Promise<void> {
    const self = await getSelf(socket);
    this.#checkCurrent(gen);
    this.#systemSocket = socket;
    this.#address = self.address;
    this.#subnet = self.subnet;
    this.#systemVersion = self.buildVersion;
    this.#effective = "system";
    this.#state = "running";
    this.#log("info", `using the system daemon at ${socket}: address ${self.address} (key bound on first use)`);
    for (const uri of this.#peers) await this.#systemAdd(uri);
  }

  async #systemAdd(uri: string): Promise<void> {
    try {
      if (await addPeer(this.#systemSocket!, uri)) this.#systemAdded.add(uri);
      else this.#log("info", `peer ${uri} is already configured on the system daemon; leaving it to the daemon's administrator`);
    } catch (err) {
      this.#log("warn", `cannot add peer ${uri} to the system daemon: ${(err as Error).message}`);
    }
  }

  /** Takes back the peers we added to a system daemon, all at once so that the admin timeout bounds the wait. */
  async #systemRemoveAdded(socket: string): Promise<void> {
    const uris = [...this.#systemAdded];
    this.#systemAdded.clear();
    const results = await Promise.allSettled(uris.map((uri) => removePeer(socket, uri)));
    results.forEach((r, i) => {
      if (r.status === "rejected") this.#log("warn", `cannot remove peer ${uris[i]} from the system daemon: ${(r.reason as Error).message}`);
    });
  }

  // ---------------------------------------------------------------- spawn mode

  async #startSpawn(gen: number): Promise<void> {
    const platform = detectPlatform();
    const binary = findYggdrasilBinary(this.#o.binary);
    if (!binary) {
      this.#problem = problemBinaryMissing(platform, this.#o.binary);
      throw new P2PError("P2P_ERR_YGG_BINARY_MISSING", this.#problem.message);
    }
    this.#binary = await probeBinary(binary);
    this.#checkCurrent(gen);
    this.#effective = "spawn";
    const { dir } = this.#paths;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700); // an existing dir may be looser; the admin socket inside must be ours alone
    } catch (err) {
      throw new P2PError("P2P_ERR_DATA_DIR", `cannot create ${dir}: ${(err as Error).message}`, { cause: err });
    }
    await killStaleDaemon(this.#paths.pid, this.#paths.conf, (m) => { this.#log("warn", m); this.#daemonLog.note(m); });
    await this.#launch(gen);
  }

  /** Writes the daemon config; returns the interface name in it. */
  #writeConfig(): string {
    let cfg: Record<string, unknown>;
    try {
      cfg = buildDaemonConfig({
        privateKeyHex: yggdrasilPrivateKeyHex(this.#o.identity),
        address: this.#o.identity.address,
        listen: this.#o.listen,
        peers: this.#peers,
        adminSocketPath: this.#paths.adminSocket,
        multicast: this.#o.multicast,
      });
    } catch (err) {
      const fix = /%/.test((err as Error).message) ? "use a --data-dir path without a % in it" : "use a shorter --data-dir path";
      this.#problem = { code: "P2P_ERR_CONFIG", message: (err as Error).message, fix: [fix] };
      throw new P2PError("P2P_ERR_CONFIG", (err as Error).message);
    }
    writeFileAtomic(this.#paths.conf, renderDaemonConfig(cfg), 0o600);
    return String(cfg.IfName);
  }

  /**
   * Writes the config, starts the daemon, waits for it, checks its address. Leaves no daemon behind on failure, nor
   * when stop() superseded generation `gen` meanwhile.
   */
  async #launch(gen: number): Promise<void> {
    this.#checkCurrent(gen);
    try { unlinkSync(this.#paths.adminSocket); } catch { /* no stale socket */ }
    const ifName = this.#writeConfig();
    this.#daemonLog.resetTail();
    const d = spawnDaemon(this.#binary!.path, this.#paths.conf, this.#daemonLog);
    this.#daemon = d;
    // At once, not when ready: a daemon orphaned while starting (we crash, or it outlives us) is found by the next start.
    if (d.pid > 0) writePid(this.#paths.pid, d.pid);
    void d.exited.then(() => this.#onExit(d));
    const abandon = async (): Promise<void> => {
      this.#expectedExits.add(d);
      await stopDaemon(d);
      removePid(this.#paths.pid);
    };
    let self;
    try {
      self = await waitReady(d, this.#paths.adminSocket, this.#daemonLog, ifName);
    } catch (err) {
      await abandon();
      if (err instanceof P2PError && err.code === "P2P_ERR_YGG_NO_PRIVILEGE") {
        this.#problem = problemNoPrivilege(detectPlatform(), this.#binary!.path, await checkPrivileges(this.#binary!.path), err.message);
      } else if (err instanceof P2PError && err.code === "P2P_ERR_YGG_START_FAILED") {
        this.#problem = problemStartFailed(err.message, this.#paths.log);
      }
      throw err;
    }
    if (gen !== this.#generation) {
      await abandon();
      throw new P2PError("P2P_ERR_SHUTTING_DOWN", "stopped while yggdrasil was starting");
    }
    const ours = this.#o.identity.addressBytes;
    const theirs = parseIPv6(self.address);
    if (!theirs || !bytesEqual(theirs, ours)) {
      await abandon();
      this.#problem = problemAddressMismatch(self.address, this.#o.identity.address, this.#binary!.path, displayVersion(this.#binary!));
      throw new P2PError("P2P_ERR_YGG_ADDRESS_MISMATCH", this.#problem.message);
    }
    this.#unansweredSince = undefined;
    this.#address = self.address;
    this.#subnet = self.subnet;
    this.#problem = undefined;
    this.#nextRestart = undefined;
    this.#state = "running";
    this.#log("info", `daemon pid ${d.pid} running as ${self.address} (${displayVersion(this.#binary!)})`);
  }

  #onExit(d: DaemonHandle): void {
    if (this.#daemon === d) this.#daemon = undefined;
    if (this.#expectedExits.has(d) || this.#state !== "running" || this.#effective !== "spawn") return;
    removePid(this.#paths.pid);
    const how = d.exit?.signal ? `killed by ${d.exit.signal}` : `exited with status ${String(d.exit?.code)}`;
    this.#daemonLog.note(`daemon pid ${d.pid} ${how}`);
    if (Date.now() - d.startedAt >= STABLE_RUN_MS) this.#failures = 0;
    this.#state = "restarting";
    this.#scheduleRestart(`daemon pid ${d.pid} ${how}`);
  }

  /**
   * Records whether our spawned daemon's admin socket answered a call (`err`: what the call threw). Only "did not
   * answer" counts against it (an error reply is an answer); past UNRESPONSIVE_MS of that, the daemon is killed, and
   * #onExit restarts it with the usual backoff.
   */
  #adminAnswered(err?: unknown): void {
    if (this.#effective !== "spawn") return;
    if (!(err instanceof P2PError && err.code === "P2P_ERR_YGG_ADMIN_UNREACHABLE")) {
      this.#unansweredSince = undefined;
      return;
    }
    const now = Date.now();
    this.#unansweredSince ??= now;
    const d = this.#daemon;
    const limit = this.#o.unresponsiveMs ?? UNRESPONSIVE_MS;
    if (!d || this.#state !== "running" || now - this.#unansweredSince < limit) return;
    this.#unansweredSince = undefined;
    const why = `daemon pid ${d.pid} has not answered its admin socket for ${Math.round(limit / 1000)} s; killing it to restart it`;
    this.#log("warn", why);
    this.#daemonLog.note(why);
    try {
      process.kill(d.pid, "SIGKILL");
    } catch {
      // already gone: its exit restarts it anyway
    }
  }

  #scheduleRestart(why: string): void {
    const delay = jitter(RESTART_BACKOFF_MS[Math.min(this.#failures, RESTART_BACKOFF_MS.length - 1)]!);
    this.#failures++;
    this.#nextRestart = { reason: why, at: Date.now() + delay };
    this.#log("warn", `${why}; restarting in ${delay} ms`);
    const gen = this.#generation;
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (gen !== this.#generation) return;
      void this.#enqueue(() => this.#restart(gen));
    }, delay);
  }

  async #restart(gen: number): Promise<void> {
    if (gen !== this.#generation || this.#state !== "restarting") return;
    try {
      await this.#launch(gen);
      this.#log("info", "daemon restarted");
    } catch (err) {
      if (gen !== this.#generation) return;
      const code = err instanceof P2PError ? err.code : "P2P_ERR_YGG_START_FAILED";
      if (FATAL_CODES.includes(code)) {
        this.#fail(this.#problem ?? { code, message: (err as Error).message, fix: [] });
        return;
      }
      this.#problem = this.#problem ?? problemStartFailed((err as Error).message, this.#paths.log);
      this.#state = "restarting";
      this.#scheduleRestart(`restart failed: ${(err as Error).message}`);
    }
  }

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Stops our daemon (SIGTERM, then SIGKILL) and any pending restart, or lets go of the system one after removing
   * the peers we added to it (best effort: failures are logged). Idempotent.
   */
  async stop(): Promise<void> {
    this.#generation++;
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const d = this.#daemon;
    if (d) {
      this.#expectedExits.add(d);
      await stopDaemon(d);
      this.#daemon = undefined;
    }
    if (this.#effective === "spawn") {
      removePid(this.#paths.pid);
      try { unlinkSync(this.#paths.adminSocket); } catch { /* the daemon removed it */ }
    }
    await this.#starting?.catch(() => undefined);
    // A system daemon is shared: leave it with the peers it had before us. Queued behind any setPeers/redial so
    // that none of them adds a peer after the removal; with no socket left, later ones leave the daemon alone.
    const systemSocket = this.#effective === "system" ? this.#systemSocket : undefined;
    this.#systemSocket = undefined;
    if (systemSocket) await this.#enqueue(() => this.#systemRemoveAdded(systemSocket));
    this.#daemonLog.close();
    if (this.#state !== "unavailable") {
      this.#state = "stopped";
      this.#problem = undefined; // e.g. the start that stop() interrupted
    }
  }

  /**
   * Replaces the peer list at run time: addPeer for new URIs, removePeer for dropped ones — never SIGHUP (it kills
   * the daemon). Yggdrasil 0.4.7 keeps re-dialling a removed TCP peer (checked on Debian's 0.4.7: removePeer closes the
   * link once and it reconnects within a second), so on the 0.4 line a removal restarts our daemon with the new
   * config instead. A system daemon only loses peers that we added to it.
   */
  setPeers(peers: string[]): Promise<void> {
    return this.#enqueue(() => this.#setPeers(uniq(peers)));
  }

  async #setPeers(next: string[]): Promise<void> {
    const prev = this.#peers;
    this.#peers = next;
    const added = next.filter((p) => !prev.includes(p));
    const removed = prev.filter((p) => !next.includes(p));
    if (this.#effective === "system" && this.#systemSocket && this.#state === "running") {
      for (const uri of added) await this.#systemAdd(uri);
      for (const uri of removed) {
        if (!this.#systemAdded.has(uri)) continue;
        await removePeer(this.#systemSocket, uri);
        this.#systemAdded.delete(uri);
      }
      return;
    }
    if (this.#effective !== "spawn") return;
    // Keep the file current so a restart after a crash comes back with the same peers.
    this.#writeConfig();
    const d = this.#daemon;
    if (this.#state !== "running" || !d) return;
    for (const uri of added) await addPeer(this.#paths.adminSocket, uri);
    if (removed.length === 0) return;
    if (this.#binary?.line === "0.5") {
      for (const uri of removed) await removePeer(this.#paths.adminSocket, uri);
      return;
    }
    this.#log("info", `restarting the 0.4 daemon to drop ${removed.length} peer(s) (0.4 re-dials removed peers)`);
    const gen = this.#generation;
    this.#state = "restarting";
    this.#expectedExits.add(d);
    await stopDaemon(d);
    if (gen !== this.#generation) return;
    try {
      await this.#launch(gen);
    } catch (err) {
      const code = err instanceof P2PError ? err.code : "P2P_ERR_YGG_START_FAILED";
      if (FATAL_CODES.includes(code)) this.#fail(this.#problem ?? { code, message: (err as Error).message, fix: [] });
      else {
        this.#state = "restarting";
        this.#scheduleRestart(`restart after peer change failed: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  /**
   * Dials again every configured peer that has no live link. Yggdrasil 0.4 re-dials a lost configured peer only
   * once a minute, and `addPeer` of a configured URI does not dial; `removePeer` then `addPeer` does, within a
   * second. The node calls this every few seconds so that a restarted hub or a late peer is back quickly.
   * A live link is recognised by peerUriKey (0.4.7's `remote` lacks the URI's query and trailing slash): redialling a
   * live link would drop it. A peer whose admin calls fail (e.g. `quic://` on 0.4: "unknown call scheme") is warned
   * about once per distinct error and does not keep the others from being dialled. Returns how many were dialled.
   */
  redial(): Promise<number> {
    return this.#enqueue(async () => {
      const socket = this.#effective === "spawn" ? this.#paths.adminSocket : this.#systemSocket;
      if (this.#state !== "running" || !socket || this.#binary?.line === "0.5") return 0;
      const wanted = this.#effective === "spawn" ? this.#peers : [...this.#systemAdded];
      if (wanted.length === 0) return 0;
      let linked: AdminPeer[];
      try {
        linked = await getPeers(socket, STATUS_ADMIN_TIMEOUT_MS);
        this.#adminAnswered();
      } catch (err) {
        this.#adminAnswered(err);
        throw err;
      }
      const live = new Set(linked.filter((p) => p.up && p.uri).map((p) => peerUriKey(p.uri!)));
      for (const uri of this.#redialErrors.keys()) if (!wanted.includes(uri)) this.#redialErrors.delete(uri);
      let n = 0;
      for (const uri of wanted) {
        if (live.has(peerUriKey(uri))) {
          this.#redialErrors.delete(uri);
          continue;
        }
        try {
          await removePeer(socket, uri);
          await addPeer(socket, uri);
          this.#redialErrors.delete(uri);
          n++;
        } catch (err) {
          const msg = (err as Error).message;
          if (this.#redialErrors.get(uri) !== msg) this.#log("warn", `cannot redial peer ${uri}: ${msg}`);
          this.#redialErrors.set(uri, msg);
        }
      }
      return n;
    });
  }

  /** A snapshot; when running, peers (and for system mode the address) are read live from the admin socket. */
  async status(): Promise<YggStatus> {
    const s: YggStatus = {
      mode: this.#o.mode,
      effectiveMode: this.#effective,
      state: this.#state,
      keyBinding: this.#effective === "spawn" ? "derived" : this.#effective === "system" ? "first-use" : "n/a",
    };
    if (this.#effective === "spawn") {
      s.adminSocket = this.#paths.adminSocket;
      if (this.#binary) s.version = displayVersion(this.#binary);
      if (this.#state === "running" && this.#daemon) {
        s.pid = this.#daemon.pid;
        s.uptimeMs = Date.now() - this.#daemon.startedAt;
      }
    }
    if (this.#address) s.address = this.#address;
    if (this.#subnet) s.subnet = this.#subnet;
    const socket = this.#effective === "spawn" ? this.#paths.adminSocket : this.#systemSocket;
    if (this.#effective === "system" && this.#systemVersion) s.version = this.#systemVersion;
    if (this.#state === "running" && socket) {
      if (this.#effective === "system") s.adminSocket = socket;
      try {
        if (this.#effective === "system") {
          const self = await getSelf(socket, STATUS_ADMIN_TIMEOUT_MS);
          s.address = self.address;
          s.subnet = self.subnet;
        }
        s.peers = (await getPeers(socket, STATUS_ADMIN_TIMEOUT_MS)).map(toPeerStatus);
        this.#adminAnswered();
      } catch (err) {
        this.#adminAnswered(err);
        const code: ErrorCode = err instanceof P2PError ? err.code : "P2P_ERR_YGG_ADMIN";
        // A system daemon that does not answer is not running for us, whatever our own state says (it is not ours to
        // restart); with the same key it comes back at the same address, and the node uses it again as it answers.
        const down = this.#effective === "system" && code === "P2P_ERR_YGG_ADMIN_UNREACHABLE";
        if (down) s.state = "unavailable";
        const fix = down ? [SYSTEM_DOWN_FIX] : this.#effective === "system" ? ["sudo systemctl status yggdrasil"] : [`read ${this.#paths.log}`];
        s.problem = { code, message: (err as Error).message, fix };
      }
    }
    if (this.#problem && !s.problem) s.problem = this.#problem;
    if (this.#state === "restarting" && this.#nextRestart) s.restart = { ...this.#nextRestart, failures: this.#failures };
    return s;
  }
}
