/**
 * The "P2P" sidebar tab of the OpenClaw Control UI (no Labs flag needed): one server-rendered HTML page, shown by the
 * Control UI in `<iframe sandbox="allow-scripts">` (opaque origin: GET only, no gateway calls). Pure: `(state) =>
 * html`; control-ui.ts gathers the state from the data directory.
 *
 * Every value from the store (aliases, addresses, message previews, error texts) is escaped with `escapeHtml`. The
 * only script is the inline one below (allowed by a per-response CSP nonce): it turns "Open conversation" links into
 * `openclaw-plugin-session-open` messages to the Control UI (colon-free session keys only: the UI cannot open keys
 * with `::`), and reloads the page every few seconds while it is visible.
 */
import { escapeHtml } from "./escape.ts";

export type Reach =
  | { state: "reached"; at: number }
  | { state: "unreachable"; at: number | null; detail: string }
  | { state: "refused"; at: number | null; detail: string }
  | { state: "ping-ok"; rttMs: number; verified: boolean }
  | { state: "ping-failed"; detail: string }
  | { state: "untried" };

export interface TabPeer {
  address: string;
  /** Colon-free id used in session keys (`peerIdFromAddress`). */
  peerId: string;
  alias: string | null;
  trust: "trusted" | "pending" | "blocked";
  keyBinding: string | null;
  firstSeen: number;
  lastSeen: number | null;
  reach: Reach;
  /** The peer's conversation: `agent:<agentId>:ipv6-p2p:direct:<peerId>` (never contains `::`). */
  sessionKey: string;
  agentId: string;
  /** Newest inbound message (shown for pending peers: what the request says). */
  lastInbound?: { content: string; ts: number };
  /** Inbound messages held back because the peer is not trusted yet. */
  heldCount?: number;
}

export interface TabState {
  now: number;
  address: string;
  publicKey: string;
  node: { running: boolean; pid?: number; since?: number; host?: string; peerPort?: number };
  yggdrasil: { mode: string; effectiveMode: string; state: string; version?: string; problem?: { message: string; fix: string[] } };
  counts: { peers: number; pending: number; inbox: number; queued: number; failed: number };
  dmPolicy: string;
  peers: TabPeer[];
  /** Whether reachability was probed live (`?check=1`). */
  checked: boolean;
  /** Set when the data directory could not be read: the page shows only this. */
  error?: { code: string; message: string; hint?: string };
  /** Where the page itself is served (for the "check now" and refresh links). */
  selfPath: string;
  /** Seconds between automatic reloads while the tab is visible; 0 disables. */
  refreshSeconds: number;
  nonce: string;
}

/** Session-key-safe check: the Control UI rejects empty `:` segments and anything that looks like a URL. */
export function isOpenableSessionKey(key: string): boolean {
  return key.length > 0 && key.length <= 512 && !key.includes("::") && !key.endsWith(":") && !/\s|\/\//.test(key);
}

export function isoTime(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z") : "never";
}

/** "3 min ago" style text next to an ISO time. */
export function ago(ms: number | null | undefined, now: number): string {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

function reachText(r: Reach, now: number): { cls: string; text: string } {
  switch (r.state) {
    case "reached":
      return { cls: "ok", text: `reachable (last delivery ${ago(r.at, now)})` };
    case "ping-ok":
      return { cls: "ok", text: `answers ping (${r.rttMs.toFixed(0)} ms${r.verified ? ", identity verified" : ""})` };
    case "unreachable":
      return { cls: "warn", text: `not reached${r.at ? ` (${ago(r.at, now)})` : ""}: ${r.detail}` };
    case "refused":
      return { cls: "bad", text: `refused${r.at ? ` (${ago(r.at, now)})` : ""}: ${r.detail}` };
    case "ping-failed":
      return { cls: "bad", text: `no answer to ping: ${r.detail}` };
    case "untried":
      return { cls: "muted", text: "not tried yet" };
  }
}

function yggText(s: TabState): { cls: string; text: string; fix: string[] } {
  const y = s.yggdrasil;
  if (y.effectiveMode === "off" || y.mode === "off") {
    return { cls: "muted", text: "off: this plugin does not manage Yggdrasil (yggdrasil: \"off\"); the address must be reachable by other means", fix: [] };
  }
  const fix = y.problem?.fix ?? [];
  const running = y.state === "running";
  return {
    cls: running ? "ok" : "bad",
    text: `${y.effectiveMode} ${y.state}${y.version ? ` (yggdrasil ${y.version})` : ""}${y.problem ? ` — ${y.problem.message}` : ""}`,
    fix: running ? fix : fix.length > 0 ? fix : ["run `openclaw p2p setup` on the gateway host for step-by-step checks"],
  };
}

function peerRow(p: TabPeer, now: number): string {
  const r = reachText(p.reach, now);
  const name = p.alias ? `<strong>${escapeHtml(p.alias)}</strong><br>` : "";
  const open = isOpenableSessionKey(p.sessionKey)
    ? `<a href="#" class="open" data-session-key="${escapeHtml(p.sessionKey)}" data-agent-id="${escapeHtml(p.agentId)}">Open conversation</a>`
    : `<span class="muted">no conversation link</span>`;
  return `<tr data-peer-id="${escapeHtml(p.peerId)}">
  <td>${name}<code class="addr">${escapeHtml(p.address)}</code></td>
  <td><span class="trust trust-${escapeHtml(p.trust)}">${escapeHtml(p.trust)}</span></td>
  <td title="${escapeHtml(isoTime(p.lastSeen))}">${escapeHtml(ago(p.lastSeen, now))}</td>
  <td class="${r.cls}">${escapeHtml(r.text)}</td>
  <td>${open}</td>
</tr>`;
}

function pendingItem(p: TabPeer, now: number): string {
  const preview = p.lastInbound
    ? `<blockquote>${escapeHtml(p.lastInbound.content.length > 280 ? `${p.lastInbound.content.slice(0, 280)}…` : p.lastInbound.content)}</blockquote>`
    : "";
  return `<li data-peer-id="${escapeHtml(p.peerId)}"><code class="addr">${escapeHtml(p.address)}</code>
  — first seen ${escapeHtml(ago(p.firstSeen, now))}${p.heldCount ? `, ${p.heldCount} message(s) held` : ""}${preview}
  <div class="hint">Allow: <code>openclaw p2p allow ${escapeHtml(p.address)}</code> · Block: <code>openclaw p2p block ${escapeHtml(p.address)}</code> (or from the native P2P page with Custom plugin UI on)</div></li>`;
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#6a737d;--bg:transparent;--line:rgba(127,127,127,.25);--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#8b949e;--ok:#3fb950;--warn:#d29922;--bad:#f85149}}
body{font:14px/1.45 system-ui,sans-serif;color:var(--fg);background:var(--bg);margin:16px}
h1{font-size:18px;margin:0 0 12px}h2{font-size:15px;margin:20px 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted)}code{font:12px ui-monospace,monospace}.addr{word-break:break-all}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}.muted,.hint{color:var(--muted)}.hint{font-size:12px;margin-top:4px}
.trust{padding:1px 6px;border-radius:8px;border:1px solid var(--line)}.trust-trusted{color:var(--ok)}.trust-pending{color:var(--warn)}.trust-blocked{color:var(--bad)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:0}dt{color:var(--muted)}dd{margin:0}
blockquote{margin:6px 0;padding:4px 8px;border-left:3px solid var(--line);white-space:pre-wrap;word-break:break-word}
ul{padding-left:18px}a{color:inherit}.bar{display:flex;gap:12px;font-size:12px;margin-bottom:8px}
`;

function script(s: TabState): string {
  // Plain ES5-ish text: runs in the sandboxed frame; no data is interpolated into it except the refresh period.
  return `(function(){
  document.documentElement.setAttribute("data-p2p-script", "on");
  document.addEventListener("click", function (ev) {
    var a = ev.target && ev.target.closest ? ev.target.closest("a[data-session-key]") : null;
    if (!a) return;
    ev.preventDefault();
    var msg = { type: "openclaw-plugin-session-open", sessionKey: a.getAttribute("data-session-key") };
    var agent = a.getAttribute("data-agent-id");
    if (agent) msg.agentId = agent;
    parent.postMessage(msg, location.origin);
  });
  var every = ${Math.max(0, Math.floor(s.refreshSeconds))} * 1000;
  if (every > 0) setInterval(function () { if (document.visibilityState === "visible") location.replace(${JSON.stringify(s.selfPath)}); }, every);
})();`;
}

export function renderTabPage(s: TabState): string {
  const head = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>P2P</title><style>${STYLE}</style></head><body>`;
  const tail = `<script nonce="${escapeHtml(s.nonce)}">${script(s)}</script></body></html>`;
  if (s.error) {
    return `${head}<h1>IPv6 P2P</h1><p class="bad">The P2P data directory could not be read: ${escapeHtml(s.error.message)} (${escapeHtml(s.error.code)})</p>${s.error.hint ? `<p class="hint">Next step: ${escapeHtml(s.error.hint)}</p>` : ""}${tail}`;
  }
  const y = yggText(s);
  const nodeLine = s.node.running
    ? `<span class="ok">running</span> (pid ${escapeHtml(s.node.pid ?? "?")}, ${escapeHtml(s.node.host ?? "?")}, peer port ${escapeHtml(s.node.peerPort ?? "?")}, since ${escapeHtml(ago(s.node.since, s.now))})`
    : `<span class="bad">not running</span> — messages are queued until the node runs. The plugin service starts it with the gateway; check the gateway log or run <code>openclaw p2p status</code>.`;
  const fixes = y.fix.length ? `<ul class="hint">${y.fix.map((f) => `<li>Fix: ${escapeHtml(f)}</li>`).join("")}</ul>` : "";
  const visible = s.peers.filter((p) => p.trust !== "pending");
  const pending = s.peers.filter((p) => p.trust === "pending");
  const peersTable = visible.length
    ? `<table><thead><tr><th>Peer</th><th>Trust</th><th>Last seen</th><th>Reachability</th><th></th></tr></thead><tbody>${visible.map((p) => peerRow(p, s.now)).join("")}</tbody></table>`
    : `<p class="muted">No peers yet. Add one with <code>openclaw p2p add &lt;address&gt; --alias NAME</code>, or ask the agent to add the address someone gave you.</p>`;
  const pendingList = pending.length
    ? `<ul>${pending.map((p) => pendingItem(p, s.now)).join("")}</ul>`
    : `<p class="muted">No pending requests.</p>`;
  const check = s.checked
    ? `<span class="muted">reachability checked live just now</span>`
    : `<a href="${escapeHtml(`${s.selfPath}?check=1`)}">Check reachability now (ping)</a>`;
  return `${head}
<h1>IPv6 P2P</h1>
<div class="bar"><a href="${escapeHtml(s.selfPath)}">Refresh</a>${check}<span class="muted">updated ${escapeHtml(isoTime(s.now))}</span></div>
<dl>
  <dt>This node</dt><dd><code class="addr" id="self-address">${escapeHtml(s.address)}</code></dd>
  <dt>Public key</dt><dd><code>${escapeHtml(s.publicKey)}</code></dd>
  <dt>Node</dt><dd>${nodeLine}</dd>
  <dt>Yggdrasil</dt><dd class="${y.cls}">${escapeHtml(y.text)}${fixes}</dd>
  <dt>Messages</dt><dd>inbox ${escapeHtml(s.counts.inbox)}, queued ${escapeHtml(s.counts.queued)}, failed ${escapeHtml(s.counts.failed)}</dd>
  <dt>Who reaches the agent</dt><dd>dm_policy ${escapeHtml(s.dmPolicy)}</dd>
</dl>
<h2>Peers (${escapeHtml(visible.length)})</h2>
${peersTable}
<h2>Pending requests (${escapeHtml(pending.length)})</h2>
${pendingList}
<p class="hint">In a peer's conversation, type <code>/p2p-send &lt;text&gt;</code> to send to that peer; anywhere, <code>/p2p-send &lt;peer&gt; &lt;text&gt;</code>. Text typed without the command goes to your agent only.</p>
${tail}`;
}
