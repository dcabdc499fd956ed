/**
 * `sudo npm run demo`: a real two-node exchange on this machine. Two network namespaces joined by a veth pair, one
 * `declaw run` in each (each with its own Yggdrasil daemon when the `yggdrasil` binary is installed; otherwise
 * Yggdrasil off, with each node's key-derived address put on the veth), and every step done with the real CLI,
 * printed as it runs. Everything it creates (namespaces, processes, temp dirs) is removed at the end, on failure and
 * on Ctrl-C.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { pidAlive } from "../src/core/process.ts";

const CLI = fileURLToPath(new URL("../src/hosts/cli/main.ts", import.meta.url));
const NODE = process.execPath;
const YGG_PORT = 12345;
const NS_PREFIX = "dcldemo";
const LINK = { a: "fd00:de::1", b: "fd00:de::2" };
const COMMAND_TIMEOUT_MS = 60_000;
const ROUTE_TIMEOUT_MS = 90_000;

const tty = process.stdout.isTTY === true;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);
const say = (s = "") => process.stdout.write(`${s}\n`);
const indent = (text: string, by = "    ") => text.trimEnd().split("\n").map((l) => `${by}${l}`).join("\n");

/** An error the user can act on: printed as is, no stack trace. */
class DemoError extends Error {}

// ------------------------------------------------------------------------------------------------ preflight

function findYggdrasil(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/opt/homebrew/bin"];
  for (const d of dirs) {
    try {
      accessSync(join(d, "yggdrasil"), constants.X_OK);
      return join(d, "yggdrasil");
    } catch { /* next */ }
  }
  return undefined;
}

/** Why the demo cannot run here, with what to do instead; undefined when it can. */
function preflight(): string | undefined {
  if (process.platform !== "linux") {
    return "The demo uses Linux network namespaces, so it runs on Linux only.\n" +
      "Elsewhere, run `npx declaw run` on two machines and follow the README's \"Using the CLI\" section.";
  }
  if (process.getuid?.() !== 0) {
    return "The demo creates two network namespaces and a veth pair, which needs root.\nrun: sudo npm run demo";
  }
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch {
    return "The demo needs `ip netns` (iproute2), which is not usable here.\n" +
      "run: sudo apt install iproute2   (or your platform's iproute2 package), then: sudo npm run demo";
  }
  return undefined;
}

// ------------------------------------------------------------------------------------------------ resources

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function killNamespace(name: string): void {
  try {
    for (const pid of ip(["netns", "pids", name]).split(/\s+/).filter(Boolean).map(Number)) {
      try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    }
  } catch { /* no such namespace */ }
  try { ip(["netns", "del", name]); } catch { /* already gone */ }
}

/** Namespaces of earlier demo runs that were killed before they could clean up. */
function removeStaleNamespaces(): void {
  let list = "";
  try { list = ip(["netns", "list"]); } catch { return; }
  for (const line of list.split("\n")) {
    const m = new RegExp(`^(${NS_PREFIX}(\\d+)[ab])\\b`).exec(line.trim());
    if (m && !pidAlive(Number(m[2]))) killNamespace(m[1]!);
  }
}

interface Side {
  label: "A" | "B";
  ns: string;
  dev: string;
  dir: string;
  node?: ChildProcess;
  log: string;
}

const created = { namespaces: [] as string[], dirs: [] as string[], nodes: [] as ChildProcess[] };
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    // Nodes first, gently (they stop their own Yggdrasil daemons), then anything left in the namespaces.
    const running = created.nodes.filter((c) => c.exitCode === null && c.signalCode === null);
    for (const c of running) {
      try { c.kill("SIGTERM"); } catch { /* gone */ }
    }
    await Promise.all(running.map((c) => new Promise<void>((resolve) => {
      const t = setTimeout(() => { try { c.kill("SIGKILL"); } catch { /* gone */ } resolve(); }, 8000);
      c.once("exit", () => { clearTimeout(t); resolve(); });
      if (c.exitCode !== null || c.signalCode !== null) { clearTimeout(t); resolve(); }
    })));
    for (const ns of created.namespaces) killNamespace(ns);
    for (const d of created.dirs) rmSync(d, { recursive: true, force: true });
  })();
  return cleaning;
}

// ------------------------------------------------------------------------------------------------ the CLI

function quote(a: string): string {
  return /^[\w@%+=:,./[\]-]+$/.test(a) ? a : `"${a.replace(/(["\\$`])/g, "\\$1")}"`;
}

function show(side: Side, args: string[]): void {
  say(`  ${bold(`[${side.label}]`)} $ declaw ${args.map(quote).join(" ")}`);
}

/** `declaw --data-dir <side's dir> <args>` inside the side's namespace. Never throws on a non-zero exit. */
function declaw(side: Side, args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("ip", ["netns", "exec", side.ns, NODE, CLI, "--data-dir", side.dir, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => { clearTimeout(timer); reject(err); });
    child.on("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Runs a command shown to the user; prints its output; a failure ends the demo with the CLI's own message. */
async function step(side: Side, args: string[]): Promise<string> {
  show(side, args);
  const r = await declaw(side, args);
  if (r.code !== 0) throw new DemoError(`\`declaw ${args.join(" ")}\` in ${side.label} exited with ${r.code}:\n${indent(r.stderr || r.stdout)}`);
  say(indent(r.stdout));
  return r.stdout;
}

async function json(side: Side, args: string[]): Promise<any> {
  const r = await declaw(side, ["--json", ...args]);
  try {
    return { code: r.code, value: JSON.parse(r.stdout) };
  } catch {
    return { code: r.code, value: undefined, stderr: r.stderr };
  }
}

function startNode(side: Side, args: string[]): Promise<void> {
  show(side, ["run", ...args]);
  const child = spawn("ip", ["netns", "exec", side.ns, NODE, CLI, "--data-dir", side.dir, "run", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  created.nodes.push(child);
  side.node = child;
  child.stdout.setEncoding("utf8").on("data", (d: string) => (side.log += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (side.log += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new DemoError(`node ${side.label} did not start within 60 s; its log:\n${indent(side.log)}`)), 60_000);
    const onData = () => {
      const m = /node running as ([0-9a-f:]+)/.exec(side.log);
      if (!m) return;
      clearTimeout(timer);
      child.stderr.off("data", onData);
      say(dim(`    node ${side.label} running (pid ${child.pid}) as ${m[1]}`));
      resolve();
    };
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new DemoError(`node ${side.label} exited with ${code}; its log:\n${indent(side.log)}`));
    });
  });
}

// ------------------------------------------------------------------------------------------------ the demo

/** The yggdrasil binary to use, or why the demo runs without the mesh. */
function meshChoice(): { yggdrasil: string } | { yggdrasil: undefined; why: string } {
  if (process.env.DECLAW_DEMO_MESH === "off") return { yggdrasil: undefined, why: "DECLAW_DEMO_MESH=off is set" };
  const yggdrasil = findYggdrasil();
  if (!yggdrasil) return { yggdrasil: undefined, why: "yggdrasil is not installed (for the real mesh: sudo apt install yggdrasil, then run the demo again)" };
  if (!existsSync("/dev/net/tun")) return { yggdrasil: undefined, why: "/dev/net/tun does not exist (a container without TUN?); try: sudo modprobe tun" };
  return { yggdrasil };
}

async function demo(): Promise<void> {
  const mesh = meshChoice();
  const yggdrasil = mesh.yggdrasil;
  removeStaleNamespaces();
  const a: Side = { label: "A", ns: `${NS_PREFIX}${process.pid}a`, dev: "", dir: "", log: "" };
  const b: Side = { label: "B", ns: `${NS_PREFIX}${process.pid}b`, dev: "", dir: "", log: "" };

  say(bold("declaw demo: two nodes in two network namespaces on this machine"));
  if (yggdrasil) say(`Each node runs its own Yggdrasil daemon (${yggdrasil}), peered over a veth pair.`);
  else {
    say(bold("Note: this demo runs WITHOUT Yggdrasil (mode \"off\"): each node's key-derived 200::/7 address is put"));
    say(bold("directly on the veth pair instead of a mesh TUN. Everything else (keys, signatures, receipts) is the same."));
    say(`Why: ${"why" in mesh ? mesh.why : ""}`);
  }
  say(dim(`Each command below runs as: ip netns exec <namespace> declaw --data-dir <that node's temp dir> ...`));

  say();
  say(bold("1. Setting up: namespaces, a veth pair, two data directories"));
  for (const s of [a, b]) {
    ip(["netns", "add", s.ns]);
    created.namespaces.push(s.ns);
    ip(["netns", "exec", s.ns, "ip", "link", "set", "lo", "up"]);
    s.dir = mkdtempSync(join(tmpdir(), `declaw-demo-${s.label.toLowerCase()}-`));
    created.dirs.push(s.dir);
  }
  a.dev = `vdemo${process.pid}a`.slice(-15);
  b.dev = `vdemo${process.pid}b`.slice(-15);
  ip(["link", "add", a.dev, "netns", a.ns, "type", "veth", "peer", "name", b.dev, "netns", b.ns]);
  for (const [s, addr] of [[a, LINK.a], [b, LINK.b]] as const) {
    ip(["netns", "exec", s.ns, "ip", "link", "set", s.dev, "up"]);
    ip(["netns", "exec", s.ns, "ip", "-6", "addr", "add", `${addr}/64`, "dev", s.dev, "nodad"]);
    say(`    ${s.label}: namespace ${s.ns}, ${s.dev} ${addr}, data dir ${s.dir}`);
  }

  say();
  say(bold("2. Identities (created on first use: an Ed25519 key; the address is derived from it)"));
  const id: Record<"A" | "B", { address: string; publicKey: string }> = { A: { address: "", publicKey: "" }, B: { address: "", publicKey: "" } };
  for (const s of [a, b]) {
    show(s, ["status", "--json"]);
    const st = await json(s, ["status"]);
    if (st.code !== 0 || !st.value?.address) throw new DemoError(`declaw status failed in ${s.label}: ${st.stderr ?? JSON.stringify(st.value)}`);
    id[s.label] = { address: st.value.address, publicKey: st.value.publicKey };
    say(`    address     ${st.value.address}`);
    say(`    public key  ${st.value.publicKey}`);
  }

  say();
  say(bold("3. Starting both nodes"));
  if (yggdrasil) {
    await startNode(a, ["--yggdrasil", "spawn", "--listen", `tcp://[::]:${YGG_PORT}`]);
    await startNode(b, ["--yggdrasil", "spawn", "--peer", `tcp://[${LINK.a}]:${YGG_PORT}`]);
  } else {
    for (const s of [a, b]) {
      say(dim(`    ${s.label}: ip -6 addr add ${id[s.label].address}/7 dev ${s.dev} nodad   (stands in for the mesh)`));
      ip(["netns", "exec", s.ns, "ip", "-6", "addr", "add", `${id[s.label].address}/7`, "dev", s.dev, "nodad"]);
    }
    await startNode(a, ["--yggdrasil", "off"]);
    await startNode(b, ["--yggdrasil", "off"]);
  }

  say();
  say(bold("4. A adds B as a trusted peer"));
  await step(a, ["add", id.B.address, "--alias", "bob"]);

  if (yggdrasil) {
    process.stdout.write(dim("    waiting for the mesh route from A to B ..."));
    const t0 = Date.now();
    let last = "";
    for (;;) {
      const p = await json(a, ["ping", "bob"]);
      if (p.code === 0) break;
      last = p.value?.message ?? p.stderr ?? "";
      if (Date.now() - t0 > ROUTE_TIMEOUT_MS) {
        say();
        throw new DemoError(`no route from A to B over Yggdrasil after ${ROUTE_TIMEOUT_MS / 1000} s (${last}); node logs:\n${indent(a.log)}\n${indent(b.log)}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    say(dim(` ready after ${((Date.now() - t0) / 1000).toFixed(1)} s`));
  }

  say();
  say(bold("5. A sends B a message: delivered means B stored it and signed a receipt"));
  const sent = await step(a, ["send", "bob", "hello from A"]);
  if (!sent.startsWith("delivered")) throw new DemoError("the message was not delivered at once (see above)");

  say();
  say(bold("6. B's inbox"));
  await step(b, ["inbox"]);

  say();
  say(bold("7. B approves A (a first message makes the sender a pending peer) and replies"));
  await step(b, ["allow", id.A.address]);
  const reply = await step(b, ["send", id.A.address, "hello back from B"]);
  if (!reply.startsWith("delivered")) throw new DemoError("the reply was not delivered at once (see above)");

  say();
  say(bold("8. A's inbox"));
  await step(a, ["inbox"]);

  say();
  say(bold("9. A pings B: round trip and the verified identity of whoever answered"));
  await step(a, ["ping", "bob"]);
}

async function main(): Promise<number> {
  const problem = preflight();
  if (problem) {
    process.stderr.write(`${problem}\n`);
    return 1;
  }
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\n${sig}: stopping the nodes and removing the namespaces and temp dirs ...\n`);
    void cleanup().finally(() => process.exit(sig === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onSignal);
  // A closed pipe (e.g. `| head`) must not end the demo before it cleans up.
  process.stdout.on("error", () => undefined);
  process.stderr.on("error", () => undefined);
  let code = 0;
  try {
    await demo();
    say();
    say(bold("Done."));
  } catch (err) {
    code = 1;
    if (!interrupted) {
      const msg = err instanceof DemoError ? err.message : `unexpected error: ${(err as Error)?.message ?? String(err)}`;
      process.stderr.write(`\ndemo failed: ${msg}\n`);
      if (!(err instanceof DemoError) && process.env.DECLAW_DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
    }
  } finally {
    if (!interrupted) say(dim("Cleaning up: stopping the nodes, removing the namespaces and temp dirs."));
    await cleanup();
  }
  if (interrupted) return new Promise<number>(() => { /* the signal handler exits once cleanup is done */ });
  return code;
}

process.exitCode = await main();
