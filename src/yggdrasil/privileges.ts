/**
 * Can a daemon we spawn create its TUN? On Linux that needs /dev/net/tun (openable by us) and CAP_NET_ADMIN, either
 * in our own effective set (root) or as a file capability on the binary (`setcap cap_net_admin+ep`). macOS needs
 * root for `utun`. Without them the daemon panics with exit status 2 (/work/shared/docs/yggdrasil.md), so we check
 * first and, when unsure, the supervisor still diagnoses the panic.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { findExecutable } from "./binary.ts";

/** linux/capability.h */
export const CAP_NET_ADMIN = 12;
export const TUN_DEVICE = "/dev/net/tun";

export interface PrivilegeReport {
  platform: NodeJS.Platform;
  uid: number | undefined;
  root: boolean;
  /** CAP_NET_ADMIN in this process's effective set (Linux /proc/self/status CapEff). */
  capNetAdmin: boolean;
  /** CAP_NET_ADMIN in the bounding set: a file capability cannot raise beyond it. */
  capNetAdminBounded: boolean;
  /** The binary carries cap_net_admin in its permitted+effective file capabilities; undefined = could not tell. */
  binaryCapNetAdmin: boolean | undefined;
  tunPresent: boolean;
  tunAccessible: boolean;
}

/** Pure: whether bit `cap` is set in a /proc/<pid>/status hex capability mask line. */
export function capabilityInMask(statusText: string, field: "CapEff" | "CapBnd" | "CapPrm", cap: number): boolean {
  const m = new RegExp(`^${field}:\\s*([0-9a-fA-F]+)\\s*$`, "m").exec(statusText);
  if (!m) return false;
  return ((BigInt(`0x${m[1]}`) >> BigInt(cap)) & 1n) === 1n;
}

/** Pure: `getcap` output (old "file = cap_net_admin+ep" or new "file cap_net_admin=ep") grants NET_ADMIN +ep? */
export function getcapGrantsNetAdmin(output: string): boolean {
  for (const m of output.matchAll(/(cap_[a-z_,]+)\s*([=+][a-z]*)([+=][a-z]+)?/gi)) {
    const names = m[1]!.toLowerCase().split(",");
    const flags = `${m[2] ?? ""}${m[3] ?? ""}`.toLowerCase();
    if ((names.includes("cap_net_admin") || names.includes("cap_all")) && flags.includes("e") && flags.includes("p")) return true;
  }
  return false;
}

function binaryCap(binary: string | undefined): Promise<boolean | undefined> {
  const getcap = findExecutable("getcap");
  if (!binary || !getcap) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile(getcap, [binary], { timeout: 5000, encoding: "utf8" }, (err, stdout) => {
      if (err) resolve(undefined);
      else resolve(getcapGrantsNetAdmin(stdout));
    });
  });
}

export async function checkPrivileges(binary?: string): Promise<PrivilegeReport> {
  const uid = process.getuid?.();
  const platform = process.platform;
  let status = "";
  try {
    status = readFileSync("/proc/self/status", "utf8");
  } catch { /* not Linux */ }
  const tunPresent = platform === "linux" ? existsSync(TUN_DEVICE) : platform === "darwin";
  let tunAccessible = false;
  if (platform === "linux" && tunPresent) {
    try {
      accessSync(TUN_DEVICE, constants.R_OK | constants.W_OK);
      tunAccessible = true;
    } catch { /* mode 0600 root-owned on some systems */ }
  } else if (platform === "darwin") tunAccessible = uid === 0;
  return {
    platform,
    uid,
    root: uid === 0,
    capNetAdmin: status ? capabilityInMask(status, "CapEff", CAP_NET_ADMIN) : uid === 0,
    capNetAdminBounded: status ? capabilityInMask(status, "CapBnd", CAP_NET_ADMIN) : true,
    binaryCapNetAdmin: platform === "linux" ? await binaryCap(binary) : undefined,
    tunPresent,
    tunAccessible,
  };
}

/** Pure: would a daemon we spawn (as this user) be able to create its TUN? */
export function canSpawnTun(r: PrivilegeReport): boolean {
  if (r.platform === "darwin") return r.root;
  if (r.platform !== "linux") return false;
  if (!r.tunPresent || !r.tunAccessible) return false;
  return r.capNetAdmin || (r.binaryCapNetAdmin === true && r.capNetAdminBounded);
}
