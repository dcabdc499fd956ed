/**
 * Problems a user can fix, each with a stable code, a message saying exactly what is wrong, and the commands that
 * fix it on this platform. `diagnoseYggdrasil` is what `declaw status` shows when no node runs: it looks (binary,
 * privileges, admin sockets, our pid file) but never starts, writes or kills anything.
 */
import { readFileSync } from "node:fs";
import { findYggdrasilBinary, probeBinary, BINARY_EXTRA_DIRS } from "./binary.ts";
import { getSelf } from "./admin.ts";
import { UNIX_SOCKET_PATH_MAX_BYTES } from "./config.ts";
import { canSpawnTun, checkPrivileges, TUN_DEVICE, type PrivilegeReport } from "./privileges.ts";
import { spawnPaths, SYSTEM_ADMIN_SOCKETS } from "./paths.ts";
import { ownDaemonPid } from "./pidfile.ts";
import type { YggOptions, YggProblem, YggStatus } from "./types.ts";

export type Platform = "debian" | "fedora" | "arch" | "macos" | "linux" | "other";

/** Pure: the package family from /etc/os-release text (ID and ID_LIKE). */
export function platformFromOsRelease(text: string): Platform {
  const ids = [...text.matchAll(/^(?:ID|ID_LIKE)=("?)([^"\n]*)\1$/gm)].flatMap((m) => m[2]!.toLowerCase().split(/\s+/));
  if (ids.some((i) => ["debian", "ubuntu"].includes(i))) return "debian";
  if (ids.some((i) => ["fedora", "rhel", "centos"].includes(i))) return "fedora";
  if (ids.some((i) => ["arch", "manjaro", "endeavouros"].includes(i))) return "arch";
  return "linux";
}

export function detectPlatform(): Platform {
  if (process.platform === "darwin") return "macos";
  if (process.platform !== "linux") return "other";
  try {
    return platformFromOsRelease(readFileSync("/etc/os-release", "utf8"));
  } catch {
    return "linux";
  }
}

export const INSTALL_COMMANDS: Record<Exclude<Platform, "linux" | "other">, string> = {
  debian: "sudo apt install yggdrasil",
  fedora: "sudo dnf install yggdrasil",
  arch: "sudo pacman -S yggdrasil",
  macos: "brew install yggdrasil",
};

export function installFix(p: Platform): string[] {
  if (p === "linux" || p === "other") {
    return [...Object.values(INSTALL_COMMANDS).map((c) => `${c}   # on that platform`), "or see https://yggdrasil-network.github.io/installation.html"];
  }
  return [INSTALL_COMMANDS[p]];
}

const GROUP_FIX = ["sudo usermod -aG yggdrasil $USER", "then log out and in again (or run `newgrp yggdrasil`) so the group applies"];

function serviceStart(p: Platform): string {
  return p === "macos" ? "sudo brew services start yggdrasil" : "sudo systemctl enable --now yggdrasil";
}

export function problemBinaryMissing(p: Platform, explicit?: string): YggProblem {
  return {
    code: "P2P_ERR_YGG_BINARY_MISSING",
    message: explicit
      ? `yggdrasil binary ${explicit} does not exist or is not executable`
      : `yggdrasil is not installed (looked in $PATH and ${BINARY_EXTRA_DIRS.join(", ")})`,
    fix: explicit ? [`check the configured path ${explicit}`, ...installFix(p)] : installFix(p),
  };
}

/**
 * CAP_NET_ADMIN missing from the bounding set (typically a container started without `--cap-add NET_ADMIN`): neither
 * root nor a file capability can raise a capability beyond it, so `setcap` cannot help; only whoever starts the
 * container can.
 */
export const NOT_BOUNDED_FIX: readonly string[] = [
  "run the container with --cap-add NET_ADMIN --device /dev/net/tun (CAP_NET_ADMIN is not in this process's bounding set, so no setcap inside can grant it)",
  "or run yggdrasil outside the container, mount its admin socket into it, and set yggdrasil mode \"system\" and yggdrasil_admin_socket to that path",
];

/** Why a spawned daemon cannot create its TUN, and the ways out (file capability, root, or the system service). */
export function problemNoPrivilege(p: Platform, binary: string | undefined, r: PrivilegeReport | undefined, detail?: string): YggProblem {
  const bin = binary ?? "\"$(command -v yggdrasil)\"";
  const reasons: string[] = [];
  const fix: string[] = [];
  const notBounded = r !== undefined && !r.capNetAdmin && !r.capNetAdminBounded;
  if (p === "macos") {
    reasons.push("macOS needs root to create a utun interface");
    fix.push(serviceStart(p), "then set yggdrasil mode \"system\" (declaw uses the service's admin socket)");
  } else if (notBounded) {
    reasons.push("CAP_NET_ADMIN is not in this process's capability bounding set (a container started without --cap-add NET_ADMIN?)");
    if (!r.tunPresent) reasons.push(`${TUN_DEVICE} does not exist`);
    else if (!r.tunAccessible) reasons.push(`${TUN_DEVICE} is not readable and writable by uid ${String(r.uid)}`);
    fix.push(...NOT_BOUNDED_FIX);
  } else {
    if (r && !r.tunPresent) {
      reasons.push(`${TUN_DEVICE} does not exist`);
      fix.push("sudo modprobe tun");
    } else if (r && !r.tunAccessible) {
      reasons.push(`${TUN_DEVICE} is not readable and writable by uid ${String(r.uid)}`);
      fix.push(`sudo chmod 0666 ${TUN_DEVICE}`);
    }
    if (!r || (!r.capNetAdmin && r.binaryCapNetAdmin !== true)) {
      reasons.push(r?.root
        ? "this process runs as root but without CAP_NET_ADMIN in its effective set"
        : `this process is not root and ${binary ?? "the yggdrasil binary"} has no cap_net_admin file capability`);
      fix.push(`sudo setcap cap_net_admin+ep ${bin}`);
    }
    fix.push(`or use the system service: ${serviceStart(p)}`, ...GROUP_FIX, "and set yggdrasil mode \"system\"");
  }
  const why = reasons.length ? reasons.join("; ") : "the daemon was refused the TUN interface";
  return {
    code: "P2P_ERR_YGG_NO_PRIVILEGE",
    message: `yggdrasil cannot create its TUN interface (needs CAP_NET_ADMIN and ${TUN_DEVICE}): ${why}${detail ? ` — daemon said: ${detail}` : ""}`,
    fix,
  };
}

/** No usable system daemon socket. `errno` of the best candidate decides between "start it" and "join its group". */
export function problemAdminUnreachable(p: Platform, sockets: readonly string[], errno: string | undefined, detail?: string): YggProblem {
  if (errno === "EACCES") {
    return {
      code: "P2P_ERR_YGG_ADMIN_UNREACHABLE",
      message: `permission denied on the yggdrasil admin socket ${sockets[0]}: this user is not in its group`,
      fix: GROUP_FIX,
    };
  }
  return {
    code: "P2P_ERR_YGG_ADMIN_UNREACHABLE",
    message: `no yggdrasil daemon answers on ${sockets.join(", ")}${detail ? ` (${detail})` : ""}`,
    fix: [serviceStart(p), "or set yggdrasil_admin_socket to the daemon's AdminListen unix socket path"],
  };
}

export function problemStartFailed(message: string, logPath: string): YggProblem {
  return { code: "P2P_ERR_YGG_START_FAILED", message, fix: [`read ${logPath}`, "check the yggdrasil_peers and yggdrasil_listen URIs in the config"] };
}

/**
 * Spawn mode puts the daemon's admin socket at `<data_dir>/yggdrasil/admin.sock`; a unix socket path longer than
 * UNIX_SOCKET_PATH_MAX_BYTES (the limit `buildDaemonConfig` enforces when the supervisor writes the daemon config)
 * makes every start fail. Undefined when the data dir is short enough.
 */
export function problemAdminSocketTooLong(dataDir: string): YggProblem | undefined {
  const socket = spawnPaths(dataDir).adminSocket;
  const bytes = Buffer.byteLength(socket);
  if (bytes <= UNIX_SOCKET_PATH_MAX_BYTES) return undefined;
  const maxDataDirBytes = UNIX_SOCKET_PATH_MAX_BYTES - (bytes - Buffer.byteLength(dataDir));
  return {
    code: "P2P_ERR_CONFIG",
    message: `the data directory path is too long for a spawned daemon: its admin socket ${socket} would be ${bytes} bytes, and a unix socket path can have at most ${UNIX_SOCKET_PATH_MAX_BYTES}`,
    fix: [
      `use a data directory path of at most ${maxDataDirBytes} bytes (declaw: --data-dir or DECLAW_DATA_DIR; OpenClaw plugin: data_dir)`,
      "or use a system daemon: set yggdrasil to \"system\" (and yggdrasil_admin_socket to its socket if it is not in the usual place)",
    ],
  };
}

export function problemAddressMismatch(daemonAddress: string, ours: string, binary: string, version: string): YggProblem {
  return {
    code: "P2P_ERR_YGG_ADDRESS_MISMATCH",
    message: `yggdrasil (${binary}, version ${version}) runs as ${daemonAddress}, but our key derives ${ours}; it did not take our PrivateKey, so it was stopped`,
    fix: ["install yggdrasil 0.4.x or 0.5.x (the PrivateKey config field must be honoured)", ...installFix(detectPlatform())],
  };
}

interface SystemProbe {
  socket?: string;
  self?: { address: string; subnet: string; buildVersion?: string };
  errno?: string;
  detail?: string;
}

/** First answering admin socket among `candidates`; otherwise the most telling failure (EACCES beats ENOENT). */
export async function probeSystemDaemon(candidates: readonly string[], timeoutMs = 1500): Promise<SystemProbe> {
  let best: SystemProbe = {};
  for (const socket of candidates) {
    try {
      const self = await getSelf(socket, timeoutMs);
      return { socket, self };
    } catch (err) {
      const errno = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code;
      if (best.errno === undefined || (errno === "EACCES" && best.errno !== "EACCES") || (errno !== "ENOENT" && best.errno === "ENOENT")) {
        best = { socket, errno: errno ?? "ERROR", detail: (err as Error).message };
      }
    }
  }
  return best;
}

export async function diagnoseYggdrasil(o: Pick<YggOptions, "mode" | "binary" | "adminSocket" | "dataDir">): Promise<YggStatus> {
  if (o.mode === "off") return { mode: "off", effectiveMode: "off", state: "stopped", keyBinding: "n/a" };
  const platform = detectPlatform();
  const binary = findYggdrasilBinary(o.binary);
  const info = binary ? await probeBinary(binary) : undefined;
  const version = info ? `${info.version} (${info.line} line)` : undefined;
  const base = (s: Omit<YggStatus, "mode">): YggStatus => ({ mode: o.mode, ...s, ...(version && !s.version ? { version } : {}) });

  if (o.mode === "spawn" || o.mode === "auto") {
    // A daemon of ours still running (e.g. the node is up, or an orphan): report it rather than a hypothetical.
    const paths = spawnPaths(o.dataDir);
    const pid = ownDaemonPid(paths.pid, paths.conf);
    if (pid !== undefined) {
      try {
        const self = await getSelf(paths.adminSocket, 1500);
        return base({ effectiveMode: "spawn", state: "running", keyBinding: "derived", pid, address: self.address, subnet: self.subnet, adminSocket: paths.adminSocket });
      } catch { /* fall through to the static checks */ }
    }
  }
  let spawnProblem: YggProblem | undefined;
  if (o.mode === "spawn" || o.mode === "auto") {
    if (!binary) spawnProblem = problemBinaryMissing(platform, o.binary);
    else {
      const r = await checkPrivileges(binary);
      if (!canSpawnTun(r)) spawnProblem = problemNoPrivilege(platform, binary, r);
    }
    if (!spawnProblem) {
      // The supervisor would try to spawn and fail on the socket path, without falling back to a system daemon.
      const tooLong = problemAdminSocketTooLong(o.dataDir);
      if (tooLong) return base({ effectiveMode: "none", state: "unavailable", keyBinding: "n/a", problem: tooLong });
      return base({ effectiveMode: "spawn", state: "stopped", keyBinding: "derived", adminSocket: spawnPaths(o.dataDir).adminSocket });
    }
    if (o.mode === "spawn") return base({ effectiveMode: "none", state: "unavailable", keyBinding: "n/a", problem: spawnProblem });
  }
  const sockets = o.adminSocket ? [o.adminSocket] : SYSTEM_ADMIN_SOCKETS;
  const sys = await probeSystemDaemon(sockets);
  if (sys.self) {
    return base({
      effectiveMode: "system", state: "running", keyBinding: "first-use", address: sys.self.address, subnet: sys.self.subnet,
      adminSocket: sys.socket!, ...(sys.self.buildVersion ? { version: sys.self.buildVersion } : {}),
    });
  }
  const sysProblem = problemAdminUnreachable(platform, sys.errno === "EACCES" && sys.socket ? [sys.socket] : sockets, sys.errno, sys.detail);
  // Auto: the spawn problem is the primary one (it is what a root/capability fix solves); the group fix applies
  // only when a system socket exists but refuses us.
  const problem = o.mode === "auto" && spawnProblem && sys.errno !== "EACCES"
    ? { ...spawnProblem, fix: [...spawnProblem.fix] }
    : sysProblem;
  return base({ effectiveMode: "none", state: "unavailable", keyBinding: "n/a", problem });
}
