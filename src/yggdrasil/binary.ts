/**
 * Finding the `yggdrasil` binary and telling 0.4 from 0.5. Debian's 0.4.7 prints version "unknown", so the version
 * text alone is not enough: the flag list (`-h`) decides — `-exportkey` (0.5.0+) and `-publickey` (0.5.2+) exist
 * only in 0.5. The two lines do not peer with each other (different wire protocol), so callers report the line.
 */
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

/** Searched after $PATH: sbin dirs are often missing from a user's PATH, Homebrew's prefix from a service's. */
export const BINARY_EXTRA_DIRS: readonly string[] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/opt/homebrew/bin", "/usr/bin", "/sbin"];
const PROBE_TIMEOUT_MS = 5000;

export type YggLine = "0.4" | "0.5";
export interface BinaryInfo {
  path: string;
  /** Build version as printed (`unknown` for Debian's build). */
  version: string;
  line: YggLine;
  /** Its `-version` output has a "Build version:" line: it answers as Yggdrasil does (any other program does not). */
  recognised: boolean;
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Absolute path of an executable named `name` on $PATH or in the extra dirs, or undefined. */
export function findExecutable(name: string, extraDirs: readonly string[] = BINARY_EXTRA_DIRS): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter((d) => isAbsolute(d)), ...extraDirs];
  for (const d of dirs) {
    const p = join(d, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** The configured binary (if executable) or the first `yggdrasil` found. */
export function findYggdrasilBinary(explicit?: string): string | undefined {
  if (explicit) return executable(explicit) ? explicit : undefined;
  return findExecutable("yggdrasil");
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: PROBE_TIMEOUT_MS, encoding: "utf8" }, (_err, stdout, stderr) => {
      // `-h` exits 0 on 0.4.7 and 2 on some builds (Go's flag package); the text is what matters either way.
      resolve(`${stdout ?? ""}${stderr ?? ""}`);
    });
  });
}

/** Pure: version and line from the outputs of `-version` and `-h`. */
export function parseBinaryProbe(versionText: string, helpText: string): { version: string; line: YggLine } {
  const m = /Build version:\s*(\S+)/i.exec(versionText);
  const version = m ? m[1]! : "unknown";
  const num = /^v?(\d+)\.(\d+)/.exec(version);
  if (num) {
    const [maj, min] = [Number(num[1]), Number(num[2])];
    if (maj === 0 && min <= 4) return { version, line: "0.4" };
    return { version, line: "0.5" };
  }
  return { version, line: /-(exportkey|publickey)\b/.test(helpText) ? "0.5" : "0.4" };
}

const probeCache = new Map<string, Promise<BinaryInfo>>();

/** Runs `-version` and `-h` once per path (cached): neither touches the network or the filesystem. */
export function probeBinary(path: string): Promise<BinaryInfo> {
  let p = probeCache.get(path);
  if (!p) {
    p = Promise.all([run(path, ["-version"]), run(path, ["-h"])]).then(([v, h]) => ({ path, ...parseBinaryProbe(v, h), recognised: /^Build version:/m.test(v) }));
    probeCache.set(path, p);
  }
  return p;
}
