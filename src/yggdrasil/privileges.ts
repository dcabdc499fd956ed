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

/** One cap_from_text(3) clause: a comma-separated list of names (or none), then operators with their flags. */
const CAP_CLAUSE = /^([a-z0-9_,]*)((?:[=+-][eip]*)+)$/i;

/**
 * Pure: does `getcap` output grant cap_net_admin in both the permitted and the effective file set? Read as
 * cap_from_text(3) reads it: clauses separated by spaces, each `[names]op flags[op flags...]`; an empty name list or
 * `all` means every capability; `=` sets exactly these flags, `+` adds, `-` removes; later clauses win. Old getcap
 * prints "file = cap_net_admin+ep", new "file cap_net_admin=ep"; a binary with every capability prints "file =ep".
 */
export function getcapGrantsNetAdmin(output: string): boolean {
  return output.split("\n").some((line) => {
    // The clauses are the trailing words that look like one (the file name before them may contain spaces).
    const words = line.trim().split(/\s+/);
    let first = words.length;
    while (first > 0 && CAP_CLAUSE.test(words[first - 1]!)) first--;
    let flags = new Set<string>();
    for (const clause of words.slice(first)) {
      const [, list, actions] = CAP_CLAUSE.exec(clause)!;
      const names = list!.toLowerCase().split(",");
      if (list !== "" && !names.some((n) => n === "all" || n === "cap_net_admin" || n === String(CAP_NET_ADMIN))) continue;
      for (const [, op, f] of actions!.toLowerCase().matchAll(/([=+-])([eip]*)/g)) {
        if (op === "=") flags = new Set(f);
        else if (op === "+") for (const c of f!) flags.add(c);
        else for (const c of f!) flags.delete(c);
      }
    }
    return flags.has("e") && flags.has("p");
  });
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

/** What checkPrivileges looks at: /proc/self/status ("" when there is none), the TUN device, getcap's verdict. */
export interface PrivilegeInputs {
  platform: NodeJS.Platform;
  uid: number | undefined;
  status: string;
  tunPresent: boolean;
  /** /dev/net/tun opens for reading and writing (access(2) R_OK|W_OK succeeded). */
  tunAccessible: boolean;
  binaryCapNetAdmin: boolean | undefined;
}

/** Pure: the report for what was seen. Root counts as CAP_NET_ADMIN only where no status says otherwise. */
export function privilegeReport(i: PrivilegeInputs): PrivilegeReport {
  return {
    platform: i.platform,
    uid: i.uid,
    root: i.uid === 0,
    capNetAdmin: i.status ? capabilityInMask(i.status, "CapEff", CAP_NET_ADMIN) : i.uid === 0,
    capNetAdminBounded: i.status ? capabilityInMask(i.status, "CapBnd", CAP_NET_ADMIN) : true,
    binaryCapNetAdmin: i.binaryCapNetAdmin,
    tunPresent: i.tunPresent,
    tunAccessible: i.platform === "darwin" ? i.uid === 0 : i.tunPresent && i.tunAccessible,
  };
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
  }
  const binaryCapNetAdmin = platform === "linux" ? await binaryCap(binary) : undefined;
  return privilegeReport({ platform, uid, status, tunPresent, tunAccessible, binaryCapNetAdmin });
}

/** Pure: would a daemon we spawn (as this user) be able to create its TUN? */
export function canSpawnTun(r: PrivilegeReport): boolean {
  if (r.platform === "darwin") return r.root;
  if (r.platform !== "linux") return false;
  if (!r.tunPresent || !r.tunAccessible) return false;
  return r.capNetAdmin || (r.binaryCapNetAdmin === true && r.capNetAdminBounded);
}
