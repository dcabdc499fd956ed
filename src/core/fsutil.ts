/** Atomic file writes: temp file in the same directory, fsync, then an atomic rename (or link) and a directory fsync (both fsyncs skipped for a mere hint). */
import { closeSync, fsyncSync, linkSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

function writeTemp(path: string, data: string | Uint8Array, mode: number, sync = true): string {
  const tmp = join(dirname(path), `.${randomBytes(6).toString("hex")}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    if (sync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Replaces `path` atomically with `data` (mode applied at creation, so the secret never exists world-readable).
 * `durable: false` skips both fsyncs, for a hint rewritten every few seconds (the node's heartbeat): readers still
 * never see a partial file, but after a power cut the file may be the old one, or empty on some filesystems.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600, { durable = true }: { durable?: boolean } = {}): void {
  const tmp = writeTemp(path, data, mode, durable);
  try {
    renameSync(tmp, path);
  } catch (err) {
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw err;
  }
  if (durable) fsyncDir(dirname(path));
}

/**
 * Creates `path` with `data` only if it does not exist, atomically: the complete file appears or nothing does.
 * Returns false when another writer got there first (the existing file is left untouched).
 */
export function createFileExclusive(path: string, data: string | Uint8Array, mode = 0o600): boolean {
  const tmp = writeTemp(path, data, mode);
  try {
    linkSync(tmp, path);
    fsyncDir(dirname(path));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  } finally {
    try { unlinkSync(tmp); } catch { /* already gone */ }
  }
}
