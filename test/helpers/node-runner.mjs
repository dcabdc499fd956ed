/**
 * A declaw Node in a child process, meant to run inside a test namespace (`ns.spawn(process.execPath, [this, json])`).
 * Argument: JSON `{dataDir, config?, quiet?, dist?}` (config is a Partial<NodeConfig>, e.g. `{yggdrasil:"off"}`).
 * `dist: true` runs the compiled `dist/` as users do (the benchmark: no TypeScript loader in the process, which alone
 * costs ~40 MB of RSS; `npm run bench` builds dist/ first); otherwise the sources. Plain JS for that reason.
 * Prints one JSON line `{"ready":true,"address":...,"pid":...}` on stdout once the peer server listens, or
 * `{"ready":false,"error":...,"code":...}` and exits 1. Then answers stdin lines:
 *   `stats` -> `{"rss":..,"heapUsed":..,"cpuMs":..,"threadCpuMs":{..},"counts":{..}}` (threadCpuMs: CPU time of each
 *   live thread, keyed "name/tid", from /proc on Linux, else {}), `stop` -> stops cleanly, prints `{"stopped":true}`,
 *   exits 0.
 * SIGTERM stops cleanly too. Logs go to stderr.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const arg = JSON.parse(process.argv[2] ?? "{}");
const root = arg.dist ? "../../dist" : "../../src";
const ext = arg.dist ? "js" : "ts";
const { Node } = await import(`${root}/core/node.${ext}`);
const { stderrLogger } = await import(`${root}/core/log.${ext}`);
const log = arg.quiet ? { debug() {}, info() {}, warn: (m) => console.error(`warn: ${m}`), error: (m) => console.error(`error: ${m}`) } : stderrLogger();
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

let node;
try {
  node = Node.open({ dataDir: arg.dataDir, config: arg.config, log });
  await node.start();
} catch (err) {
  out({ ready: false, code: err?.code, error: err?.message });
  process.exit(1);
}
out({ ready: true, address: node.address, publicKey: node.identity.publicKeyBase64, pid: process.pid });

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await node.stop();
  out({ stopped: true });
  process.exit(0);
}
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "stats") {
    const m = process.memoryUsage();
    const cpu = process.cpuUsage();
    out({ rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, cpuMs: (cpu.user + cpu.system) / 1000, threadCpuMs: threadCpuMs(), counts: node.store.counts() });
  } else if (cmd === "stop") void stop();
});

/** CPU ms of each live thread, keyed "name/tid" (the node's helpers are named declaw-sig, declaw-commit, declaw-ckpt). */
function threadCpuMs() {
  const byThread = {};
  try {
    for (const tid of readdirSync("/proc/self/task")) {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const name = readFileSync(`/proc/self/task/${tid}/comm`, "utf8").trim();
      // utime + stime, in clock ticks of 1/100 s (USER_HZ on Linux)
      byThread[`${name}/${tid}`] = (Number(fields[11]) + Number(fields[12])) * 10;
    }
  } catch {
    // a thread that exited while being read, or no /proc: report what was read
  }
  return byThread;
}
