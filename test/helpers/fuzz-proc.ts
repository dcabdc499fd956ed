/**
 * Child processes that print JSON lines (test/helpers/inside-*.ts, run in a namespace): start one, wait for a line
 * matching a predicate, send stdin commands. Used by the fault and fuzz tests.
 */
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Namespace } from "./netns.ts";

export interface JsonChild {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves with the first line (from now on, or already buffered since the last wait) for which `pred` holds. */
  waitFor: (pred: (v: any) => boolean, timeoutMs?: number, what?: string) => Promise<any>;
  send: (line: string) => void;
  exited: Promise<number | null>;
}

export function spawnJson(ns: Namespace, script: string, arg: unknown): JsonChild {
  const child = ns.spawn(process.execPath, [script, JSON.stringify(arg)], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-20_000)));
  const waiters = new Set<{ pred: (v: any) => boolean; resolve: (v: any) => void }>();
  createInterface({ input: child.stdout! }).on("line", (l) => {
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch {
      return;
    }
    for (const w of waiters) if (w.pred(v)) {
      waiters.delete(w);
      w.resolve(v);
    }
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    stderr: () => err,
    exited,
    send: (line) => child.stdin!.write(`${line}\n`),
    waitFor: (pred, timeoutMs = 60_000, what = "a line") =>
      new Promise((resolve, reject) => {
        const w = { pred, resolve: (v: any) => (clearTimeout(t), resolve(v)) };
        const t = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`${script}: timed out waiting for ${what}; stderr: ${err.slice(-3000)}`));
        }, timeoutMs);
        waiters.add(w);
        void exited.then((code) => {
          if (waiters.delete(w)) {
            clearTimeout(t);
            reject(new Error(`${script} exited (${code}) while waiting for ${what}; stderr: ${err.slice(-3000)}`));
          }
        });
      }),
  };
}
