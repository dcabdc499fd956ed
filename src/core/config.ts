/**
 * Node configuration. Hosts speak snake_case (the OpenClaw plugin config and `<data_dir>/config.json` share the same
 * keys); the core uses the camelCase NodeConfig. Every value is checked; a bad one is a P2P_ERR_CONFIG naming the key.
 */
import { accessSync, constants as fsConstants, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { P2PError } from "./errors.ts";

export type YggdrasilMode = "auto" | "spawn" | "system" | "off";

export interface NodeConfig {
  peerPort: number;
  yggdrasil: YggdrasilMode;
  yggdrasilPeers: string[];
  yggdrasilListen: string[];
  yggdrasilMulticast: boolean;
  yggdrasilAdminSocket: string | undefined;
  timestampWindowMs: number;
  maxMessageAgeMs: number;
  bodyLimitBytes: number;
  rateLimit: { perSecond: number; burst: number };
  /**
   * Messages kept from one peer the user has not accepted yet (trust "pending"); beyond that the peer is answered
   * 429 P2P_ERR_PENDING_QUOTA and its sender keeps them queued. Not a config.json key: the default is the policy.
   */
  pendingMaxMessages: number;
}

const DAY_MS = 86_400_000;

export const DEFAULT_CONFIG: NodeConfig = Object.freeze({
  peerPort: 8099,
  yggdrasil: "auto",
  yggdrasilPeers: [],
  yggdrasilListen: [],
  yggdrasilMulticast: false,
  yggdrasilAdminSocket: undefined,
  timestampWindowMs: 5 * 60_000,
  maxMessageAgeMs: 7 * DAY_MS,
  bodyLimitBytes: 64 * 1024,
  // Generous for a person or an agent, tight for a flood: 50 requests/s sustained per source, bursts of 200.
  rateLimit: Object.freeze({ perSecond: 50, burst: 200 }),
  // A stranger's messages wait for the user's decision; 200 is plenty to introduce oneself, and bounds the disk a
  // stranger can fill to 200 x 64 KiB per address.
  pendingMaxMessages: 200,
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
  yggdrasil_admin_socket: (c, v, k) => (c.yggdrasilAdminSocket = str(v, k)),
  timestamp_window_seconds: (c, v, k) => (c.timestampWindowMs = int(v, k, 10, 86_400) * 1000),
  max_message_age_days: (c, v, k) => (c.maxMessageAgeMs = num(v, k, 0.001, 365) * DAY_MS),
  body_limit_bytes: (c, v, k) => (c.bodyLimitBytes = int(v, k, 4096, 16 * 1024 * 1024)),
  rate_limit_per_second: (c, v, k) => (c.rateLimit = { ...c.rateLimit, perSecond: num(v, k, 0.01, 1e6) }),
  rate_limit_burst: (c, v, k) => (c.rateLimit = { ...c.rateLimit, burst: int(v, k, 1, 1e6) }),
};

/** Keys the core knows but leaves to hosts (so config.json may carry them without an error). */
const HOST_KEYS = new Set(["data_dir", "dmPolicy", "dm_policy", "loop_budget", "loop_window_minutes", "allow_from"]);

export function configFromSnake(input: unknown, base: NodeConfig = DEFAULT_CONFIG, source = "config"): NodeConfig {
  const cfg: NodeConfig = { ...base, rateLimit: { ...base.rateLimit } };
  if (input === undefined || input === null) return cfg;
  if (typeof input !== "object" || Array.isArray(input)) {
    throw new P2PError("P2P_ERR_CONFIG", `${source} must be a JSON object`, { hint: `make ${source} an object such as {"peer_port": 8099}, or remove it` });
  }
  for (const [key, value] of Object.entries(input)) {
    const apply = SNAKE_KEYS[key];
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
export function loadConfigFile(dataDir: string): { config: NodeConfig; raw: Record<string, unknown> } {
  const file = join(dataDir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { config: configFromSnake(undefined), raw: {} };
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
  return { config: configFromSnake(raw, DEFAULT_CONFIG, file), raw: raw as Record<string, unknown> };
}

function bad(key: string, want: string, v: unknown): never {
  throw new P2PError("P2P_ERR_CONFIG", `${key} must be ${want} (got ${JSON.stringify(v) ?? String(v)})`);
}
function int(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) bad(key, `an integer from ${min} to ${max}`, v);
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
