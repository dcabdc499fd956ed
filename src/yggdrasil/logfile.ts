/**
 * The daemon's output, appended to <data_dir>/yggdrasil/yggdrasil.log and rotated to `.1` past a size cap (one old
 * generation kept), so a chatty or crash-looping daemon cannot fill the disk. A short tail stays in memory to
 * explain a failed start (e.g. the "panic:" line). Writes are synchronous: daemon output is a few lines a minute.
 */
import { closeSync, fstatSync, openSync, renameSync, writeSync } from "node:fs";

export const LOG_MAX_BYTES = 5 * 1024 * 1024;
const TAIL_MAX_CHARS = 16 * 1024;

export class RotatingLog {
  readonly path: string;
  readonly #maxBytes: number;
  #fd: number | undefined;
  #size = 0;
  #tail = "";

  constructor(path: string, maxBytes = LOG_MAX_BYTES) {
    this.path = path;
    this.#maxBytes = maxBytes;
  }

  #open(): number {
    if (this.#fd === undefined) {
      this.#fd = openSync(this.path, "a", 0o600);
      this.#size = fstatSync(this.#fd).size;
    }
    return this.#fd;
  }

  write(chunk: string | Uint8Array): void {
    const buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : Buffer.from(chunk);
    this.#tail = (this.#tail + buf.toString("utf8")).slice(-TAIL_MAX_CHARS);
    try {
      if (this.#size + buf.length > this.#maxBytes && this.#size > 0) this.#rotate();
      const fd = this.#open();
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      this.#size += buf.length;
    } catch {
      // A full or read-only disk must not take the node down; the in-memory tail still explains failures.
    }
  }

  /** Our own annotations (start, exit, restart), marked so they are not mistaken for daemon output. */
  note(msg: string): void {
    this.write(`${new Date().toISOString()} [declaw] ${msg}\n`);
  }

  #rotate(): void {
    this.close();
    try { renameSync(this.path, `${this.path}.1`); } catch { /* nothing to rotate */ }
  }

  /** The last few KiB of output since this object was created or `resetTail()` was called. */
  tail(): string {
    return this.#tail;
  }

  resetTail(): void {
    this.#tail = "";
  }

  close(): void {
    if (this.#fd !== undefined) {
      try { closeSync(this.#fd); } catch { /* already closed */ }
      this.#fd = undefined;
      this.#size = 0;
    }
  }
}
