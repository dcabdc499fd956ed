/**
 * Human-readable text for what both hosts print (the `declaw` CLI and `openclaw p2p`), so the two say the same
 * thing in the same words. JSON output is the plain objects; this is only the text form. Text another machine chose
 * (message content, a peer's refusal in a last error or reason) goes through `escapeControls` so it cannot drive
 * the owner's terminal.
 */
import type { PeerChange, SendResult, StatusReport } from "../core/node.ts";
import { clockOffsetText, type PingResult } from "../core/client.ts";
import type { MessageRow, PeerRow } from "../core/store.ts";
import { escapeControls } from "../core/text.ts";

export function iso(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString() : "-";
}

export function formatStatus(s: StatusReport): string {
  const y = s.yggdrasil;
  const lines = [
    `address     ${s.address}`,
    `public key  ${s.publicKey}`,
    `subnet      ${s.subnet}`,
    `data dir    ${s.dataDir}`,
    `node        ${s.node.running ? `running (pid ${s.node.pid}, ${s.node.host}, since ${iso(s.node.since)}, peer port ${s.node.peerPort})` : "not running (messages are queued until a node runs: `declaw run` or the OpenClaw gateway)"}`,
    `yggdrasil   ${y.effectiveMode} ${y.state}${y.version ? ` (yggdrasil ${y.version})` : ""}${y.keyBinding === "first-use" ? " — address from the system daemon's key; our key is bound to it by first use" : ""}`,
  ];
  if (y.uptimeMs !== undefined) lines.push(`  uptime    ${Math.round(y.uptimeMs / 1000)} s`);
  if (y.restart) {
    const failed = y.restart.failures > 1 ? ` (${y.restart.failures} in a row)` : "";
    lines.push(`  restart   next start at ${iso(y.restart.at)}${failed}: ${escapeControls(y.restart.reason, { oneLine: true })}`);
  }
  // Our own daemon answering while no node runs: one starting right now, or one left behind although its guard
  // (daemon.ts) should have stopped it when its node died (the guard itself killed, say).
  if (!s.node.running && y.effectiveMode === "spawn" && y.state === "running" && y.pid !== undefined) {
    lines.push(`  note      no node runs with this daemon (pid ${y.pid}): a node is starting now, or one ended without stopping it; the next start stops a leftover daemon, or stop it now with \`kill ${y.pid}\``);
  }
  for (const p of y.peers ?? []) lines.push(`  mesh peer ${p.uri ?? p.address} ${p.up ? "up" : "down"}${p.uptimeMs !== undefined ? ` ${Math.round(p.uptimeMs / 1000)} s` : ""}`);
  if (y.problem) {
    lines.push(`  problem   ${y.problem.message}`);
    for (const f of y.problem.fix) lines.push(`  fix       ${f}`);
  }
  const c = s.counts;
  lines.push(`messages    inbox ${c.inbox}, queued ${c.queued}, failed ${c.failed}`);
  lines.push(`peers       ${c.peers} (${c.pending} pending)`);
  if (c.pending >= s.pendingMaxPeers) {
    lines.push(`  FULL      ${s.pendingMaxPeers} peers wait for your decision, the most this node keeps: new senders are refused (their messages stay queued with them) until you \`allow\`, \`block\` or \`remove\` some (\`peers --trust pending\` lists them)`);
  }
  for (const p of s.pendingPeers) lines.push(`  pending   ${p.address} (first seen ${iso(p.firstSeen)}) — allow with \`allow ${p.address}\``);
  for (const p of s.keyMismatches) lines.push(`  KEY MISMATCH ${p.alias ?? p.address} at ${iso(p.lastKeyMismatchAt)}: refused key ${p.lastMismatchKey}`);
  return lines.join("\n");
}

export function formatPeers(rows: PeerRow[]): string {
  if (rows.length === 0) return "no peers yet — add one with `add <address> --alias NAME`";
  return rows
    .map((p) => `${p.trust.padEnd(8)} ${(p.alias ?? "-").padEnd(16)} ${p.address}  key:${p.keyBinding ?? "none"}  last seen ${iso(p.lastSeen)}${p.protocol === 1 ? "  (legacy v1)" : ""}`)
    .join("\n");
}

/**
 * `peerOf`: the peer row of an address (the hosts pass the store's getPeer). Its alias is shown before the address,
 * and a message from a peer the user has not accepted (pending) or has blocked says so: its text comes from someone
 * the user has not vouched for. One the OpenClaw host holds back from the agent until then says that instead.
 */
export function formatMessages(rows: MessageRow[], peerOf: (address: string) => Pick<PeerRow, "alias" | "trust"> | undefined = () => undefined): string {
  if (rows.length === 0) return "no messages";
  return rows
    .map((m) => {
      const address = escapeControls(m.peer, { oneLine: true });
      const p = peerOf(m.peer);
      const peer = p?.alias ? `${escapeControls(p.alias, { oneLine: true })} (${address})` : address;
      const unvouched =
        m.direction !== "in" ? ""
        : m.held ? " [held: not given to the agent until you accept the peer]"
        : p?.trust === "pending" ? " [pending peer: not accepted yet]"
        : p?.trust === "blocked" ? " [blocked peer]"
        : "";
      const arrow = m.direction === "in" ? `from ${peer}${unvouched}` : `to   ${peer}`;
      const state = m.direction === "out" ? ` [${m.state}${m.state === "delivered" ? ` ${iso(m.deliveredAt)}` : ""}${m.lastError && (m.state === "queued" || m.state === "failed") ? `: ${escapeControls(m.lastError, { oneLine: true })}` : ""}]` : "";
      // Continuation lines are indented so every line of a message is visibly part of it.
      const id = m.direction === "out" ? ` id ${escapeControls(m.id, { oneLine: true })}` : "";
      return `${iso(m.createdAt)} ${arrow}${state}${id}\n  ${escapeControls(m.content).replaceAll("\n", "\n  ")}`;
    })
    .join("\n");
}

export function formatSend(r: SendResult): string {
  switch (r.state) {
    case "delivered":
      return `delivered to ${r.peer} — receipt: stored at ${iso(r.deliveredAt)} (id ${r.id})`;
    case "sent":
      return `sent to ${r.peer} (legacy v1 peer: accepted, but v1 gives no receipt) (id ${r.id})`;
    case "queued":
      return `queued for ${r.peer} (id ${r.id}): ${escapeControls(r.reason, { oneLine: true })}\nnext attempt ${iso(r.nextAttemptAt)}; a running node keeps retrying for up to the maximum age`;
    case "failed": {
      const hint = sendFailureHint(r.reason);
      return `failed: ${r.peer} refused the message (id ${r.id}): ${escapeControls(r.reason, { oneLine: true })}${hint ? `\nnext step: ${hint}` : ""}`;
    }
  }
}

const SPLIT = "send the text in several shorter messages (the peer takes smaller messages than this one)";

/**
 * What a refusal for good means and what the user can do, by the code a peer answered with (the codes the outbox
 * fails a message on at once: client.ts PERMANENT_CODES). Only codes that come back from the other side are here;
 * refusals made on this node carry their own next step.
 */
const REFUSAL_HINTS: Record<string, string> = {
  P2P_ERR_PEER_BLOCKED: "the peer has blocked you, so nothing you send reaches it: reach its owner another way and ask them to allow you (`allow <your address>`)",
  P2P_ERR_KEY_MISMATCH: `the peer has another key pinned for your address (your identity was created anew, or they pinned a wrong key): ask its owner to compare your public key (\`declaw status\` or \`openclaw p2p status\` shows it) and re-add you with \`add <your address> --key <your public key>\``,
  P2P_ERR_WRONG_RECIPIENT: "the node that answers at that address has another address of its own (it moved to a new identity or a system daemon): ask the peer's owner for their current address and add that",
  P2P_ERR_BAD_SIGNATURE: "the peer could not verify this node's signature: make sure both sides run a current declaw; if it persists, report it",
  P2P_ERR_BODY_TOO_LARGE: SPLIT,
  P2P_ERR_CONTENT_TOO_LARGE: SPLIT,
  P2P_ERR_UNSUPPORTED_KIND: "the peer's node does not take this kind of message (an older version?): ask its owner to update",
};

/**
 * The next step after a send that failed for good, read from its reason (SendResult has no code field): a peer's
 * refusal is `<code>: peer said: ...` or `<code>: HTTP <status>` (client.ts refusal), an expired message starts with
 * "expired" (outbox.ts). Undefined for reasons made on this node, which say what to do themselves (a peer blocked
 * or removed here) or are this node's own problem (a message it cannot build).
 */
export function sendFailureHint(reason: string): string | undefined {
  if (reason.startsWith("expired")) return "the peer could not be reached for the whole maximum message age: check that its node is running (`ping <peer>`), then send the message again";
  const code = /^([A-Z][A-Z0-9_]*): (?:peer said: |HTTP \d)/.exec(reason)?.[1];
  if (code === undefined) return undefined;
  return REFUSAL_HINTS[code] ?? "the peer refused this message for good, so sending it again will not help: ask its owner what their node refuses (the code and its words are above)";
}

export function formatPing(p: PingResult): string {
  const who = p.verified ? `verified: answered by ${p.address} with key ${p.publicKey} (${p.keyBinding === "derived" ? "key derives to the address" : "pinned key"})` : p.protocol === 1 ? "legacy v1 node (its ping is unsigned: identity not verified)" : `answered by ${p.address} with key ${p.publicKey} (not yet bound to the address)`;
  return `pong from ${p.address} in ${p.rttMs.toFixed(1)} ms — ${who}; protocols ${p.versions.join(",")}${clockNote(p.clockOffsetMs)}`;
}

/**
 * A peer's clock far from ours: the receiver refuses messages whose time is more than 300 s off (docs/protocol.md
 * step 6), so past that nothing gets through either way until one of the clocks is fixed. Under a minute: not said.
 */
function clockNote(offsetMs: number | undefined): string {
  if (offsetMs === undefined || Math.abs(offsetMs) < 60_000) return "";
  const where = `\nthis machine's clock is ${clockOffsetText(-offsetMs)} the peer's`;
  return Math.abs(offsetMs) > 300_000
    ? `${where}: more than the 300 s a receiver allows, so messages between you are refused until one of the clocks is fixed (timedatectl, NTP)`
    : `${where} (a receiver allows 300 s): check both clocks (timedatectl, NTP)`;
}

export function formatPeer(verb: string, p: PeerRow): string {
  return `${verb} ${p.alias ? `${p.alias} (${p.address})` : p.address} — trust ${p.trust}, key ${p.keyBinding ?? "not pinned yet"}`;
}

/** `remove`'s and `block`'s answer: the peer, and the queued messages to it that this failed, if any. */
export function formatPeerChange(verb: string, p: PeerChange): string {
  const n = p.failedQueued;
  return `${formatPeer(verb, p)}${n > 0 ? `\n${n} message${n === 1 ? "" : "s"} still queued to it failed: nothing more is sent to it (\`outbox\` lists them)` : ""}`;
}

/** `add`'s answer: the peer, and what a key given by the user that does not derive to the address means. */
export function formatAddedPeer(p: PeerRow): string {
  const note = p.keyBinding === "user" ? "\nthis key does not derive to the address, so it is pinned on your word: messages from the address signed by any other key are refused (right for a peer behind a system Yggdrasil daemon; check the key with its owner)" : "";
  return `${formatPeer("added", p)}${note}`;
}

/** The next step after P2P_ERR_UNREACHABLE (a ping, say), for either host: withCommandPrefix names its commands. */
export const UNREACHABLE_HINT =
  "check this machine's mesh with `status` (a spawned Yggdrasil runs only while `declaw run` or the gateway runs), then that the peer's node is running; `send` queues messages and retries by itself";

/** The commands hints name as `declaw` takes them (`allow <peer>`), which `openclaw p2p` also has. */
const HOST_COMMANDS = ["add", "allow", "block", "cancel", "inbox", "outbox", "peers", "ping", "remove", "send", "setup", "status"];
const HOST_COMMAND_IN_HINT = new RegExp(`\`(${HOST_COMMANDS.join("|")})(?=[ \`])`, "g");

/**
 * Hint text with each command it names in backticks (`` `allow 200::1` ``, `` `outbox` ``) written for another host:
 * `openclaw p2p allow 200::1`. Only for text made here (status, errors, hints), never for message content.
 */
export function withCommandPrefix(text: string, prefix: string): string {
  return text.replace(HOST_COMMAND_IN_HINT, `\`${prefix} $1`);
}
