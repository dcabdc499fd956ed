/**
 * One real OpenClaw instance for integration tests: a scratch HOME, the plugin installed from a packed tarball, a
 * mock model server and a gateway, all inside one network namespace of a Testnet (loopback there is private to the
 * instance, so every instance can use the same ports). The data directory is on the shared filesystem: tests may
 * read it directly (Store.open) besides going through the `openclaw` CLI.
 *
 * Every process is started through the namespace helper, so Testnet.destroy() SIGKILLs whatever is left.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadOrCreateIdentity, type Identity } from "../../src/core/identity.ts";
import { peerIdFromAddress, parseIPv6 } from "../../src/core/address.ts";
import type { Namespace } from "./netns.ts";
import { mockProviderConfig, type RequestSummary } from "./mock-model.ts";
import { BIN, ROOT } from "./openclaw-pack.ts";

export const GATEWAY_PORT = 18789;
export const MODEL_PORT = 18555;
export const PEER_PORT = 8099;

const ANSI = /\u001b\[[0-9;]*m/g;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export class OpenClawInstance {
  readonly name: string;
  readonly ns: Namespace;
  readonly home: string;
  readonly dataDir: string;
  readonly identity: Identity;
  readonly address: string;
  readonly peerId: string;
  readonly modelRequests: RequestSummary[] = [];
  gatewayLog = "";
  #gateway: ChildProcess | undefined;
  #model: ChildProcess | undefined;

  constructor(o: { name: string; ns: Namespace; workDir: string }) {
    this.name = o.name;
    this.ns = o.ns;
    this.home = join(o.workDir, o.name);
    mkdirSync(join(this.home, ".openclaw"), { recursive: true });
    this.dataDir = join(this.home, ".openclaw", "ipv6-p2p");
    // The identity exists before the gateway runs, so the test knows the address to put on the interface.
    this.identity = loadOrCreateIdentity(this.dataDir);
    this.address = this.identity.address;
    this.peerId = peerIdFromAddress(parseIPv6(this.address)!);
  }

  env(): NodeJS.ProcessEnv {
    return {
      HOME: this.home,
      PATH: `${BIN}:${process.env.PATH ?? "/usr/bin:/bin"}`,
      NO_COLOR: "1",
      FORCE_COLOR: "0",
      LANG: "C.UTF-8",
      TMPDIR: process.env.TMPDIR ?? "/tmp",
      // `plugins install` runs npm; the package has no dependencies, and the namespace has no way out anyway.
      npm_config_offline: "true",
      npm_config_audit: "false",
      npm_config_fund: "false",
      npm_config_update_notifier: "false",
    };
  }

  /** Runs `openclaw <args>` in this instance's namespace and HOME. */
  cli(args: string[], o: { timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
    return runInNamespace(this.ns, join(BIN, "openclaw"), args, { env: this.env(), cwd: this.home, timeoutMs: o.timeoutMs ?? 120_000, input: o.input });
  }

  /** Runs a CLI command that must succeed and print JSON on stdout. */
  async cliJson<T = any>(args: string[], o: { timeoutMs?: number } = {}): Promise<T> {
    const r = await this.cli(args, o);
    if (r.code !== 0) throw new Error(`${this.name}: openclaw ${args.join(" ")} exited ${r.code}\n${r.stderr}\n${r.stdout}`);
    return parseJsonOutput<T>(r.stdout, `${this.name}: openclaw ${args.join(" ")}`);
  }

  /** `openclaw gateway call <method> --json --params <json>`. */
  gatewayCall<T = any>(method: string, params: unknown): Promise<T> {
    return this.cliJson<T>(["gateway", "call", method, "--json", "--params", JSON.stringify(params)]);
  }

  /** `openclaw plugins install --force --accept-capabilities npm-pack:<tarball>`; throws with the output on failure. */
  async installPlugin(tarball: string): Promise<void> {
    const r = await this.cli(["plugins", "install", "--force", "--accept-capabilities", `npm-pack:${tarball}`]);
    if (r.code !== 0) throw new Error(`${this.name}: plugins install failed (${r.code})\n${r.stderr}\n${r.stdout}`);
  }

  configFile(): string {
    return join(this.home, ".openclaw", "openclaw.json");
  }

  readConfig(): Record<string, any> {
    try {
      return JSON.parse(readFileSync(this.configFile(), "utf8")) as Record<string, any>;
    } catch {
      return {};
    }
  }

  /** Merges gateway, model and plugin settings into ~/.openclaw/openclaw.json (after the plugin install wrote it). */
  writeConfig(pluginConfig: Record<string, unknown>): void {
    const c = this.readConfig();
    c.gateway = { ...(c.gateway ?? {}), mode: "local", port: GATEWAY_PORT, bind: "loopback", auth: { mode: "none" } };
    c.plugins ??= {};
    c.plugins.entries ??= {};
    c.plugins.entries["ipv6-p2p"] = { ...(c.plugins.entries["ipv6-p2p"] ?? {}), enabled: true, config: pluginConfig };
    c.models = { ...(c.models ?? {}), providers: { ...(c.models?.providers ?? {}), mock: mockProviderConfig(`http://127.0.0.1:${MODEL_PORT}/v1`) } };
    c.agents = { ...(c.agents ?? {}), defaults: { ...(c.agents?.defaults ?? {}), model: { primary: "mock/mock-1" } } };
    writeFileSync(this.configFile(), `${JSON.stringify(c, null, 2)}\n`);
  }

  async startModel(): Promise<void> {
    const child = this.ns.spawn(join(BIN, "node"), [join(ROOT, "test/helpers/mock-model.ts"), "--port", String(MODEL_PORT)], { env: this.env() });
    this.#model = child;
    await new Promise<void>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(() => reject(new Error(`${this.name}: mock model did not start`)), 15_000);
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            const m = JSON.parse(line) as { listening?: number; request?: RequestSummary };
            if (m.listening) {
              clearTimeout(timer);
              resolve();
            }
            if (m.request) this.modelRequests.push(m.request);
          } catch { /* not ours */ }
        }
      });
      child.once("exit", (code) => reject(new Error(`${this.name}: mock model exited ${code}`)));
    });
  }

  async startGateway(timeoutMs = 120_000): Promise<void> {
    const child = this.ns.spawn(join(BIN, "openclaw"), ["gateway", "run"], { env: this.env(), cwd: this.home, detached: true });
    this.#gateway = child;
    const onData = (d: Buffer) => (this.gatewayLog += d.toString("utf8").replace(ANSI, ""));
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    // The line "<time> [gateway] ready", not "[gateway] spawn broker ready pid=...", which comes 5-10 s earlier.
    await this.waitFor(() => /\[gateway\] ready$/m.test(this.gatewayLog), timeoutMs, "gateway ready", () => {
      if (child.exitCode !== null) throw new Error(`${this.name}: gateway exited ${child.exitCode}\n${this.gatewayLog.slice(-4000)}`);
    });
  }

  stopModel(): void {
    this.#model?.kill("SIGKILL");
  }

  gatewayRunning(): boolean {
    return this.#gateway !== undefined && this.#gateway.exitCode === null && this.#gateway.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stopGateway(graceMs = 20_000): Promise<void> {
    const g = this.#gateway;
    if (!g || g.exitCode !== null || g.signalCode !== null) return;
    const exited = new Promise<void>((r) => g.once("exit", () => r()));
    g.kill("SIGTERM");
    const t = setTimeout(() => killGroup(g, "SIGKILL"), graceMs);
    await exited;
    clearTimeout(t);
    killGroup(g, "SIGKILL"); // helpers the gateway started (spawn broker, sqlite workers)
  }

  /** The node's heartbeat file, written by the plugin service while the node runs. */
  heartbeat(): { pid: number; updatedAt: number; address: string } | undefined {
    try {
      return JSON.parse(readFileSync(join(this.dataDir, "node.json"), "utf8"));
    } catch {
      return undefined;
    }
  }

  sessionKeyFor(peer: OpenClawInstance | string): string {
    const id = typeof peer === "string" ? peer : peer.peerId;
    return `agent:main:ipv6-p2p:direct:${id}`;
  }

  async waitFor(pred: () => boolean | Promise<boolean>, timeoutMs: number, what: string, check?: () => void): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      check?.();
      if (await pred()) return;
      if (Date.now() > end) throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}\n--- gateway log tail ---\n${this.gatewayLog.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch { /* group gone */ }
}

/**
 * Like Namespace.run, but the command leads its own process group and a timeout kills the whole group: OpenClaw
 * starts helper processes that inherit stdout, and killing only the CLI would leave the pipe (and the test) hanging.
 */
export function runInNamespace(ns: Namespace, cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = ns.spawn(cmd, args, { env: o.env, cwd: o.cwd, stdio: ["pipe", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child, "SIGKILL");
    }, o.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("exit", () => {
      // Helpers left in the group would keep the pipes open.
      setTimeout(() => killGroup(child, "SIGKILL"), 2_000).unref();
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr: timedOut ? `${stderr}\n[timed out after ${o.timeoutMs ?? 60_000} ms]` : stderr });
    });
    child.stdin!.end(o.input ?? "");
  });
}

/** JSON from CLI stdout, which may carry banner lines before the JSON document. */
export function parseJsonOutput<T>(stdout: string, what: string): T {
  const s = stdout.replace(ANSI, "");
  const start = s.search(/^[[{]/m);
  if (start < 0) throw new Error(`${what}: no JSON in output:\n${s}`);
  try {
    return JSON.parse(s.slice(start)) as T;
  } catch (err) {
    throw new Error(`${what}: bad JSON (${(err as Error).message}):\n${s}`);
  }
}

/** Texts of a chat.history result, flattened. */
export function historyTexts(h: { messages?: { role?: string; content?: unknown }[] }): { role: string; text: string }[] {
  return (h.messages ?? []).map((m) => ({
    role: String(m.role),
    text: typeof m.content === "string" ? m.content : Array.isArray(m.content) ? m.content.map((p: any) => (typeof p?.text === "string" ? p.text : "")).join("") : "",
  }));
}
