/**
 * `openclaw p2p ...`: the same commands, arguments and output as the `declaw` CLI (src/hosts/cli), working on the
 * plugin's data directory whether or not the gateway runs (each command opens the data dir itself). `--json` on every
 * leaf prints the plain result object (or `{error, message, hint}`); text output comes from the shared
 * src/hosts/format.ts. Exit status: 0 ok, 1 the operation failed, 2 usage error.
 *
 * Only registration happens at import; the core loads when a command runs.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { PluginSettings } from "./config.ts";
import { CHANNEL_ID, CLI_PREFIX, policyLine } from "./config.ts";
import { describeError, withNode } from "./node-access.ts";
import { corePeerRef } from "./target.ts";

/** The commander `Command` surface we use (OpenClaw passes its own commander instance). */
export interface CommandLike {
  command(nameAndArgs: string): CommandLike;
  description(text: string): CommandLike;
  option(flags: string, description?: string, defaultValue?: unknown): CommandLike;
  action(fn: (...args: any[]) => unknown): CommandLike;
}

export interface CliOutput {
  json: unknown;
  text: string;
  exitCode?: number;
}

type Opts = { json?: boolean; alias?: string; key?: string; port?: string; peer?: string; limit?: string; trust?: string };

function intOpt(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function usage(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: "P2P_ERR_BAD_ARGUMENT" });
}

/** Commands whose text output holds message content, which is shown as it is (no command names rewritten in it). */
const CONTENT_COMMANDS = new Set(["inbox", "outbox", "cancel"]);

async function fmt() {
  return import("../format.ts");
}

/** The commands, independent of commander (also used by tests through `runCli`). */
export const CLI_COMMANDS: Record<string, { args: string; summary: string; options?: [string, string][]; run(s: PluginSettings, args: string[], o: Opts): Promise<CliOutput> }> = {
  status: {
    args: "",
    summary: "this node's address, Yggdrasil state, counts, pending peers, loop budget",
    run: (s) =>
      withNode(s, async (n) => {
        const [{ formatStatus, iso }, { LoopBudget }] = await Promise.all([fmt(), import("./policy.ts")]);
        const st = await n.status();
        const budgets = new LoopBudget(n.store, s.loopBudget, s.loopWindowMs).all();
        const openclaw = { dmPolicy: s.dmPolicy, loopBudget: { limit: s.loopBudget, windowMinutes: s.loopWindowMs / 60_000, peers: budgets }, peerTools: s.peerTools ?? ["*"] };
        const lines = [formatStatus(st), policyLine(s)];
        for (const b of budgets) {
          lines.push(
            `  budget    ${b.peer} ${b.used}/${b.limit}${b.exhausted ? ` SPENT until ${iso(b.resetsAt)}` : ""}${b.heldBack ? `; ${b.heldBack} message(s) not given to the agent (last ${iso(b.lastHeldBackAt)})` : ""}`,
          );
        }
        return { json: { ...st, openclaw }, text: lines.join("\n") };
      }),
  },
  add: {
    args: "<address>",
    summary: "add (or update) a trusted peer",
    options: [["--alias <name>", "a short name for the peer"], ["--key <base64>", "the peer's Ed25519 public key"], ["--port <n>", "the peer's port (default 8099)"]],
    run: (s, [address], o) =>
      withNode(s, async (n) => {
        const p = n.addPeer(corePeerRef(address!), { alias: o.alias, key: o.key, port: intOpt(o.port, "port", 1, 65535) });
        return { json: p, text: (await fmt()).formatAddedPeer(p) };
      }),
  },
  remove: {
    args: "<peer>",
    summary: "forget a peer (its messages are kept; any still queued to it are failed)",
    run: (s, [peer]) =>
      withNode(s, async (n) => {
        const p = n.removePeer(corePeerRef(peer!));
        return { json: p, text: (await fmt()).formatPeerChange("removed", p) };
      }),
  },
  ping: {
    args: "<peer>",
    summary: "round trip and the verified identity of whoever answered",
    run: (s, [peer]) =>
      withNode(s, async (n) => {
        const r = await n.ping(corePeerRef(peer!));
        return { json: r, text: (await fmt()).formatPing(r) };
      }),
  },
  send: {
    args: "<peer> <text...>",
    summary: "send a message: delivered with the receipt time, or queued with the reason",
    run: (s, [peer, ...text]) =>
      withNode(s, async (n) => {
        const r = await n.send(corePeerRef(peer!), text.join(" "));
        return { json: r, text: (await fmt()).formatSend(r), exitCode: r.state === "failed" ? 1 : 0 };
      }),
  },
  peers: {
    args: "",
    summary: "list peers with trust state and key binding (--trust: only those)",
    options: [["--limit <n>", "at most this many (default 1000)"], ["--trust <level>", "only peers that are trusted, pending or blocked"]],
    run: (s, _a, o) =>
      withNode(s, async (n) => {
        const rows = n.peers({ limit: intOpt(o.limit, "limit", 1, 100_000) ?? 1000, trust: o.trust });
        return { json: rows, text: (await fmt()).formatPeers(rows) };
      }),
  },
  inbox: {
    args: "",
    summary: "received messages, newest first",
    options: [["--peer <peer>", "only this peer"], ["--limit <n>", "at most this many (default 20)"]],
    run: (s, _a, o) =>
      withNode(s, async (n) => {
        const rows = n.inbox({ peer: o.peer === undefined ? undefined : corePeerRef(o.peer), limit: intOpt(o.limit, "limit", 1, 10_000) ?? 20 });
        return { json: rows, text: (await fmt()).formatMessages(rows, (a) => n.store.getPeer(a)) };
      }),
  },
  outbox: {
    args: "",
    summary: "sent messages with delivery state",
    options: [["--limit <n>", "at most this many (default 20)"]],
    run: (s, _a, o) =>
      withNode(s, async (n) => {
        const rows = n.outbox({ limit: intOpt(o.limit, "limit", 1, 10_000) ?? 20 });
        return { json: rows, text: (await fmt()).formatMessages(rows, (a) => n.store.getPeer(a)) };
      }),
  },
  cancel: {
    args: "<id>",
    summary: "stop retrying a queued message (ids in `outbox`); it is marked failed",
    run: (s, [id]) =>
      withNode(s, async (n) => {
        const m = n.cancel(id!);
        return { json: m, text: `cancelled: ${(await fmt()).formatMessages([m], (a) => n.store.getPeer(a))}` };
      }),
  },
  allow: {
    args: "<peer>",
    summary: "trust a peer (approve a pending request; its held messages then reach the agent)",
    run: (s, [peer]) =>
      withNode(s, async (n) => {
        const p = n.allow(corePeerRef(peer!));
        return { json: p, text: (await fmt()).formatPeer("allowed", p) };
      }),
  },
  block: {
    args: "<peer>",
    summary: "refuse all messages from a peer and send it none (queued ones are failed)",
    run: (s, [peer]) =>
      withNode(s, async (n) => {
        const p = n.block(corePeerRef(peer!));
        return { json: p, text: (await fmt()).formatPeerChange("blocked", p) };
      }),
  },
  setup: {
    args: "",
    summary: "check Yggdrasil (binary, privileges, socket) and do the one-time setup when run with the rights",
    run: async (s) => {
      const { runPluginSetup } = await import("./setup.ts");
      return runPluginSetup(s);
    },
  },
};

/** Runs one command and writes its output; returns the exit status. */
export async function runCli(name: string, s: PluginSettings | (() => PluginSettings), args: string[], o: Opts, out = process.stdout, err = process.stderr): Promise<number> {
  const cmd = CLI_COMMANDS[name];
  try {
    if (!cmd) throw usage(`unknown command "${name}"`);
    const settings = typeof s === "function" ? s() : s;
    const { IDENTITY_FILE } = await import("../../core/identity.ts");
    const identity = join(settings.dataDir, IDENTITY_FILE);
    const fresh = !existsSync(identity);
    const r = await cmd.run(settings, args, o);
    // Opening creates an identity where there is none: a data_dir set wrong would look like an empty node.
    if (fresh && existsSync(identity)) err.write(`openclaw p2p: created a new identity in ${settings.dataDir} (\`${CLI_PREFIX} status\` shows its address)\n`);
    if (o.json) out.write(`${JSON.stringify(r.json, null, 2)}\n`);
    else if (r.text) out.write(`${CONTENT_COMMANDS.has(name) ? r.text : (await fmt()).withCommandPrefix(r.text, CLI_PREFIX)}\n`);
    return r.exitCode ?? 0;
  } catch (e) {
    const d = describeError(e);
    const { withCommandPrefix, UNREACHABLE_HINT } = await fmt();
    const hint = withCommandPrefix(d.hint ?? (d.code === "P2P_ERR_UNREACHABLE" ? UNREACHABLE_HINT : ""), CLI_PREFIX) || undefined;
    const message = withCommandPrefix(d.message, CLI_PREFIX);
    if (o.json) out.write(`${JSON.stringify({ error: d.code, message, hint })}\n`);
    else err.write(`openclaw p2p: ${message}${hint ? `\nnext step: ${hint}` : ""}\n`);
    const operation = (e as { operation?: unknown } | undefined)?.operation === true;
    return (d.code === "P2P_ERR_BAD_ARGUMENT" && !operation) || d.code === "P2P_ERR_CONFIG" ? 2 : 1;
  }
}

/** Registers `p2p` and its leaves on OpenClaw's commander program. */
export function registerP2pCommands(program: CommandLike, settings: () => PluginSettings): void {
  const root = program.command("p2p").description(`Direct signed messaging with other OpenClaw instances over Yggdrasil (${CHANNEL_ID})`);
  for (const [name, c] of Object.entries(CLI_COMMANDS)) {
    let cmd = root.command(c.args ? `${name} ${c.args}` : name).description(c.summary);
    for (const [flags, desc] of c.options ?? []) cmd = cmd.option(flags, desc);
    cmd = cmd.option("--json", "print the result as JSON");
    cmd.action(async (...argv: unknown[]) => {
      // commander passes the positionals (a variadic one as an array), then the options object, then the command.
      const positional = argv.slice(0, -2).flatMap((a) => (Array.isArray(a) ? a.map(String) : a === undefined ? [] : [String(a)]));
      const opts = (argv.at(-2) ?? {}) as Opts;
      process.exitCode = await runCli(name, settings, positional, opts);
    });
  }
}
