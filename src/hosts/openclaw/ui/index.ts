/// <reference lib="dom" />
/**
 * Native Control UI module of the ipv6-p2p plugin (Settings -> Labs -> Custom plugin UI must be on). Plain browser
 * ESM: no imports but ./escape.ts (type imports are erased), no framework, so tsc's output is served as is
 * (openclaw.plugin.json: "controlUi": {"entry": "dist/hosts/openclaw/ui/index.js"}).
 *
 * - Page "P2P peers": pick a peer or add one by address and alias, start a conversation (core `send` RPC, which runs
 *   the channel's outbound and mirrors the text into the peer's transcript), allow or block pending peers.
 * - Composer replacement: in an ipv6-p2p peer session, a box that sends to the peer (again through `send`, with the
 *   session key) and shows the delivery state of recent messages (queued, delivered with receipt time, failed with
 *   the reason); the built-in composer stays below it ("ask agent": text there goes to the agent only). Every other
 *   session gets the built-in composer unchanged (`mountDefault`).
 *
 * Every value shown comes from the gateway and may come from a remote peer: rendered through escapeHtml or
 * textContent only.
 */
import type { ControlUiHost, ControlUiPlugin, ControlUiSurfaceProps, ControlUiViewContext } from "openclaw/plugin-sdk/control-ui";
// The gateway methods' reply shapes (type-only: erased, so nothing server-side reaches the browser).
import type { OutboxView, PeerView } from "../control-ui.ts";
import { escapeHtml } from "./escape.ts";

const PLUGIN_ID = "ipv6-p2p";
const CHANNEL_ID = "ipv6-p2p";
const PAGE_ID = "peers";
const COMPOSER_ID = "p2p-composer";
const POLL_MS = 3_000;
const PEER_ID_RE = /^[0-9a-f]{4}(-[0-9a-f]{4}){7}$/;


/** The peer id of an ipv6-p2p direct session key (`agent:<a>:ipv6-p2p:direct:<peerId>`), else undefined. */
export function peerIdOfSession(sessionKey: string | undefined): string | undefined {
  if (!sessionKey) return undefined;
  const parts = sessionKey.toLowerCase().split(":");
  const ch = parts.indexOf(CHANNEL_ID);
  if (ch < 0 || parts[ch + 1] !== "direct") return undefined;
  const id = parts[ch + 2];
  return id && PEER_ID_RE.test(id) ? id : undefined;
}

function time(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString() : "never";
}

/** One line per delivery state, as the CLI says it. */
export function deliveryText(m: OutboxView): string {
  switch (m.state) {
    case "delivered":
      return `delivered — receipt: stored at ${time(m.deliveredAt)}`;
    case "sent":
      return `sent (legacy v1 peer: no receipt)`;
    case "queued":
      return `queued${m.lastError ? `: ${m.lastError}` : ""}${m.nextAttemptAt ? ` — next attempt ${time(m.nextAttemptAt)}` : ""}`;
    case "failed":
      return `failed: ${m.lastError ?? "refused by the peer"}`;
    default:
      return m.state;
  }
}

function reachText(r: PeerView["reach"]): string {
  switch (r.state) {
    case "reached":
      return `reachable (last delivery ${time(r.at)})`;
    case "unreachable":
      return `not reached: ${r.detail ?? ""}`;
    case "refused":
      return `refused: ${r.detail ?? ""}`;
    default:
      return "not tried yet";
  }
}

function errText(err: unknown): string {
  return (err as { message?: string })?.message ?? String(err);
}

function idempotencyKey(): string {
  return `p2p-ui-${crypto.randomUUID()}`;
}

const STYLE = `
.p2p-ui{font:inherit;color:inherit;display:flex;flex-direction:column;gap:16px;padding:16px;max-width:1100px}
.p2p-ui h2{font-size:16px;margin:0}.p2p-ui table{border-collapse:collapse;width:100%}
.p2p-ui th,.p2p-ui td{text-align:left;padding:6px 8px;border-bottom:1px solid rgba(127,127,127,.25);vertical-align:top}
.p2p-ui code{font-size:12px;word-break:break-all}.p2p-ui .muted{opacity:.7}.p2p-ui .err{color:#cf222e}
.p2p-ui form,.p2p-composer form{display:flex;gap:8px;flex-wrap:wrap;align-items:flex-start}
.p2p-ui input,.p2p-ui select,.p2p-ui textarea,.p2p-composer textarea{font:inherit;padding:6px 8px;border:1px solid rgba(127,127,127,.4);border-radius:6px;background:transparent;color:inherit}
.p2p-ui button,.p2p-composer button{font:inherit;padding:6px 12px;border-radius:6px;border:1px solid rgba(127,127,127,.4);background:rgba(127,127,127,.12);color:inherit;cursor:pointer}
.p2p-composer{display:flex;flex-direction:column;gap:6px;padding:8px 0;width:100%;max-width:760px;margin:0 auto;box-sizing:border-box}.p2p-composer textarea{flex:1;min-height:2.4em}
.p2p-composer ol{list-style:none;margin:0;padding:0;font-size:12px;max-height:9em;overflow:auto}
.p2p-composer li{padding:2px 0}.p2p-composer .state-delivered{color:#1a7f37}.p2p-composer .state-queued{color:#9a6700}.p2p-composer .state-failed{color:#cf222e}
.p2p-composer .label{font-size:12px;opacity:.75}
`;

function style(): HTMLStyleElement {
  const s = document.createElement("style");
  s.textContent = STYLE;
  return s;
}

// ---- page ----

function mountPage(container: HTMLElement, ctx: ControlUiViewContext): { dispose: () => void } {
  const host = ctx.host;
  const root = document.createElement("div");
  root.className = "p2p-ui";
  root.setAttribute("data-p2p-page", "");
  container.append(style(), root);
  let peers: PeerView[] = [];
  let self = { address: "", peerId: "", running: false };
  let status = "";
  let statusIsError = false;
  let timer: ReturnType<typeof setInterval> | undefined;

  const say = (text: string, isError = false) => {
    status = text;
    statusIsError = isError;
    const el = root.querySelector("[data-status]");
    if (el) {
      el.textContent = text;
      el.className = isError ? "err" : "muted";
    }
  };

  const render = () => {
    const chosen = (root.querySelector("select[name=peer]") as HTMLSelectElement | null)?.value;
    const draft = (root.querySelector("textarea[name=message]") as HTMLTextAreaElement | null)?.value ?? "";
    const visible = peers.filter((p) => p.trust !== "pending");
    const pending = peers.filter((p) => p.trust === "pending");
    const options = peers
      .filter((p) => p.trust === "trusted")
      .map((p) => `<option value="${escapeHtml(p.peerId)}"${p.peerId === chosen ? " selected" : ""}>${escapeHtml(p.alias ? `${p.alias} (${p.address})` : p.address)}</option>`)
      .join("");
    root.innerHTML = `
<h2>IPv6 P2P peers</h2>
<div class="muted">This node: <code data-self-address>${escapeHtml(self.address)}</code> — node ${self.running ? "running" : "not running (messages stay queued)"}</div>
<section><h2>Start a conversation</h2>
<form data-start><select name="peer" aria-label="Peer">${options || `<option value="">no trusted peers yet</option>`}</select>
<textarea name="message" rows="2" cols="50" placeholder="Message to the peer" aria-label="First message">${escapeHtml(draft)}</textarea>
<button type="submit">Start conversation</button></form></section>
<section><h2>Add a peer</h2>
<form data-add><input name="address" size="42" placeholder="Yggdrasil address, e.g. 200:1234::1" aria-label="Peer address" required>
<input name="alias" size="16" placeholder="alias (optional)" aria-label="Peer alias"><button type="submit">Add peer</button></form></section>
<div data-status class="${statusIsError ? "err" : "muted"}">${escapeHtml(status)}</div>
<section><h2>Peers (${visible.length})</h2>
<table><thead><tr><th>Peer</th><th>Trust</th><th>Last seen</th><th>Reachability</th><th></th></tr></thead><tbody>
${visible
  .map(
    (p) => `<tr data-peer-id="${escapeHtml(p.peerId)}"><td>${p.alias ? `<strong>${escapeHtml(p.alias)}</strong><br>` : ""}<code>${escapeHtml(p.address)}</code></td>
<td>${escapeHtml(p.trust)}</td><td>${escapeHtml(time(p.lastSeen))}</td><td>${escapeHtml(reachText(p.reach))}</td>
<td><button type="button" data-open="${escapeHtml(p.peerId)}">Open conversation</button>
${p.trust === "blocked" ? `<button type="button" data-allow="${escapeHtml(p.peerId)}">Unblock</button>` : `<button type="button" data-block="${escapeHtml(p.peerId)}">Block</button>`}</td></tr>`,
  )
  .join("")}
</tbody></table></section>
<section><h2>Pending requests (${pending.length})</h2>
${pending.length === 0 ? `<p class="muted">No pending requests.</p>` : ""}
<ul>${pending
      .map(
        (p) => `<li data-pending="${escapeHtml(p.peerId)}"><code>${escapeHtml(p.address)}</code> — first seen ${escapeHtml(time(p.firstSeen))}${p.heldCount ? `, ${p.heldCount} message(s) held` : ""}
${p.lastInbound ? `<blockquote>${escapeHtml(p.lastInbound.content.slice(0, 280))}</blockquote>` : ""}
<button type="button" data-allow="${escapeHtml(p.peerId)}">Allow</button> <button type="button" data-block="${escapeHtml(p.peerId)}">Block</button></li>`,
      )
      .join("")}</ul></section>`;
  };

  const load = async () => {
    try {
      const r = await host.request<{ self: typeof self; peers: PeerView[] }>(`${PLUGIN_ID}.peers`, {});
      if (ctx.signal.aborted) return;
      // Do not re-render under the user's cursor.
      const active = document.activeElement;
      peers = r.peers;
      self = r.self;
      if (!active || !root.contains(active) || active.tagName === "BUTTON") render();
    } catch (err) {
      say(`could not load peers: ${errText(err)}`, true);
    }
  };

  const byId = (id: string | null) => peers.find((p) => p.peerId === id);

  const open = (p: PeerView) => host.sessions.open({ sessionKey: p.sessionKey, agentId: p.agentId });

  root.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = ev.target as HTMLFormElement;
    const data = new FormData(form);
    if (form.hasAttribute("data-add")) {
      const address = String(data.get("address") ?? "").trim();
      const alias = String(data.get("alias") ?? "").trim();
      void (async () => {
        try {
          const p = await host.request<PeerView>(`${PLUGIN_ID}.addPeer`, { address, ...(alias ? { alias } : {}) });
          say(`added ${p.alias ?? p.address} (trusted)`);
          form.reset();
          await load();
          const sel = root.querySelector("select[name=peer]") as HTMLSelectElement | null;
          if (sel) sel.value = p.peerId;
        } catch (err) {
          say(`could not add the peer: ${errText(err)}`, true);
        }
      })();
    } else if (form.hasAttribute("data-start")) {
      const p = byId(String(data.get("peer") ?? ""));
      const message = String(data.get("message") ?? "");
      if (!p) return say("choose a peer first (add one by address above)", true);
      if (message.trim() === "") return say("write a first message", true);
      void (async () => {
        say(`sending to ${p.alias ?? p.address}…`);
        try {
          // No sessionKey: the channel's session route creates (or finds) the peer's conversation and mirrors the text.
          const r = await host.request<{ messageId?: string }>("send", { channel: CHANNEL_ID, to: p.peerId, message, agentId: p.agentId, idempotencyKey: idempotencyKey() });
          const id = r?.messageId;
          let line = "sent";
          if (id) {
            const o = await host.request<{ messages: OutboxView[] }>(`${PLUGIN_ID}.outbox`, { ids: [id] });
            if (o.messages[0]) line = deliveryText(o.messages[0]);
          }
          say(`${p.alias ?? p.address}: ${line}`);
          (root.querySelector("textarea[name=message]") as HTMLTextAreaElement).value = "";
          open(p);
        } catch (err) {
          say(`not sent: ${errText(err)}`, true);
        }
      })();
    }
  });

  root.addEventListener("click", (ev) => {
    const b = (ev.target as HTMLElement).closest("button[data-open],button[data-allow],button[data-block]");
    if (!b) return;
    const openId = b.getAttribute("data-open");
    if (openId) {
      const p = byId(openId);
      if (p) open(p);
      return;
    }
    const allow = b.getAttribute("data-allow");
    const id = allow ?? b.getAttribute("data-block");
    const p = byId(id);
    if (!p) return;
    void (async () => {
      try {
        const r = await host.request<PeerView>(allow ? `${PLUGIN_ID}.allow` : `${PLUGIN_ID}.block`, { peer: p.peerId });
        say(`${r.alias ?? r.address} is now ${r.trust}${allow ? ": its held messages go to the agent" : ""}`);
        await load();
      } catch (err) {
        say(`failed: ${errText(err)}`, true);
      }
    })();
  });

  render();
  void load();
  timer = setInterval(() => {
    if (ctx.presented !== false) void load();
  }, POLL_MS * 2);
  return {
    dispose() {
      if (timer) clearInterval(timer);
      root.remove();
    },
  };
}

// ---- composer replacement ----

type ComposerProps = ControlUiSurfaceProps["composer"];

function mountComposer(container: HTMLElement, first: ControlUiViewContext<ComposerProps>) {
  let ctx = first;
  let teardown: (() => void) | undefined;
  let mode: string | undefined; // peer id, or "" for a non-p2p session

  const build = () => {
    teardown?.();
    container.replaceChildren();
    const peerId = peerIdOfSession(ctx.props.sessionKey);
    mode = peerId ?? "";
    if (!peerId) {
      teardown = ctx.mountDefault(container);
      return;
    }
    teardown = mountPeerComposer(container, () => ctx, peerId);
  };

  build();
  return {
    update(next: ControlUiViewContext<ComposerProps>) {
      ctx = next;
      if ((peerIdOfSession(next.props.sessionKey) ?? "") !== mode) build();
    },
    dispose() {
      teardown?.();
      teardown = undefined;
    },
  };
}

function mountPeerComposer(container: HTMLElement, ctx: () => ControlUiViewContext<ComposerProps>, peerId: string): () => void {
  const host: ControlUiHost = ctx().host;
  const box = document.createElement("div");
  box.className = "p2p-composer";
  box.setAttribute("data-p2p-composer", peerId);
  box.innerHTML = `
<div class="label">Send to this peer over IPv6 P2P (the text is signed and delivered to the other agent)</div>
<ol data-outbox aria-label="Messages sent to this peer"></ol>
<form data-send><textarea name="text" rows="2" placeholder="Message to the peer" aria-label="Message to the peer"></textarea>
<button type="submit">Send to peer</button></form>
<div data-send-status class="label"></div>
<div class="label">Ask agent (stays here; not sent to the peer):</div>`;
  const agentBox = document.createElement("div");
  agentBox.setAttribute("data-ask-agent", "");
  container.append(style(), box, agentBox);
  const disposeDefault = ctx().mountDefault(agentBox);
  let stopped = false;

  const list = box.querySelector("[data-outbox]") as HTMLOListElement;
  const status = box.querySelector("[data-send-status]") as HTMLDivElement;

  const refresh = async () => {
    try {
      const r = await host.request<{ messages: OutboxView[] }>(`${PLUGIN_ID}.outbox`, { peer: peerId, limit: 5 });
      if (stopped) return;
      list.replaceChildren(
        ...r.messages
          .slice()
          .reverse()
          .map((m) => {
            const li = document.createElement("li");
            li.setAttribute("data-message-id", m.id);
            li.setAttribute("data-state", m.state);
            const text = document.createElement("span");
            text.textContent = `${m.content.length > 80 ? `${m.content.slice(0, 80)}…` : m.content} `;
            const st = document.createElement("span");
            st.className = `state-${m.state}`;
            st.textContent = `[${deliveryText(m)}]`;
            li.append(text, st);
            return li;
          }),
      );
    } catch (err) {
      if (!stopped) status.textContent = `delivery state unavailable: ${errText(err)}`;
    }
  };

  box.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const ta = box.querySelector("textarea[name=text]") as HTMLTextAreaElement;
    const message = ta.value;
    if (message.trim() === "") return;
    const { sessionKey, agentId } = ctx().props;
    status.textContent = "sending…";
    void (async () => {
      try {
        await host.request("send", { channel: CHANNEL_ID, to: peerId, message, sessionKey, agentId, idempotencyKey: idempotencyKey() });
        ta.value = "";
        status.textContent = "";
      } catch (err) {
        // Keep the draft: nothing was sent.
        status.textContent = `not sent: ${errText(err)}`;
      }
      await refresh();
    })();
  });

  void refresh();
  const timer = setInterval(() => {
    if (ctx().presented !== false) void refresh();
  }, POLL_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
    disposeDefault();
    box.remove();
    agentBox.remove();
  };
}

const plugin: ControlUiPlugin = {
  id: PLUGIN_ID,
  activate(host) {
    const off = [
      host.ui.registerPage({ id: PAGE_ID, label: "P2P peers", mount: mountPage }),
      host.ui.registerNavigation({ id: PAGE_ID, label: "P2P peers", page: { id: PAGE_ID }, icon: "network", order: 50 }),
      host.ui.registerReplacement({ id: COMPOSER_ID, label: "IPv6 P2P composer", surface: "composer", mount: mountComposer }),
    ];
    host.ui.selectReplacement("composer", COMPOSER_ID);
    return () => off.forEach((d) => d());
  },
};

export default plugin;
