/**
 * Asks the real `yggdrasil` binary which address/subnet a config's PrivateKey gives (`-useconf -address|-subnet`,
 * config on stdin: no temp files). Tests skip with `YGGDRASIL_SKIP_REASON` when no binary is installed.
 */
import { execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/opt/homebrew/bin"];

function findBinary(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const d of dirs) {
    const p = join(d, "yggdrasil");
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

export const YGGDRASIL_BINARY: string | undefined = findBinary();
export const YGGDRASIL_SKIP_REASON: string | false = YGGDRASIL_BINARY
  ? false
  : "yggdrasil binary not installed (apt install yggdrasil); real-daemon comparison skipped";

export function yggdrasilDerive(privateKeyHex: string, what: "-address" | "-subnet"): string {
  if (!YGGDRASIL_BINARY) throw new Error("no yggdrasil binary");
  return execFileSync(YGGDRASIL_BINARY, ["-useconf", what], {
    input: JSON.stringify({ PrivateKey: privateKeyHex }),
    encoding: "utf8",
    timeout: 10_000,
  }).trim();
}
