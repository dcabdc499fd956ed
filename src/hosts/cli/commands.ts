/**
 * The `declaw` commands. Each returns a result object (printed as JSON with --json) and its text form. Every command
 * opens the data directory itself, so it works whether or not a node (`declaw run` or the OpenClaw gateway) is
 * running on it: SQLite in WAL mode with leases makes that safe.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { CONFIG_FILE, loadConfigFile, peerUris, type NodeConfig } from "../../core/config.ts";
import { canonicalAddress } from "../../core/address.ts";
import { P2PError } from "../../core/errors.ts";
import { IDENTITY_FILE } from "../../core/identity.ts";
import { Node } from "../../core/node.ts";
import { escapeControls } from "../../core/text.ts";
import { formatAddedPeer, formatMessages, formatPeer, formatPeerChange, formatPeers, formatPing, formatSend, formatStatus, sendFailureHint } from "../format.ts";
import { peerRef } from "../peer-ref.ts";
import { runSetup } from "./setup.ts";

export interface CommandContext {
  dataDir: string;
  positionals: string[];
  flags: Record<string, string | boolean | string[] | undefined>;
}

export interface CommandOutput {
  json: unknown;
  text: string;
  exitCode?: number;
}

export interface Command {
  usage: string;
  summary: string;
  options?: Record<string, { type: "string" | "boolean"; multiple?: boolean }>;
  args: [min: number, max: number];
  run(ctx: CommandContext): Promise<CommandOutput>;
}

/** What `send` adds when a message stays queued and no node runs to retry it. */
const NO_NODE_SENDS = "no node runs on this data directory now: start `declaw run` (or the OpenClaw gateway with this plugin) and it is sent";

/**
 * Opens the data directory for one command. Opening creates an identity where there is none, so a mistyped
 * --data-dir would look like an empty node: the CLI says on stderr when that happened. `existing`: the command has
 * nothing to do in a new node (it reads, or names a peer or message that must be there already), so a data directory
 * that does not exist is refused instead of created.
 */
function withNode<T>(ctx: CommandContext, fn: (node: Node) => Promise<T> | T, o: { existing?: boolean } = {}): Promise<T> {
  if (o.existing) requireDataDir(ctx.dataDir);
  const node = openNode(ctx, { config: loadConfig(ctx) });
  return Promise.resolve()
    .then(() => fn(node))
    .finally(() => node.close());
}

/** Node.open on the command's data dir, saying on stderr when that created a new identity (see withNode). */
export function openNode(ctx: CommandContext, o: Omit<Parameters<typeof Node.open>[0], "dataDir">): Node {
  const fresh = !existsSync(join(ctx.dataDir, IDENTITY_FILE));
  const node = Node.open({ dataDir: ctx.dataDir, ...o });
  if (fresh) process.stderr.write(`declaw: created a new identity in ${escapeControls(ctx.dataDir, { oneLine: true })} (address ${node.address})\n`);
  return node;
}

/** `<data_dir>/config.json`, saying on stderr which of its keys no host reads from there (they would be silently moot). */
function loadConfig(ctx: CommandContext): NodeConfig {
  const { config, ignored } = loadConfigFile(ctx.dataDir);
  if (ignored.length > 0) {
    process.stderr.write(`declaw: ${escapeControls(join(ctx.dataDir, CONFIG_FILE), { oneLine: true })}: ${ignored.join(", ")} ${ignored.length === 1 ? "has" : "have"} no effect there (OpenClaw plugin settings: set them with \`openclaw config set 'plugins.entries["ipv6-p2p"].config.KEY' VALUE\`, and remove them from this file)\n`);
  }
  return config;
}

/** A data directory that does not exist is refused (any other problem with it is Node.open's to report). */
function requireDataDir(dir: string): void {
  try {
    statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") return;
    throw new P2PError("P2P_ERR_DATA_DIR", `data directory ${dir} does not exist`, {
      hint: "check --data-dir (or DECLAW_DATA_DIR) for a typo; to start a new node there, `declaw status` creates its identity",
    });
  }
}

function intFlag(ctx: CommandContext, name: string, min: number, max: number): number | undefined {
  const v = ctx.flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new P2PError("P2P_ERR_BAD_ARGUMENT", `--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function str(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.flags[name];
  return typeof v === "string" ? v : undefined;
}

/** The first argument as a peer reference for the core (a peer id mapped to its address). */
function peerArg(ctx: CommandContext): string {
  return peerRef(ctx.positionals[0]!);
}

export const COMMANDS: Record<string, Command> = {
  run: {
    usage: "run [--port N] [--yggdrasil auto|spawn|system|off] [--peer URI]... [--listen URI]... [--verbose]",
    summary: "run the node in the foreground (peer server, outbox, Yggdrasil)",
    options: { port: { type: "string" }, yggdrasil: { type: "string" }, peer: { type: "string", multiple: true }, listen: { type: "string", multiple: true }, verbose: { type: "boolean" } },
    args: [0, 0],
    async run(ctx) {
      const { runForeground } = await import("./run.ts");
      return runForeground(ctx);
    },
  },
  status: {
    usage: "status",
    summary: "this node's address, Yggdrasil state, counts, pending peers",
    args: [0, 0],
    run: (ctx) => withNode(ctx, async (n) => {
      const s = await n.status();
      return { json: s, text: formatStatus(s) };
    }),
  },
  add: {
    usage: "add <address> [--alias NAME] [--key BASE64] [--port N]",
    summary: "add a trusted peer, or update one (a known peer also by its alias)",
    options: { alias: { type: "string" }, key: { type: "string" }, port: { type: "string" } },
    args: [1, 1],
    run: (ctx) => withNode(ctx, (n) => {
      const ref = peerArg(ctx);
      // A known peer may be named by its alias too, as the other commands take it (re-adding with --key is the fix
      // for a key mismatch); a new one only by its address.
      const address = canonicalAddress(ref) ?? n.store.resolvePeer(ref)?.address;
      if (address === undefined) {
        throw new P2PError("P2P_ERR_BAD_ARGUMENT", `"${ref}" is neither an address nor a known peer's alias`, { hint: "add a new peer by its Yggdrasil address (such as 200:1234:5678::1) with --alias NAME; `peers` lists the known ones" });
      }
      const p = n.addPeer(address, { alias: str(ctx, "alias"), key: str(ctx, "key"), port: intFlag(ctx, "port", 1, 65535) });
      return { json: p, text: formatAddedPeer(p) };
    }),
  },
  remove: {
    usage: "remove <peer>",
    summary: "forget a peer (its messages are kept; any still queued to it are failed)",
    args: [1, 1],
    run: (ctx) => withNode(ctx, (n) => {
      const p = n.removePeer(peerArg(ctx));
      return { json: p, text: formatPeerChange("removed", p) };
    }, { existing: true }),
  },
  ping: {
    usage: "ping <peer>",
    summary: "round trip and the verified identity of whoever answered",
    args: [1, 1],
    run: (ctx) => withNode(ctx, async (n) => {
      const r = await n.ping(peerArg(ctx));
      return { json: r, text: formatPing(r) };
    }),
  },
  send: {
    usage: "send <peer> <text>",
    summary: "send a message: delivered with the receipt time, or queued with the reason",
    args: [2, Infinity],
    run: (ctx) => withNode(ctx, async (n) => {
      let queued: string | undefined;
      const interrupted = () => {
        // Ctrl-C during the first attempt: the message is stored, so its lease (this call's, from the moment it was
        // queued) is handed back to the outbox at once, not when it ends; were the request already through, the peer
        // stores it once all the same.
        try {
          if (queued) n.store.markRetry(queued, Date.now(), "interrupted (Ctrl-C) during the first attempt");
        } catch {
          // the store refused (locked, say): the message is still queued, and retried once the attempt's lease ends
        }
        const next = n.processInfo().running ? "the running node sends it" : NO_NODE_SENDS;
        process.stderr.write(queued ? `\ninterrupted: message ${queued} stays queued; ${next} (\`declaw outbox\` shows it, \`declaw cancel ${queued}\` stops it)\n` : "\ninterrupted: nothing was queued\n");
        // A program that asked for JSON gets the outcome on stdout too: the id it needs to follow the message.
        if (ctx.flags.json === true) {
          const out = queued ? { state: "queued", id: queued, reason: "interrupted (Ctrl-C) during the first attempt" } : { error: "P2P_ERR_INTERRUPTED", message: "interrupted: nothing was queued" };
          process.stdout.write(`${JSON.stringify(out)}\n`);
        }
        process.exit(130);
      };
      process.once("SIGINT", interrupted);
      const r = await n.send(peerArg(ctx), ctx.positionals.slice(1).join(" "), { onQueued: (id) => (queued = id) }).finally(() => process.off("SIGINT", interrupted));
      // Retries are the running node's work (the outbox); without one, nothing tries again until a node starts.
      const idle = r.state === "queued" && !n.processInfo().running ? `\n${NO_NODE_SENDS}` : "";
      const hint = r.state === "failed" ? sendFailureHint(r.reason) : undefined;
      return { json: hint ? { ...r, hint } : r, text: `${formatSend(r)}${idle}`, exitCode: r.state === "failed" ? 1 : 0 };
    }),
  },
  peers: {
    usage: "peers [--trust trusted|pending|blocked] [--limit N]",
    summary: "list peers with trust state and key binding (--trust: only those)",
    options: { limit: { type: "string" }, trust: { type: "string" } },
    args: [0, 0],
    run: (ctx) => withNode(ctx, (n) => {
      const rows = n.peers({ limit: intFlag(ctx, "limit", 1, 100_000) ?? 1000, trust: str(ctx, "trust") });
      return { json: rows, text: formatPeers(rows) };
    }, { existing: true }),
  },
  inbox: {
    usage: "inbox [--peer P] [--limit N]",
    summary: "received messages, newest first",
    options: { peer: { type: "string" }, limit: { type: "string" } },
    args: [0, 0],
    run: (ctx) => withNode(ctx, (n) => {
      const peerOpt = str(ctx, "peer");
      const rows = n.inbox({ peer: peerOpt === undefined ? undefined : peerRef(peerOpt), limit: intFlag(ctx, "limit", 1, 10_000) ?? 20 });
      return { json: rows, text: formatMessages(rows, (a) => n.store.getPeer(a)) };
    }, { existing: true }),
  },
  outbox: {
    usage: "outbox [--limit N]",
    summary: "sent messages with delivery state",
    options: { limit: { type: "string" } },
    args: [0, 0],
    run: (ctx) => withNode(ctx, (n) => {
      const rows = n.outbox({ limit: intFlag(ctx, "limit", 1, 10_000) ?? 20 });
      return { json: rows, text: formatMessages(rows, (a) => n.store.getPeer(a)) };
    }, { existing: true }),
  },
  cancel: {
    usage: "cancel <id>",
    summary: "stop retrying a queued message (ids in `outbox`); it is marked failed",
    args: [1, 1],
    run: (ctx) => withNode(ctx, (n) => {
      // No such id, or not queued any more (delivered meanwhile, say): an OperationError from the core, exit 1.
      const m = n.cancel(ctx.positionals[0]!);
      return { json: m, text: `cancelled: ${formatMessages([m], (a) => n.store.getPeer(a))}` };
    }, { existing: true }),
  },
  allow: {
    usage: "allow <peer>",
    summary: "trust a peer (approve a pending request)",
    args: [1, 1],
    run: (ctx) => withNode(ctx, (n) => {
      const p = n.allow(peerArg(ctx));
      return { json: p, text: formatPeer("allowed", p) };
    }),
  },
  block: {
    usage: "block <peer>",
    summary: "refuse all messages from a peer and send it none (queued ones are failed)",
    args: [1, 1],
    run: (ctx) => withNode(ctx, (n) => {
      const p = n.block(peerArg(ctx));
      return { json: p, text: formatPeerChange("blocked", p) };
    }),
  },
  setup: {
    usage: "setup [--binary PATH]",
    summary: "check Yggdrasil (binary, privileges, socket) and do the one-time setup when run with the rights",
    options: { binary: { type: "string" } },
    args: [0, 0],
    run: (ctx) => runSetup(ctx),
  },
};

/** --peer/--listen, checked as config.json's yggdrasil_peers/yggdrasil_listen are (else only the daemon would fail). */
function uriFlag(ctx: CommandContext, name: "peer" | "listen"): string[] | undefined {
  if (ctx.flags[name] === undefined) return undefined;
  try {
    return peerUris(ctx.flags[name], `--${name}`);
  } catch (err) {
    const e = err as P2PError;
    throw new P2PError(e.code, e.message, { hint: `give each --${name} as a URI such as tls://[host]:port, the form of yggdrasil_${name === "peer" ? "peers" : "listen"} in config.json` });
  }
}

export function configForRun(ctx: CommandContext): NodeConfig {
  const config = loadConfig(ctx);
  const port = intFlag(ctx, "port", 1, 65535);
  const mode = str(ctx, "yggdrasil");
  if (mode !== undefined && !["auto", "spawn", "system", "off"].includes(mode)) throw new P2PError("P2P_ERR_BAD_ARGUMENT", "--yggdrasil must be auto, spawn, system or off");
  const peers = uriFlag(ctx, "peer");
  const listen = uriFlag(ctx, "listen");
  return {
    ...config,
    ...(port !== undefined ? { peerPort: port } : {}),
    ...(mode !== undefined ? { yggdrasil: mode as NodeConfig["yggdrasil"] } : {}),
    ...(peers ? { yggdrasilPeers: peers } : {}),
    ...(listen ? { yggdrasilListen: listen } : {}),
  };
}
