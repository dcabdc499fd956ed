/**
 * Node configuration. Hosts speak snake_case (the OpenClaw plugin config and `<data_dir>/config.json` share the same
 * keys); the core uses the camelCase NodeConfig. Every value is checked; a bad one is a P2P_ERR_CONFIG naming the key.
 */
import { accessSync, constants as fsConstants, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join } from "node:path";
import { P2PError } from "./errors.ts";
import { MAX_BODY_BYTES, TIMESTAMP_WINDOW_MS } from "./wire.ts";

export type YggdrasilMode = "auto" | "spawn" | "system" | "off";

export interface NodeConfig {
  peerPort: number;
  yggdrasil: YggdrasilMode;
  yggdrasilPeers: string[];
  yggdrasilListen: string[];
  yggdrasilMulticast: boolean;
  yggdrasilAdminSocket: string | undefined;
  /** The daemon binary spawn mode runs (and setup checks); unset: the first `yggdrasil` on PATH or in the usual dirs. */
  yggdrasilBinary: string | undefined;
  timestampWindowMs: number;
  maxMessageAgeMs: number;
  bodyLimitBytes: number;
  rateLimit: { perSecond: number; burst: number };
  /**
   * Messages kept from one peer the user has not accepted yet (trust "pending"); beyond that the peer is answered
   * 429 P2P_ERR_PENDING_QUOTA and its sender keeps them queued. Not a config.json key: the default is the policy.
   */
  pendingMaxMessages: number;
  /**
   * Peers not accepted yet that this node keeps at once; a new sender past that is answered 429 P2P_ERR_PENDING_QUOTA
   * (and keeps its message queued) until the user allows, blocks or removes some. With pendingMaxMessages this bounds
   * the disk strangers can fill in total, however many addresses they send from. Not a config.json key either.
   */
  pendingMaxPeers: number;
}

const DAY_MS = 86_400_000;

export const DEFAULT_CONFIG: NodeConfig = Object.freeze({
  peerPort: 8099,
  yggdrasil: "auto",
  yggdrasilPeers: [],
  yggdrasilListen: [],
  yggdrasilMulticast: false,
  yggdrasilAdminSocket: undefined,
  yggdrasilBinary: undefined,
  timestampWindowMs: 5 * 60_000,
  maxMessageAgeMs: 7 * DAY_MS,
  bodyLimitBytes: 64 * 1024,
  // Generous for a person or an agent, tight for a flood: 50 requests/s sustained per source, bursts of 200.
  rateLimit: Object.freeze({ perSecond: 50, burst: 200 }),
  // A stranger's messages wait for the user's decision; 200 is plenty to introduce oneself, and bounds the disk a
  // stranger can fill to 200 x 64 KiB per address.
  pendingMaxMessages: 200,
  // Far more strangers than wait for a decision in normal use; with the above, strangers' messages fill at most
  // 100 x 200 x 64 KiB = 1.25 GiB (at the largest body), whatever number of addresses they use.
  pendingMaxPeers: 100,
}) as NodeConfig;

export const CONFIG_FILE = "config.json";

export function defaultDataDir(): string {
  return join(homedir(), ".openclaw", "ipv6-p2p");
}

/** The next step for a data directory that cannot be used, in both hosts' words. */
const OTHER_DATA_DIR = "choose another data directory (declaw: --data-dir or DECLAW_DATA_DIR; OpenClaw plugin: data_dir)";

/**
 * Why `dataDir` cannot serve as the data directory (`cause`: the error that made us look), as a P2P_ERR_DATA_DIR
 * with a next step; undefined when the directory itself looks fine (or does not exist yet: it is created on first
 * use), so the caller reports its own error. Only looks; never creates or changes anything.
 */
export function dataDirError(dataDir: string, cause?: unknown): P2PError | undefined {
  const fail = (message: string, hint: string, err: unknown = cause) => new P2PError("P2P_ERR_DATA_DIR", message, { hint, cause: err });
  let isDir: boolean;
  try {
    isDir = statSync(dataDir).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    if (code === "ENOTDIR") return fail(`data directory ${dataDir} cannot be created: a part of its path is a file, not a directory`, OTHER_DATA_DIR, err);
    return fail(`cannot reach data directory ${dataDir}: ${(err as Error).message}`, `make its parent directories searchable by this user, or ${OTHER_DATA_DIR}`, err);
  }
  if (!isDir) return fail(`data directory ${dataDir} is a file, not a directory`, `${OTHER_DATA_DIR}, or move that file out of the way`);
  try {
    accessSync(dataDir, fsConstants.R_OK | fsConstants.X_OK);
  } catch (err) {
    return fail(`cannot read data directory ${dataDir}: ${(err as Error).message}`, `run as the user that owns ${dataDir} (it is private to its owner), fix its permissions, or ${OTHER_DATA_DIR}`, err);
  }
  return undefined;
}

/** The snake_case keys hosts accept (OpenClaw plugin config, config.json). Host-only keys are ignored here. */
const SNAKE_KEYS: Record<string, (cfg: NodeConfig, v: unknown, key: string) => void> = {
  peer_port: (c, v, k) => (c.peerPort = int(v, k, 1, 65535)),
  yggdrasil: (c, v, k) => (c.yggdrasil = oneOf(v, k, ["auto", "spawn", "system", "off"] as const)),
  yggdrasil_peers: (c, v, k) => (c.yggdrasilPeers = peerUris(v, k)),
  yggdrasil_listen: (c, v, k) => (c.yggdrasilListen = peerUris(v, k)),
  yggdrasil_multicast: (c, v, k) => (c.yggdrasilMulticast = bool(v, k)),
  yggdrasil_admin_socket: (c, v, k) => (c.yggdrasilAdminSocket = adminSocketPath(v, k)),
  yggdrasil_binary: (c, v, k) => (c.yggdrasilBinary = absolutePath(v, k)),
  // Not below the protocol's window: v1 retries re-send their first timestamp for up to 4 min (V1_TS_REUSE_MS).
  timestamp_window_seconds: (c, v, k) => (c.timestampWindowMs = int(v, k, TIMESTAMP_WINDOW_MS / 1000, 86_400,
    "the minimum is the protocol's +-5 minute window (docs/protocol.md section 2); v1 retries reuse their first timestamp for up to 4 minutes") * 1000),
  max_message_age_days: (c, v, k) => (c.maxMessageAgeMs = num(v, k, 0.001, 365) * DAY_MS),
  // Not below MAX_BODY_BYTES: senders treat 413 as final, so a spec-valid message over a lower limit would be lost.
  body_limit_bytes: (c, v, k) => (c.bodyLimitBytes = int(v, k, MAX_BODY_BYTES, 16 * 1024 * 1024,
    "the minimum is the protocol's MAX_BODY_BYTES, the largest body every receiver must accept (docs/protocol.md sections 2 and 9)")),
  rate_limit_per_second: (c, v, k) => (c.rateLimit = { ...c.rateLimit, perSecond: num(v, k, 0.01, 1e6) }),
  rate_limit_burst: (c, v, k) => (c.rateLimit = { ...c.rateLimit, burst: int(v, k, 1, 1e6) }),
};

/** Keys the core knows but leaves to hosts (so config.json may carry them without an error). */
const HOST_KEYS = new Set(["data_dir", "dmPolicy", "dm_policy", "loop_budget", "loop_window_minutes", "allow_from", "peer_tools"]);

export function configFromSnake(input: unknown, base: NodeConfig = DEFAULT_CONFIG, source = "config"): NodeConfig {
  const cfg: NodeConfig = { ...base, rateLimit: { ...base.rateLimit } };
  // Only an absent value means "no config" (a missing config.json, no plugin config); a file holding null is a mistake.
  if (input === undefined) return cfg;
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new P2PError("P2P_ERR_CONFIG", `${source} must be a JSON object`, { hint: `make ${source} an object such as {"peer_port": 8099}, or remove it` });
  }
  for (const [key, value] of Object.entries(input)) {
    // Own keys only: "__proto__" (an own key after JSON.parse), "constructor", "toString"... are unknown keys.
    const apply = Object.hasOwn(SNAKE_KEYS, key) ? SNAKE_KEYS[key] : undefined;
    if (apply) {
      try {
        apply(cfg, value, `${source}: ${key}`);
      } catch (err) {
        if (!(err instanceof P2PError) || err.hint !== undefined) throw err;
        throw new P2PError(err.code, err.message, { hint: `correct "${key}" in ${source}, or remove it to use the default` });
      }
    } else if (!HOST_KEYS.has(key)) {
      throw new P2PError("P2P_ERR_CONFIG", `${source}: unknown key "${key}"`, {
        hint: `known keys: ${[...Object.keys(SNAKE_KEYS), ...HOST_KEYS].join(", ")}`,
      });
    }
  }
  return cfg;
}

/**
 * Reads `<data_dir>/config.json` if it exists (it is optional) and returns the resulting config. A data directory
 * that is not one (a file, an unreadable directory) is reported as such (P2P_ERR_DATA_DIR), not as a config error.
 */
/**
 * `ignored`: host keys found in the file (`dm_policy`, `data_dir`, ...). They load without an error (a copied plugin
 * config still works), but no host reads them from this file: the OpenClaw plugin takes them from its own config.
 */
export function loadConfigFile(dataDir: string): { config: NodeConfig; raw: Record<string, unknown>; ignored: string[] } {
  const file = join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { config: configFromSnake(undefined), raw: {}, ignored: [] };
    throw dataDirError(dataDir, err) ?? new P2PError("P2P_ERR_CONFIG", `cannot read ${file}: ${(err as Error).message}`, {
      hint: `make ${file} a file readable by this user, or remove it (it is optional)`,
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new P2PError("P2P_ERR_CONFIG", `${file} is not valid JSON`, { hint: `fix or remove ${file}` });
  }
  const config = configFromSnake(raw, DEFAULT_CONFIG, file); // refuses anything but an object
  return { config, raw: raw as Record<string, unknown>, ignored: Object.keys(raw as object).filter((k) => HOST_KEYS.has(k)) };
}

/** `why`: the reason for the bounds, when they are not obvious. */
function bad(key: string, want: string, v: unknown, why?: string): never {
  throw new P2PError("P2P_ERR_CONFIG", `${key} must be ${want} (got ${JSON.stringify(v) ?? String(v)})${why ? `: ${why}` : ""}`);
}
function int(v: unknown, key: string, min: number, max: number, why?: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) bad(key, `an integer from ${min} to ${max}`, v, why);
  return v;
}
function num(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) bad(key, `a number from ${min} to ${max}`, v);
  return v;
}
function bool(v: unknown, key: string): boolean {
  if (typeof v !== "boolean") bad(key, "true or false", v);
  return v;
}
function str(v: unknown, key: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > 4096) bad(key, "a non-empty string", v);
  return v;
}
/**
 * A system daemon's admin socket: an absolute unix socket path, or the daemon's own AdminListen spelling
 * `unix:///path` (stored as the plain path). Our admin client speaks unix sockets only, so `tcp://` (which AdminListen
 * also allows) is refused here rather than failing later as "no such socket".
 */
function adminSocketPath(v: unknown, key: string): string {
  const s = str(v, key);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(s)?.[1];
  const example = "a unix socket path such as /var/run/yggdrasil/yggdrasil.sock or unix:///var/run/yggdrasil/yggdrasil.sock";
  if (scheme !== undefined && scheme.toLowerCase() !== "unix") bad(key, example, v, `only a unix socket is supported, not ${scheme}://`);
  const path = scheme === undefined ? s : s.slice("unix://".length);
  if (!isAbsolute(path)) bad(key, example, v, "the path must be absolute");
  return path;
}
function absolutePath(v: unknown, key: string): string {
  const s = str(v, key);
  if (!isAbsolute(s)) bad(key, "an absolute path", v);
  return s;
}
function oneOf<T extends string>(v: unknown, key: string, options: readonly T[]): T {
  if (typeof v !== "string" || !options.includes(v as T)) bad(key, `one of ${options.join(", ")}`, v);
  return v as T;
}
/** Yggdrasil peer and listen URIs: tcp://, tls://, quic://, ws://, wss://, unix:// (checked for shape only). */
/** Yggdrasil peer or listen URIs (config.json's yggdrasil_peers/yggdrasil_listen, `declaw run --peer/--listen`). */
export function peerUris(v: unknown, key: string): string[] {
  if (!Array.isArray(v) || v.length > 64) bad(key, "an array of at most 64 URIs", v);
  return v.map((u, i) => {
    if (typeof u !== "string" || !/^(tcp|tls|quic|ws|wss|socks|sockstls|unix):\/\/\S+$/.test(u) || u.length > 1024) {
      bad(`${key}[${i}]`, "a URI such as tcp://host:port or tls://host:port", u);
    }
    return u;
  });
}
