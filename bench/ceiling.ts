/**
 * Ceiling servers for `npm run bench`: the least a receiver can do on the same path, to compare the node against.
 *   parse:  read the body, JSON.parse it, answer 200.
 *   verify: also parse the envelope and verify its one Ed25519 signature (the same wire functions the node uses).
 * Argument: JSON `{port, mode}`. Prints `{"ready":true}` once listening. Same keep-alive settings as the node.
 * Answers a `stats` line on stdin with `{"cpuMs":..}` (this process's CPU time so far), as the node runner does.
 */
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { decodeJsonBody, parseEnvelope, verifyEnvelope } from "../src/core/wire.ts";

const { port, mode } = JSON.parse(process.argv[2]!) as { port: number; mode: "parse" | "verify" };
const OK = JSON.stringify({ ok: true, duplicate: false, receipt: null });

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
    const text = status === 200 ? OK : '{"error":"refused"}';
    res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
    res.end(text);
  });
});
server.listen({ port, host: "::" }, () => process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`));
process.once("SIGTERM", () => process.exit(0));
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() !== "stats") return;
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
});
