/** Where spawn mode keeps its files, and where system daemons put their admin socket. */
import { join } from "node:path";

/** <data_dir>/yggdrasil, mode 0700: the admin socket inside is then usable by the owner only. */
export function yggDir(dataDir: string): string {
  return join(dataDir, "yggdrasil");
}

export interface SpawnPaths {
  dir: string;
  conf: string;
  log: string;
  pid: string;
  adminSocket: string;
}

export function spawnPaths(dataDir: string): SpawnPaths {
  const dir = yggDir(dataDir);
  return {
    dir,
    conf: join(dir, "yggdrasil.conf"),
    log: join(dir, "yggdrasil.log"),
    pid: join(dir, "yggdrasil.pid"),
    adminSocket: join(dir, "admin.sock"),
  };
}

/** Debian/Ubuntu unit and upstream packages (0.4 and 0.5), then the pre-0.4 default. */
export const SYSTEM_ADMIN_SOCKETS: readonly string[] = [
  "/var/run/yggdrasil/yggdrasil.sock",
  "/run/yggdrasil/yggdrasil.sock",
  "/var/run/yggdrasil.sock",
];
