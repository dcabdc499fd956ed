/**
 * Helpers for the mesh acceptance suites (test/integration/mesh.*.test.ts): what a namespace's TUN carries, which
 * yggdrasil daemons run in it, a "system" daemon started the way the Debian unit does, and running the CLI as an
 * unprivileged user. Everything runs inside testnet namespaces (test/helpers/netns.ts) and dies with them.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { canonicalAddress, isYggdrasilAddress, parseIPv6 } from "../../src/core/address.ts";
import { getSelf } from "../../src/yggdrasil/admin.ts";
import { CLI, startNode, waitFor, type CliResult, type RunningNode } from "./declaw.ts";
import type { Namespace } from "./netns.ts";

export const NOBODY = "nobody";
export const NOBODY_UID = 65534;

/** 200::/7 addresses on interfaces of the namespace, per device (`ip -6 -o addr show`). */
export function meshAddresses(ns: Namespace): { dev: string; address: string }[] {
  const out = ns.exec("ip", ["-6", "-o", "addr", "show"]);
  const found: { dev: string; address: string }[] = [];
  for (const line of out.split("\n")) {
    const m = /^\d+:\s+(\S+)\s+inet6\s+([0-9a-f:]+)\/(\d+)/i.exec(line.trim());
    if (!m) continue;
    const b = parseIPv6(m[2]!);
    if (b && isYggdrasilAddress(b)) found.push({ dev: m[1]!.replace(/@.*$/, ""), address: canonicalAddress(m[2]!)! });
  }
  return found;
}

/** The address on the namespace's `ygg-*` TUN (spawn mode names it ygg-<last 4 hex digits>). */
export function tunAddress(ns: Namespace): { dev: string; address: string } | undefined {
  return meshAddresses(ns).find((a) => a.dev.startsWith("ygg-"));
}

/** Pids of `yggdrasil` processes inside the namespace (`ip netns pids` + /proc/<pid>/comm). */
export function yggdrasilPidsIn(ns: Namespace): number[] {
  let pids: number[] = [];
  try {
    pids = execFileSync("ip", ["netns", "pids", ns.name], { encoding: "utf8" }).split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "yggdrasil";
    } catch {
      return false;
    }
  });
}

/**
 * A daemon like the Debian service runs it: `yggdrasil -useconffile conf.json` with its own random key and the admin
 * socket on a unix path. Returns its address (from `-address`, i.e. from its key) and pid.
 */
export async function startSystemDaemon(
  ns: Namespace,
  binary: string,
  dir: string,
  o: { socket: string; listen?: string[]; peers?: string[]; ifName?: string },
): Promise<{ address: string; pid: number; conf: string }> {
  const conf = JSON.parse(execFileSync(binary, ["-genconf", "-json"], { encoding: "utf8" })) as Record<string, unknown>;
  Object.assign(conf, {
    AdminListen: `unix://${o.socket}`,
    Listen: o.listen ?? [],
    Peers: o.peers ?? [],
    MulticastInterfaces: [],
    IfName: o.ifName ?? "auto",
  });
  const confPath = join(dir, "yggdrasil-system.conf");
  writeFileSync(confPath, JSON.stringify(conf, null, 2), { mode: 0o600 });
  const address = canonicalAddress(execFileSync(binary, ["-useconffile", confPath, "-address"], { encoding: "utf8" }).trim())!;
  const child = ns.spawn(binary, ["-useconffile", confPath]);
  let log = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (log = (log + d).slice(-20_000)));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (log = (log + d).slice(-20_000)));
  try {
    await waitFor("the system daemon's admin socket", async () => {
      if (child.exitCode !== null) throw new Error(`system daemon exited with ${child.exitCode}: ${log}`);
      return (await getSelf(o.socket, 500).catch(() => undefined))?.address;
    }, 20_000, 200);
  } catch (err) {
    throw new Error(`${(err as Error).message}\ndaemon output:\n${log}`);
  }
  return { address, pid: child.pid!, conf: confPath };
}

const SETPRIV = ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"];

/** Why `setcap` cannot be run here (libcap2-bin missing), or false when it can (a skip reason for node:test). */
export function setcapMissing(): string | false {
  try {
    execFileSync("setcap", ["-h"], { stdio: "ignore" });
  } catch (err) {
    // `setcap -h` exits non-zero where it exists; only a missing program is a reason
    if ((err as NodeJS.ErrnoException).code === "ENOENT" || (err as { status?: number }).status === undefined) return "setcap (libcap2-bin) not installed";
  }
  return false;
}

/** Why user `nobody` cannot run the CLI from this checkout (a path it cannot traverse/read), or undefined if it can. */
export function nobodyCannotRunCli(): string | undefined {
  try {
    execFileSync("setpriv", ["--version"], { stdio: "ignore" });
  } catch {
    return "setpriv (util-linux) is not installed, so the CLI cannot be run as user nobody";
  }
  const probe = `const fs=require("node:fs");for(const p of ${JSON.stringify([process.execPath, CLI, join(CLI, "..", "cli.ts")])}){try{fs.accessSync(p,fs.constants.R_OK)}catch(e){console.log(p+": "+e.code);process.exit(3)}}`;
  try {
    execFileSync("setpriv", [...SETPRIV, process.execPath, "-e", probe], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
    return undefined;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    const what = (e.stdout || e.stderr || e.message).trim().split("\n")[0];
    return `user nobody cannot read the Node binary or the CLI sources of this checkout (${what}); ` +
      "a checkout under a private home directory (e.g. /root, mode 0700) is not traversable by nobody — clone it under a world-readable path such as /work or /srv to run this part";
  }
}

/** Runs `declaw --data-dir D --json <args>` as user nobody (setpriv) inside the namespace. */
export async function cliAsNobody(ns: Namespace, dataDir: string, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  const r = await ns.run("setpriv", [...SETPRIV, process.execPath, CLI, "--data-dir", dataDir, "--json", ...args], {
    timeoutMs,
    env: { ...process.env, HOME: "/nonexistent" },
  });
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

/** `setpriv` argv prefix that drops to user nobody (for long-running processes). */
export function asNobody(cmd: string, args: string[]): [string, string[]] {
  return ["setpriv", [...SETPRIV, cmd, ...args]];
}

/** `declaw --data-dir D run <args>` in the namespace, optionally as user nobody (see startNode in ./declaw.ts). */
export function startRun(ns: Namespace, dataDir: string, args: string[], o: { nobody?: boolean; timeoutMs?: number } = {}): Promise<RunningNode> {
  return startNode(ns, dataDir, args, {
    timeoutMs: o.timeoutMs,
    ...(o.nobody ? { wrap: asNobody, env: { ...process.env, HOME: "/nonexistent" } } : {}),
  });
}

/**
 * Why the "no privilege" cases cannot be shown here, if so: a yggdrasil binary that carries cap_net_admin (someone
 * ran `declaw setup` as root on this machine) lets even `nobody` create a TUN.
 */
export async function binaryGrantsNetAdmin(): Promise<string | false> {
  const { checkPrivileges } = await import("../../src/yggdrasil/privileges.ts");
  const { findYggdrasilBinary } = await import("../../src/yggdrasil/binary.ts");
  const bin = findYggdrasilBinary();
  if (!bin) return false;
  const r = await checkPrivileges(bin);
  return r.binaryCapNetAdmin === true ? `${bin} has cap_net_admin (undo with: setcap -r ${bin}); an unprivileged user can spawn it` : false;
}
