/**
 * Human-readable text for what both hosts print (the `declaw` CLI and `openclaw p2p`), so the two say the same
 * thing in the same words. JSON output is the plain objects; this is only the text form. Text another machine chose
 * (message content, a peer's refusal in a last error or reason) goes through `escapeControls` so it cannot drive
 * the owner's terminal.
 */
import type { SendResult, StatusReport } from "../core/node.ts";
import type { PingResult } from "../core/client.ts";
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
  for (const p of y.peers ?? []) lines.push(`  mesh peer ${p.uri ?? p.address} ${p.up ? "up" : "down"}${p.uptimeMs !== undefined ? ` ${Math.round(p.uptimeMs / 1000)} s` : ""}`);
  if (y.problem) {
    lines.push(`  problem   ${y.problem.message}`);
    for (const f of y.problem.fix) lines.push(`  fix       ${f}`);
  }
  const c = s.counts;
  lines.push(`messages    inbox ${c.inbox}, queued ${c.queued}, failed ${c.failed}`);
  lines.push(`peers       ${c.peers} (${c.pending} pending)`);
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

/** `aliasOf`: the user's alias for a peer address (the hosts pass the store's), shown before the address. */
export function formatMessages(rows: MessageRow[], aliasOf: (address: string) => string | null | undefined = () => undefined): string {
  if (rows.length === 0) return "no messages";
  return rows
    .map((m) => {
      const address = escapeControls(m.peer, { oneLine: true });
      const alias = aliasOf(m.peer);
      const peer = alias ? `${escapeControls(alias, { oneLine: true })} (${address})` : address;
      const arrow = m.direction === "in" ? `from ${peer}` : `to   ${peer}`;
      const state = m.direction === "out" ? ` [${m.state}${m.state === "delivered" ? ` ${iso(m.deliveredAt)}` : ""}${m.lastError && m.state !== "delivered" ? `: ${escapeControls(m.lastError, { oneLine: true })}` : ""}]` : "";
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
    case "failed":
      return `failed: ${r.peer} refused the message (id ${r.id}): ${escapeControls(r.reason, { oneLine: true })}`;
  }
}

export function formatPing(p: PingResult): string {
  const who = p.verified ? `verified: answered by ${p.address} with key ${p.publicKey} (${p.keyBinding === "derived" ? "key derives to the address" : "pinned key"})` : p.protocol === 1 ? "legacy v1 node (its ping is unsigned: identity not verified)" : `answered by ${p.address} with key ${p.publicKey} (not yet bound to the address)`;
  return `pong from ${p.address} in ${p.rttMs.toFixed(1)} ms — ${who}; protocols ${p.versions.join(",")}`;
}

export function formatPeer(verb: string, p: PeerRow): string {
  return `${verb} ${p.alias ? `${p.alias} (${p.address})` : p.address} — trust ${p.trust}, key ${p.keyBinding ?? "not pinned yet"}`;
}

/** `add`'s answer: the peer, and what a key given by the user that does not derive to the address means. */
export function formatAddedPeer(p: PeerRow): string {
  const note = p.keyBinding === "user" ? "\nthis key does not derive to the address, so it is pinned on your word: messages from the address signed by any other key are refused (right for a peer behind a system Yggdrasil daemon; check the key with its owner)" : "";
  return `${formatPeer("added", p)}${note}`;
}
