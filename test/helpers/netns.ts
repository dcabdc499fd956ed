/**
 * A testnet of Linux network namespaces joined by veth pairs. Tests create one, start their processes in it, and
 * always destroy it (processes SIGKILLed by pid, then namespaces deleted) even when they fail. Only traffic inside
 * these namespaces and on loopback is ever generated.
 *
 * Names carry the creating process id (`dcl<pid>n<i>`), so a run killed before cleanup is tidied by the next one.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { pidAlive } from "../../src/core/process.ts";

export function netnsAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== "linux") return { ok: false, reason: "network namespaces need Linux" };
  if (process.getuid?.() !== 0) return { ok: false, reason: "network namespace tests need root (CI runs them as root)" };
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  } catch {
    return { ok: false, reason: "`ip netns` is not usable here (install iproute2)" };
  }
  return { ok: true };
}

function sh(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Deletes namespaces left by test processes that no longer exist. */
export function removeStaleNamespaces(): void {
  let list = "";
  try {
    list = sh(["netns", "list"]);
  } catch {
    return;
  }
  for (const line of list.split("\n")) {
    const m = /^(dcl(\d+)n\d+)\b/.exec(line.trim());
    if (m && !pidAlive(Number(m[2]))) killNamespace(m[1]!);
  }
}

function killNamespace(name: string): void {
  try {
    const pids = sh(["netns", "pids", name]).split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
    }
  } catch { /* namespace already gone */ }
  try { sh(["netns", "del", name]); } catch { /* already gone */ }
}

let counter = 0;

export class Namespace {
  readonly name: string;
  readonly #net: Testnet;
  constructor(net: Testnet, name: string) {
    this.#net = net;
    this.name = name;
  }

  /** Runs a short command in the namespace and returns its output; throws with stderr on failure. */
  exec(cmd: string, args: string[]): string {
    return execFileSync("ip", ["netns", "exec", this.name, cmd, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  }

  /** Starts a long-running process in the namespace; it is SIGKILLed when the testnet is destroyed. */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn("ip", ["netns", "exec", this.name, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"], ...opts });
    this.#net.track(child);
    return child;
  }

  /** Runs a command to completion and collects its output (never throws on a non-zero exit). */
  run(cmd: string, args: string[], opts: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = this.spawn(cmd, args, { ...opts, stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
      child.stdin!.end(opts.input ?? "");
    });
  }

  /** Adds an IPv6 address (no duplicate address detection, so it is usable at once). */
  addAddress(dev: string, cidr: string): void {
    this.exec("ip", ["-6", "addr", "add", cidr, "dev", dev, "nodad"]);
  }
}

export class Testnet {
  readonly namespaces: Namespace[] = [];
  readonly #children = new Set<ChildProcess>();
  #destroyed = false;

  constructor() {
    removeStaleNamespaces();
  }

  add(): Namespace {
    const name = `dcl${process.pid}n${counter++}`;
    sh(["netns", "add", name]);
    const ns = new Namespace(this, name);
    this.namespaces.push(ns);
    ns.exec("ip", ["link", "set", "lo", "up"]);
    return ns;
  }

  /** Joins two namespaces with a veth pair; returns the device name on each side (both up). */
  link(a: Namespace, b: Namespace): { aDev: string; bDev: string } {
    const id = `${process.pid.toString(36)}${(counter++).toString(36)}`;
    const aDev = `va${id}`.slice(0, 15);
    const bDev = `vb${id}`.slice(0, 15);
    sh(["link", "add", aDev, "netns", a.name, "type", "veth", "peer", "name", bDev, "netns", b.name]);
    a.exec("ip", ["link", "set", aDev, "up"]);
    b.exec("ip", ["link", "set", bDev, "up"]);
    return { aDev, bDev };
  }

  track(child: ChildProcess): void {
    this.#children.add(child);
    child.once("exit", () => this.#children.delete(child));
  }

  /** Kills every process started here (by pid) and in the namespaces, then deletes them. Safe to call twice. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const child of this.#children) {
      try { child.kill("SIGKILL"); } catch { /* gone */ }
    }
    for (const ns of this.namespaces) killNamespace(ns.name);
    await new Promise((r) => setTimeout(r, 50));
  }
}
