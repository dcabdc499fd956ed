/**
 * Ceiling servers for `npm run bench`: the least a receiver can do on the same path, to compare the node against.
 *   parse:   read the body, JSON.parse it, answer 200.
 *   verify:  also parse the envelope and verify its one Ed25519 signature (the same wire functions the node uses).
 *   durable: also make each verified body durable before answering, the least a receiver that acknowledges only what
 *            is on disk can do: the bodies verified in one event-loop turn are written together at the next position
 *            of a preallocated log file (reused as a ring, as SQLite reuses its WAL) and fsynced once (group commit).
 *            No database, no receipt signature: what the node does beyond this is its own cost.
 * Argument: JSON `{port, mode, dir?}` (`dir`: where durable mode keeps its log file). Prints `{"ready":true}` once
 * listening. Same keep-alive settings as the node. Answers a `stats` line on stdin with `{"cpuMs":..}` (this process's
 * CPU time so far), as the node runner does.
 */
import { fsyncSync, openSync, writeSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { decodeJsonBody, parseEnvelope, verifyEnvelope } from "../src/core/wire.ts";

const { port, mode, dir } = JSON.parse(process.argv[2]!) as { port: number; mode: "parse" | "verify" | "durable"; dir?: string };
const OK = JSON.stringify({ ok: true, duplicate: false, receipt: null });
const LOG_BYTES = 16 * 1024 * 1024;

function answer(res: ServerResponse, status: number): void {
  const text = status === 200 ? OK : '{"error":"refused"}';
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** Durable mode's log: written in place from the start again once full, so an fsync never has to grow the file. */
const log = mode === "durable" ? openLog(join(dir!, "ceiling.log")) : undefined;
let logAt = 0;
let waiting: { res: ServerResponse; body: Buffer }[] = [];

function openLog(file: string): number {
  const fd = openSync(file, "w");
  const zero = Buffer.alloc(1 << 20);
  for (let at = 0; at < LOG_BYTES; at += zero.length) writeSync(fd, zero, 0, zero.length, at);
  fsyncSync(fd);
  return fd;
}

function storeThenAnswer(res: ServerResponse, body: Buffer): void {
  waiting.push({ res, body });
  if (waiting.length === 1) setImmediate(commit);
}

function commit(): void {
  const batch = waiting;
  waiting = [];
  const all = Buffer.concat(batch.map((w) => w.body));
  if (logAt + all.length > LOG_BYTES) logAt = 0;
  writeSync(log!, all, 0, all.length, logAt);
  logAt += all.length;
  fsyncSync(log!);
  for (const w of batch) answer(w.res, 200);
}

const server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    let status = 200;
    if (mode === "parse") {
      try {
        JSON.parse(body.toString("utf8"));
      } catch {
        status = 400;
      }
    } else {
      const j = decodeJsonBody(body);
      const e = j.ok ? parseEnvelope(j.value) : j;
      status = e.ok && verifyEnvelope(e.value) ? 200 : 403;
    }
    if (status === 200 && log !== undefined) storeThenAnswer(res, body);
    else answer(res, status);
  });
});
server.listen({ port, host: "::" }, () => process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`));
process.once("SIGTERM", () => process.exit(0));
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() !== "stats") return;
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
});
