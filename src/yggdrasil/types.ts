/** The supervisor's public shapes (contract with the node facade, src/core/node.ts). */
import type { Identity } from "../core/identity.ts";

export type YggMode = "auto" | "spawn" | "system" | "off";

export interface YggOptions {
  dataDir: string;
  identity: Identity;
  mode: YggMode;
  /** Peer URIs, e.g. `tcp://[fd00::1]:12345`, `tls://host:443`. */
  peers: string[];
  /** Listen URIs for inbound peerings, e.g. `tcp://[::]:12345`; none by default. */
  listen: string[];
  /** LAN discovery (multicast) on all interfaces; off by default. */
  multicast: boolean;
  /** System mode: the daemon's admin socket path (default: the usual /var/run, /run paths). */
  adminSocket?: string;
  /** Path of the yggdrasil binary (default: $PATH, then /usr/sbin, /usr/local/bin, /opt/homebrew/bin). */
  binary?: string;
  /** Spawn mode: a daemon whose admin socket has not answered for this long is killed and restarted (default 30 s). */
  unresponsiveMs?: number;
  log?: (level: "info" | "warn" | "error", msg: string) => void;
}

export interface YggProblem {
  /** A P2P_ERR_YGG_* code from src/core/errors.ts. */
  code: string;
  message: string;
  /** Shell commands (or short instructions) that fix it, most likely first. */
  fix: string[];
}

export interface YggPeerStatus {
  uri?: string;
  address: string;
  key: string;
  up: boolean;
  uptimeMs?: number;
}

export type YggState = "stopped" | "starting" | "running" | "restarting" | "failed" | "unavailable";

export interface YggStatus {
  mode: YggMode;
  effectiveMode: "spawn" | "system" | "off" | "none";
  state: YggState;
  address?: string;
  subnet?: string;
  /** "derived": the address comes from our own key; "first-use": a system daemon's key, bound to us on first use. */
  keyBinding: "derived" | "first-use" | "n/a";
  pid?: number;
  version?: string;
  uptimeMs?: number;
  adminSocket?: string;
  peers?: YggPeerStatus[];
  problem?: YggProblem;
  /**
   * While restarting (spawn mode): why the daemon is being restarted (how it exited, or why the last start failed),
   * when the next start is due (ms since the epoch), and how many starts in a row have failed or ended early.
   */
  restart?: { reason: string; at: number; failures: number };
}
