/**
 * Supervisor and diagnosis paths that need no real daemon: off mode, a missing binary (auto reports, spawn throws),
 * diagnoseYggdrasil writes nothing, stop() is idempotent; and the rotating daemon log. Spawn-mode retries and redial
 * run against a fake daemon (a Node script standing in for yggdrasil 0.4.7: no TUN, no network).
 */
import { test, after } from "node:test";
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { YggdrasilSupervisor, diagnoseYggdrasil, RESTART_BACKOFF_MS } from "../../src/yggdrasil/supervisor.ts";
import { RotatingLog } from "../../src/yggdrasil/logfile.ts";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { P2PError } from "../../src/core/errors.ts";
import { findYggdrasilBinary } from "../../src/yggdrasil/binary.ts";
import { canSpawnTun, checkPrivileges } from "../../src/yggdrasil/privileges.ts";
import { processAlive, waitFor, yggdrasilPidsMentioning } from "../helpers/ygg-harness.ts";
import { CLI, freePort } from "../helpers/declaw.ts";
import { LOCK_FILE } from "../../src/core/run-lock.ts";

const root = mkdtempSync(join(tmpdir(), "dcl-ygg-unit-"));
after(() => rmSync(root, { recursive: true, force: true }));
const identity = loadOrCreateIdentity(join(root, "id"));
const NO_BINARY = join(root, "no-such-yggdrasil");
const NO_SOCKET = join(root, "no.sock");

test("off: nothing runs, status says so, stop is idempotent", async () => {
  const s = new YggdrasilSupervisor({ dataDir: join(root, "off"), identity, mode: "off", peers: [], listen: [], multicast: false });
  const st = await s.start();
  assert.deepEqual(st, { mode: "off", effectiveMode: "off", state: "stopped", keyBinding: "n/a" });
  await s.stop();
  await s.stop();
  assert.ok(!existsSync(join(root, "off")));
});

test("auto with no binary and no daemon: unavailable with the install fix, then restarting the node; never throws", async () => {
  const logs: string[] = [];
  const s = new YggdrasilSupervisor({ dataDir: join(root, "auto"), identity, mode: "auto", peers: [], listen: [], multicast: false, binary: NO_BINARY, adminSocket: NO_SOCKET, log: (_l, m) => logs.push(m) });
  const st = await s.start();
  assert.equal(st.state, "unavailable");
  assert.equal(st.effectiveMode, "none");
  assert.equal(st.problem?.code, "P2P_ERR_YGG_BINARY_MISSING");
  assert.ok(st.problem!.message.includes(NO_BINARY));
  assert.ok(st.problem!.fix.length > 1);
  // Auto mode looks only at start, so a fix made while the node runs needs a restart: the last step says so.
  assert.match(st.problem!.fix.at(-1)!, /^then restart the node \(declaw run, or the OpenClaw gateway\)/);
  assert.ok(logs.some((m) => m.includes("P2P_ERR_YGG_BINARY_MISSING")));
  await s.setPeers(["tcp://[fd00::1]:1"]); // harmless when nothing runs
  await s.stop();
  await s.stop();
});

test("spawn with no binary: throws P2P_ERR_YGG_BINARY_MISSING with a hint; status keeps the problem", async () => {
  const s = new YggdrasilSupervisor({ dataDir: join(root, "spawn"), identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: NO_BINARY });
  await assert.rejects(s.start(), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_BINARY_MISSING" && typeof e.hint === "string");
  const st = await s.status();
  assert.equal(st.state, "failed");
  assert.equal(st.problem?.code, "P2P_ERR_YGG_BINARY_MISSING");
  await s.stop();
});

test("system with no daemon: throws P2P_ERR_YGG_ADMIN_UNREACHABLE naming the socket; the fix ends with restarting the node", async () => {
  const s = new YggdrasilSupervisor({ dataDir: join(root, "sys"), identity, mode: "system", peers: [], listen: [], multicast: false, adminSocket: NO_SOCKET });
  // No background retry in system mode (the node serves the address the daemon had at start): the fix says so.
  const restart = /then restart the node \(declaw run, or the OpenClaw gateway\)/;
  await assert.rejects(s.start(), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_ADMIN_UNREACHABLE" && e.message.includes(NO_SOCKET) && restart.test(e.hint ?? ""));
  const st = await s.status();
  assert.equal(st.state, "failed");
  assert.match(st.problem!.fix.at(-1)!, restart);
  await s.stop();
});

test("system: a daemon that stops answering shows as unavailable with how to start it, and as running once it answers", async (t) => {
  const path = join(root, "sys-admin.sock");
  const listen = () => {
    const srv = createServer((sock) => {
      sock.setEncoding("utf8").once("data", (d: string) => {
        const call = String(JSON.parse(d).request).toLowerCase();
        const response = call === "getself" ? { address: "201:1111::1", key: "00".repeat(32), subnet: "301:1111::/64" } : { peers: [] };
        sock.end(JSON.stringify({ status: "success", response }));
      });
    });
    return new Promise<ReturnType<typeof createServer>>((resolve) => srv.listen(path, () => resolve(srv)));
  };
  let daemon = await listen();
  const s = new YggdrasilSupervisor({ dataDir: join(root, "sys-down"), identity, mode: "system", peers: [], listen: [], multicast: false, adminSocket: path });
  t.after(async () => {
    await s.stop();
    daemon.close();
  });
  await s.start();
  assert.equal((await s.status()).state, "running");
  await new Promise<void>((resolve) => daemon.close(() => resolve())); // the daemon is gone: its socket with it
  const down = await s.status();
  assert.equal(down.state, "unavailable", "not 'running' while nothing answers");
  assert.equal(down.problem?.code, "P2P_ERR_YGG_ADMIN_UNREACHABLE");
  assert.deepEqual(down.problem?.fix, ["start the system daemon (sudo systemctl start yggdrasil): this node uses it again as soon as it answers, no restart needed"]);
  daemon = await listen();
  const back = await s.status();
  assert.deepEqual([back.state, back.problem, back.address], ["running", undefined, "201:1111::1"]);
});

test("diagnoseYggdrasil has no side effects and reports the same problems", async () => {
  const dataDir = join(root, "diag");
  const off = await diagnoseYggdrasil({ dataDir, mode: "off" });
  assert.equal(off.effectiveMode, "off");
  const auto = await diagnoseYggdrasil({ dataDir, mode: "auto", binary: NO_BINARY, adminSocket: NO_SOCKET });
  assert.equal(auto.state, "unavailable");
  assert.equal(auto.problem?.code, "P2P_ERR_YGG_BINARY_MISSING");
  const sys = await diagnoseYggdrasil({ dataDir, mode: "system", adminSocket: NO_SOCKET });
  assert.equal(sys.problem?.code, "P2P_ERR_YGG_ADMIN_UNREACHABLE");
  assert.ok(!existsSync(dataDir), "nothing created");
});

// The socket-path check matters only once spawning is otherwise possible: a yggdrasil binary and the right to a TUN.
const spawnable = await (async () => {
  const binary = findYggdrasilBinary();
  if (!binary) return { skip: "yggdrasil binary not installed" };
  return canSpawnTun(await checkPrivileges(binary)) ? { skip: false as const } : { skip: "this user cannot give a spawned daemon a TUN" };
})();

test("diagnoseYggdrasil: a data dir too long for the admin socket is reported, not 'would spawn' (auto and spawn)", spawnable, async () => {
  const dataDir = join(root, "d".repeat(100));
  for (const mode of ["auto", "spawn"] as const) {
    const st = await diagnoseYggdrasil({ dataDir, mode, adminSocket: NO_SOCKET });
    assert.equal(st.state, "unavailable", mode);
    assert.equal(st.effectiveMode, "none");
    assert.equal(st.problem?.code, "P2P_ERR_CONFIG");
    assert.match(st.problem!.message, /admin socket .* would be \d+ bytes/);
    assert.match(st.problem!.fix.join("\n"), /data directory path of at most \d+ bytes/);
  }
  const short = await diagnoseYggdrasil({ dataDir: join(root, "short"), mode: "auto", adminSocket: NO_SOCKET });
  assert.equal(short.problem, undefined);
  assert.equal(short.effectiveMode, "spawn");
  assert.ok(!existsSync(dataDir), "nothing created");
});


test("RotatingLog rotates to .1 past the cap and keeps a tail", () => {
  const path = join(root, "rot.log");
  const log = new RotatingLog(path, 1000);
  for (let i = 0; i < 30; i++) log.write(`line ${i} ${"x".repeat(90)}\n`);
  log.note("hello");
  log.close();
  assert.ok(statSync(path).size <= 1000);
  assert.ok(statSync(`${path}.1`).size <= 1000);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.match(readFileSync(path, "utf8"), /\[declaw\] hello\n$/);
  assert.match(log.tail(), /line 29/);
  log.resetTail();
  assert.equal(log.tail(), "");
});

/**
 * A stand-in for Debian's yggdrasil 0.4.7 in spawn mode: answers `-version`/`-h` with nothing (so: line 0.4), exits 1
 * at once while `broken` exists, else serves getSelf (`address`, by default our identity's), getTUN (up), getPeers
 * (no links), addPeer/removePeer with 0.4.7's error texts; its admin socket answers only after `readyAfterMs`. Every
 * launch and admin call is appended to `calls`.
 */
function fakeDaemon(name: string, o: { broken?: boolean; readyAfterMs?: number; address?: string } = {}): { binary: string; dataDir: string; repair: () => void; calls: () => string[] } {
  const dir = join(root, `fake-${name}`);
  mkdirSync(dir);
  const binary = join(dir, "yggdrasil");
  const calls = join(dir, "calls.log");
  const broken = join(dir, "broken");
  if (o.broken) writeFileSync(broken, "");
  writeFileSync(binary, `#!${process.execPath}
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
const [flag, confPath] = process.argv.slice(2);
if (flag !== "-useconffile") process.exit(0);
appendFileSync(${JSON.stringify(calls)}, "launch\\n");
if (existsSync(${JSON.stringify(broken)})) { console.error("fake yggdrasil: cannot start"); process.exit(1); }
const conf = JSON.parse(readFileSync(confPath, "utf8"));
const configured = new Set(conf.Peers);
const calls = {
  getself: () => ({ address: ${JSON.stringify(o.address ?? identity.address)}, key: "00".repeat(32), subnet: "", coords: [] }),
  gettun: () => ({ enabled: true, name: "none", mtu: 65535 }),
  getpeers: () => ({ peers: [] }),
  addpeer: ({ uri }) => {
    if (!/^(tcp|tls|socks):/.test(uri)) throw "unknown call scheme: " + uri.split(":")[0];
    if (configured.has(uri)) throw "peer already configured";
    configured.add(uri);
    return {};
  },
  removepeer: ({ uri }) => { if (!configured.delete(uri)) throw "peer not configured"; return {}; },
};
const server = createServer((s) => {
  let buf = "";
  s.setEncoding("utf8").on("data", (d) => {
    buf += d;
    let req;
    try { req = JSON.parse(buf); } catch { return; }
    const call = String(req.request).toLowerCase();
    appendFileSync(${JSON.stringify(calls)}, [call, req.arguments?.uri].filter(Boolean).join(" ") + "\\n");
    try { s.end(JSON.stringify({ status: "success", response: calls[call](req.arguments ?? {}) })); }
    catch (e) { s.end(JSON.stringify({ status: "error", error: String(e) })); }
  });
});
setTimeout(() => server.listen(conf.AdminListen.replace("unix://", "")), ${o.readyAfterMs ?? 0});
`);
  chmodSync(binary, 0o755);
  return {
    binary,
    dataDir: join(dir, "data"),
    repair: () => rmSync(broken),
    calls: () => (existsSync(calls) ? readFileSync(calls, "utf8").split("\n").filter(Boolean) : []),
  };
}

test("spawn: a first start that fails is retried with backoff; status shows the problem until the daemon comes up", { timeout: 60_000 }, async (t) => {
  const fake = fakeDaemon("retry", { broken: true });
  const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: fake.binary });
  t.after(() => s.stop());
  await assert.rejects(s.start(), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_START_FAILED");
  const before = Date.now();
  const failed = await s.status();
  assert.equal(failed.state, "restarting");
  assert.equal(failed.problem?.code, "P2P_ERR_YGG_START_FAILED");
  assert.match(failed.problem!.message, /exited with status 1/);
  // Status says why it restarts, when the next start is due, and how many failed in a row.
  assert.match(failed.restart!.reason, /^start failed: yggdrasil exited with status 1/);
  assert.equal(failed.restart!.failures, 1);
  assert.ok(failed.restart!.at > before - 1000 && failed.restart!.at <= before + RESTART_BACKOFF_MS[0]! * 1.2 + 100, String(failed.restart!.at - before));
  const again = await waitFor("a second failed start", async () => {
    const st = await s.status();
    return st.restart && st.restart.failures >= 2 ? st : undefined;
  }, 10_000);
  assert.match(again.restart!.reason, /^restart failed: yggdrasil exited with status 1/);

  fake.repair(); // the cause goes away
  const up = await waitFor("the daemon to be started again", async () => {
    const st = await s.status();
    return st.state === "running" ? st : undefined;
  }, 30_000);
  assert.equal(up.problem, undefined);
  assert.equal(up.restart, undefined, "running: no restart pending");
  assert.equal(up.address, identity.address);
  assert.ok(up.pid && processAlive(up.pid));
  assert.ok(fake.calls().filter((c) => c === "launch").length >= 2);
  await s.stop();
  assert.ok(!processAlive(up.pid));
});

test("spawn: stop() cancels the retries of a failed first start", { timeout: 30_000 }, async () => {
  const fake = fakeDaemon("cancel", { broken: true });
  const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: fake.binary });
  await assert.rejects(s.start(), (e: unknown) => e instanceof P2PError && e.code === "P2P_ERR_YGG_START_FAILED");
  await s.stop();
  const launches = fake.calls().filter((c) => c === "launch").length;
  // Longer than the first two backoff tiers (jittered +20%) plus a launch.
  await new Promise((r) => setTimeout(r, (RESTART_BACKOFF_MS[0]! + RESTART_BACKOFF_MS[1]!) * 1.2 + 1000));
  assert.equal(fake.calls().filter((c) => c === "launch").length, launches, "no launch after stop()");
  assert.equal((await s.status()).state, "stopped");
});

test("spawn: redial dials the other peers when one fails, and warns about the failing one once", { timeout: 60_000 }, async (t) => {
  const fake = fakeDaemon("redial");
  const quic = "quic://[::1]:9"; // a 0.5-only scheme: 0.4.7 answers addPeer with "unknown call scheme: quic"
  const tcp = "tcp://[::1]:9";
  const logs: string[] = [];
  const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: [quic, tcp], listen: [], multicast: false, binary: fake.binary, log: (level, m) => logs.push(`${level} ${m}`) });
  t.after(() => s.stop());
  assert.equal((await s.start()).state, "running");

  assert.equal(await s.redial(), 1, "the tcp peer was dialled");
  assert.equal(await s.redial(), 1, "and again");
  assert.equal(fake.calls().filter((c) => c === `addpeer ${tcp}`).length, 2);
  const warned = logs.filter((m) => m.includes(quic));
  assert.equal(warned.length, 1, warned.join("\n"));
  assert.match(warned[0]!, /^warn .*unknown call scheme: quic/);
});

test("spawn: a daemon that stops answering its admin socket (hung) is killed and restarted", { timeout: 60_000 }, async (t) => {
  const fake = fakeDaemon("hung");
  const logs: string[] = [];
  const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: fake.binary, unresponsiveMs: 2_000, log: (level, m) => logs.push(`${level} ${m}`) });
  t.after(() => s.stop());
  const first = await s.start();
  assert.equal(first.state, "running");
  process.kill(first.pid!, "SIGSTOP"); // alive, but answers nothing: its admin calls time out

  const second = await waitFor("a new daemon in place of the hung one", async () => {
    const st = await s.status(); // each call waits out the admin timeout while the daemon is stopped
    return st.state === "running" && st.pid !== first.pid && st.problem === undefined ? st : undefined;
  }, 45_000);
  assert.ok(!processAlive(first.pid!), "the hung daemon was killed");
  assert.ok(processAlive(second.pid!));
  assert.ok(logs.some((m) => /^warn .*daemon pid \d+ has not answered its admin socket for 2 s; killing it/.test(m)), logs.join("\n"));
  assert.equal(fake.calls().filter((c) => c === "launch").length, 2);
});

test("spawn: a daemon that answers, even with an error, is never killed for being slow to link peers", { timeout: 30_000 }, async (t) => {
  const fake = fakeDaemon("answers");
  const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: ["quic://[::1]:9"], listen: [], multicast: false, binary: fake.binary, unresponsiveMs: 1 });
  t.after(() => s.stop());
  const first = await s.start();
  for (let i = 0; i < 3; i++) {
    await s.redial(); // the daemon answers addPeer with an error: an answer all the same
    await s.status();
    await new Promise((r) => setTimeout(r, 5));
  }
  const now = await s.status();
  assert.equal(now.pid, first.pid);
  assert.equal(fake.calls().filter((c) => c === "launch").length, 1);
});

test("spawn: restarts back off along RESTART_BACKOFF_MS (+-20%) while the daemon keeps failing", { timeout: 60_000 }, async (t) => {
  const fake = fakeDaemon("backoff", { broken: true });
  const logs: string[] = [];
  const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: fake.binary, log: (level, m) => logs.push(`${level} ${m}`) });
  t.after(() => s.stop());
  await assert.rejects(s.start());
  const delays = await waitFor("three scheduled restarts", async () => {
    const ds = logs.map((m) => /restarting in (\d+) ms$/.exec(m)?.[1]).filter((d) => d !== undefined).map(Number);
    return ds.length >= 3 ? ds : undefined;
  }, 30_000);
  delays.slice(0, 3).forEach((d, i) => {
    const step = RESTART_BACKOFF_MS[i]!;
    assert.ok(d >= step * 0.8 - 1 && d <= step * 1.2 + 1, `restart ${i + 1} after ${d} ms, the table says ${step} ms`);
  });
});

test("spawn: stop() during start() leaves no daemon running, whenever it comes", { timeout: 60_000 }, async (t) => {
  const fake = fakeDaemon("stoprace", { readyAfterMs: 300 });
  t.after(() => yggdrasilPidsMentioning(fake.dataDir).forEach((pid) => process.kill(pid, "SIGKILL")));
  // 0 ms: while the binary is probed; later: once the daemon is spawned and not yet ready, and once it is.
  for (const delayMs of [0, 150, 400, 1500]) {
    const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: fake.binary });
    const started = s.start().catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, delayMs));
    await s.stop();
    await started;
    assert.equal(s.state, "stopped", `stop() ${delayMs} ms after start()`);
    await new Promise((r) => setTimeout(r, 300)); // a launch that stop() missed would have spawned by now
    assert.deepEqual(yggdrasilPidsMentioning(fake.dataDir), [], `no daemon left after stop() ${delayMs} ms after start()`);
    assert.equal(existsSync(join(fake.dataDir, "yggdrasil", "yggdrasil.pid")), false);
  }
});

test("spawn: the pid file names the daemon (pid and start time) from its spawn on, before it is ready", { timeout: 30_000 }, async (t) => {
  const fake = fakeDaemon("pidfile", { readyAfterMs: 2000 });
  const s = new YggdrasilSupervisor({ dataDir: fake.dataDir, identity, mode: "spawn", peers: [], listen: [], multicast: false, binary: fake.binary });
  t.after(() => s.stop());
  const started = s.start();
  const pidFile = join(fake.dataDir, "yggdrasil", "yggdrasil.pid");
  await waitFor("the daemon's launch", () => fake.calls().includes("launch"), 10_000, 20);
  assert.equal((await s.status()).state, "starting", "not ready yet");
  const [pid, startTime] = readFileSync(pidFile, "utf8").trim().split(" ");
  assert.deepEqual(yggdrasilPidsMentioning(fake.dataDir), [Number(pid)]);
  assert.equal(startTime, readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")[19], "field 22 of /proc/<pid>/stat");
  assert.equal((await started).pid, Number(pid));
  await s.stop();
  assert.equal(existsSync(pidFile), false);
});

test("declaw run: SIGINT while the daemon is starting stops the node and its daemon, and exits cleanly", { timeout: 60_000 }, async (t) => {
  const dataDir = join(root, "run-sigint");
  const fake = fakeDaemon("run-sigint", { readyAfterMs: 1500, address: loadOrCreateIdentity(dataDir).address });
  writeFileSync(join(dataDir, "config.json"), JSON.stringify({ yggdrasil_binary: fake.binary }));
  const run = spawn(process.execPath, [CLI, "--data-dir", dataDir, "--json", "run", "--yggdrasil", "spawn", "--port", String(await freePort())], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => run.kill("SIGKILL"));
  let out = "";
  run.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
  run.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<[number | null, string | null]>((r) => run.once("exit", (code, signal) => r([code, signal])));
  await waitFor("the daemon's launch", () => fake.calls().includes("launch"), 20_000, 20);
  run.kill("SIGINT");
  assert.deepEqual(await exited, [0, null], out);
  assert.match(out, /SIGINT: stopping once the start has settled/);
  assert.match(out, /"stopped": ?true/);
  assert.deepEqual(yggdrasilPidsMentioning(dataDir), [], "no daemon left behind");
  assert.equal(existsSync(join(dataDir, LOCK_FILE)), false, "the run lock released");
});
