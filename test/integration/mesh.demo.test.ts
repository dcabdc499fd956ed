/**
 * The README quick start (`sudo npm run demo` = `node scripts/demo.ts`): as root it runs the whole exchange (real
 * Yggdrasil when installed, else yggdrasil off, and once forced off) and leaves nothing behind; without root it says
 * what to run instead and exits non-zero without a stack trace.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { nobodyCannotRunCli } from "../helpers/mesh-net.ts";
import { netnsAvailable } from "../helpers/netns.ts";

const DEMO = fileURLToPath(new URL("../../scripts/demo.ts", import.meta.url));
const avail = netnsAvailable();
const root = process.getuid?.() === 0;

function runDemo(o: { env?: NodeJS.ProcessEnv; asNobody?: boolean } = {}): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  const argv = o.asNobody
    ? ["setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", process.execPath, DEMO]] as const
    : [process.execPath, [DEMO]] as const;
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], [...argv[1]], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...o.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGINT"), 150_000); // the demo cleans up on SIGINT
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, pid: child.pid! });
    });
  });
}

function assertExchange(r: { code: number | null; stdout: string; stderr: string; pid: number }): void {
  const out = r.stdout;
  assert.equal(r.code, 0, `${out}\n${r.stderr}`);
  assert.match(out, /\$ declaw send bob "hello from A"\n\s+delivered to 2[0-9a-f:]+ — receipt: stored at \d{4}-\d\d-\d\dT[\d:.]+Z/);
  assert.match(out, /\[B\] \$ declaw inbox\n\s+\S+ from 2[0-9a-f:]+ \[pending peer: not accepted yet\]\n\s+hello from A\n/, "B has not accepted A yet, and its inbox says so");
  assert.match(out, /\[A\] \$ declaw inbox\n\s+\S+ from bob \(2[0-9a-f:]+\)\n\s+hello back from B\n/, "A added B as bob: its inbox names bob");
  assert.match(out, /pong from 2[0-9a-f:]+ in [\d.]+ ms — verified: answered by 2[0-9a-f:]+ with key \S+ \(key derives to the address\)/);
  assert.match(out, /address {5}2[0-9a-f:]+\n\s+public key {2}\S{44}\n/);
  assert.doesNotMatch(r.stderr, /demo failed/);
  // Nothing left behind: its namespaces and temp dirs are gone.
  assert.ok(!execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).includes(`dcldemo${r.pid}`), "namespaces removed");
  for (const m of out.matchAll(/data dir (\S+)/g)) assert.ok(!existsSync(m[1]!), `${m[1]} removed`);
}

describe("scripts/demo.ts (sudo npm run demo)", { timeout: 400_000 }, () => {
  it("as root: the full exchange (delivered with receipt time, both inboxes, verified ping), then everything removed", { skip: avail.ok ? false : avail.reason }, async () => {
    const r = await runDemo();
    assertExchange(r);
    if (/own Yggdrasil daemon/.test(r.stdout)) assert.match(r.stdout, /declaw run --yggdrasil spawn --peer tcp:\/\/\[fd00:de::1\]:12345/);
    else assert.match(r.stdout, /WITHOUT Yggdrasil/);
  });

  it("as root with the mesh forced off: says so clearly and still completes", { skip: avail.ok ? false : avail.reason }, async () => {
    const r = await runDemo({ env: { DECLAW_DEMO_MESH: "off" } });
    assert.match(r.stdout, /this demo runs WITHOUT Yggdrasil \(mode "off"\)/);
    assert.match(r.stdout, /declaw run --yggdrasil off/);
    assertExchange(r);
  });

  const nobodySkip = root ? nobodyCannotRunCli() ?? false : false;
  it("without root: prints what to run instead, exits non-zero, no stack trace", { skip: nobodySkip }, async () => {
    const r = await runDemo({ asNobody: root });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /needs root\.\nrun: sudo npm run demo\n/);
    assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, "no stack trace");
    assert.equal(r.stdout, "");
  });
});
