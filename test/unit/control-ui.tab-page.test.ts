/**
 * The P2P tab page (ui/tab-page.ts) and its escaping (ui/escape.ts): hostile aliases, message text, addresses and
 * error texts must come out as text, never as markup, in element content and attribute values alike.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { escapeHtml } from "../../src/hosts/openclaw/ui/escape.ts";
import { isOpenableSessionKey, renderTabPage, type TabPeer, type TabState } from "../../src/hosts/openclaw/ui/tab-page.ts";

const HOSTILE = [
  `<script>alert(1)</script>`,
  `"><img src=x onerror=alert(1)>`,
  `' onmouseover='alert(1)`,
  "`${alert(1)}`",
  `</style><script>alert(1)</script>`,
  `</script><script>alert(1)</script>`,
  `&lt;already escaped&gt;`,
  `a\u0000b\u0008c\u001bd\u0085e`,
  `lone \ud800 surrogate`,
  `<!-- comment --><![CDATA[x]]>`,
];

describe("escapeHtml", () => {
  it("escapes the five HTML specials and the backtick", () => {
    assert.equal(escapeHtml(`<a href="x" title='y'>&\`</a>`), "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&#96;&lt;/a&gt;");
  });

  it("leaves no markup-significant character in hostile strings", () => {
    for (const h of HOSTILE) {
      const out = escapeHtml(h);
      assert.doesNotMatch(out, /[<>"'`]/, h);
      assert.doesNotMatch(out, /&(?!(amp|lt|gt|quot|#39|#96);)/, h);
    }
  });

  it("replaces control characters and lone surrogates, keeps tabs, newlines and other text", () => {
    assert.equal(escapeHtml("a\u0000b\u001bc\u0085d"), "a\ufffdb\ufffdc\ufffdd");
    assert.equal(escapeHtml("x\ud800y"), "x\ufffdy");
    assert.equal(escapeHtml("tab\tnew\nline ✓ 日本 😀"), "tab\tnew\nline ✓ 日本 😀");
  });

  it("turns null and undefined into the empty string, numbers into text", () => {
    assert.equal(escapeHtml(undefined), "");
    assert.equal(escapeHtml(null), "");
    assert.equal(escapeHtml(42), "42");
  });
});

function peer(over: Partial<TabPeer> = {}): TabPeer {
  return {
    address: "300:836b:5b8a:c4eb::1",
    peerId: "0300-836b-5b8a-c4eb-0000-0000-0000-0001",
    alias: "bob",
    trust: "trusted",
    keyBinding: "derived",
    firstSeen: 1_700_000_000_000,
    lastSeen: 1_700_000_060_000,
    reach: { state: "reached", at: 1_700_000_060_000 },
    sessionKey: "agent:main:ipv6-p2p:direct:0300-836b-5b8a-c4eb-0000-0000-0000-0001",
    agentId: "main",
    ...over,
  };
}

function state(over: Partial<TabState> = {}): TabState {
  return {
    now: 1_700_000_120_000,
    address: "201:8d29:410e:f919:2742:98f4:dc78:f848",
    publicKey: "XLWvvEG5ti9Zwsjhwe3lmu/3oHjK5eXVvWbTgHuHW+s=",
    node: { running: true, pid: 42, since: 1_700_000_000_000, host: "openclaw", peerPort: 8099 },
    yggdrasil: { mode: "auto", effectiveMode: "spawn", state: "running", version: "0.5.12" },
    counts: { peers: 1, pending: 0, inbox: 3, queued: 0, failed: 0 },
    dmPolicy: "allowlist",
    peers: [peer()],
    checked: false,
    selfPath: "/plugins/ipv6-p2p/tab",
    refreshSeconds: 10,
    nonce: "bm9uY2U=",
    ...over,
  };
}

/** Every <script> element of the page: only ours (with the nonce) may exist. */
function scripts(html: string): string[] {
  return [...html.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0]);
}

const ALLOWED_TAGS = new Set("html head meta title style body h1 h2 div a span dl dt dd code table thead tbody tr th td strong br ul li blockquote p script".split(" "));

/** Names of all elements in the markup (a hostile string that escaped would add img, or break out of an attribute). */
function tagNames(html: string): string[] {
  return [...html.replace(/^<!doctype html>/i, "").matchAll(/<\/?([A-Za-z][A-Za-z0-9]*)/g)].map((m) => m[1]!.toLowerCase());
}

describe("renderTabPage", () => {
  it("shows the node, Yggdrasil state, the peer with alias, trust, last seen, reachability and a conversation link", () => {
    const html = renderTabPage(state());
    assert.match(html, /<code class="addr" id="self-address">201:8d29:410e:f919:2742:98f4:dc78:f848<\/code>/);
    assert.match(html, /spawn running \(yggdrasil 0\.5\.12\)/);
    assert.match(html, /<strong>bob<\/strong>/);
    assert.match(html, /300:836b:5b8a:c4eb::1/);
    assert.match(html, /trust-trusted">trusted/);
    assert.match(html, /1 min ago/);
    assert.match(html, /reachable \(last delivery 1 min ago\)/);
    assert.match(html, /data-session-key="agent:main:ipv6-p2p:direct:0300-836b-5b8a-c4eb-0000-0000-0000-0001"/);
    assert.match(html, /openclaw-plugin-session-open/);
    assert.deepEqual(scripts(html), ['<script nonce="bm9uY2U=">']);
  });

  it("says how to fix Yggdrasil when it does not run, and that the node is down", () => {
    const html = renderTabPage(
      state({
        node: { running: false },
        yggdrasil: { mode: "auto", effectiveMode: "none", state: "stopped", problem: { message: "yggdrasil is not installed", fix: ["apt-get install yggdrasil", "or set yggdrasil_peers"] } },
      }),
    );
    assert.match(html, /not running<\/span> — messages are queued/);
    assert.match(html, /yggdrasil is not installed/);
    assert.match(html, /<li>Fix: apt-get install yggdrasil<\/li><li>Fix: or set yggdrasil_peers<\/li>/);
  });

  it("lists pending requests with what they said and how to allow or block", () => {
    const html = renderTabPage(state({ peers: [peer(), peer({ address: "200:1::2", peerId: "0200-0001-0000-0000-0000-0000-0000-0002", alias: null, trust: "pending", lastInbound: { content: "may I talk to your agent?", ts: 1 }, heldCount: 2 })] }));
    assert.match(html, /Pending requests \(1\)/);
    assert.match(html, /may I talk to your agent\?/);
    assert.match(html, /2 message\(s\) held/);
    assert.match(html, /openclaw p2p allow 200:1::2/);
    assert.match(html, /Peers \(1\)/);
  });

  it("escapes hostile aliases, addresses, message text and errors everywhere", () => {
    for (const h of HOSTILE) {
      const html = renderTabPage(
        state({
          address: h,
          publicKey: h,
          dmPolicy: h,
          yggdrasil: { mode: "auto", effectiveMode: h, state: h, version: h, problem: { message: h, fix: [h] } },
          node: { running: true, pid: h as never, host: h, peerPort: h as never, since: 1 },
          peers: [
            peer({ alias: h, address: h, peerId: h, sessionKey: h, agentId: h, reach: { state: "refused", at: 1, detail: h } }),
            peer({ alias: h, address: h, peerId: h, trust: "pending", lastInbound: { content: h, ts: 1 } }),
          ],
        }),
      );
      assert.deepEqual(scripts(html), ['<script nonce="bm9uY2U=">'], h);
      assert.deepEqual(tagNames(html).filter((t) => !ALLOWED_TAGS.has(t)), [], h);
      // Quoted attribute values hold escaped text only; with them emptied, no event handler attribute may remain.
      assert.doesNotMatch(html.replace(/="[^"]*"/g, '=""'), /<[^>]*\son\w+\s*=/i, h);
      assert.doesNotMatch(html, /<!--|<!\[CDATA/, h);
      assert.doesNotMatch(html, /\u0000|\ud800/, h);
    }
    const err = renderTabPage(state({ error: { code: "P2P_ERR_DB_CORRUPT", message: "<b>bad</b>", hint: `"><script>x</script>` } }));
    assert.match(err, /&lt;b&gt;bad&lt;\/b&gt;/);
    assert.deepEqual(scripts(err), ['<script nonce="bm9uY2U=">']);
  });

  it("gives no link for session keys the Control UI cannot open", () => {
    assert.equal(isOpenableSessionKey("agent:main:ipv6-p2p:direct:0200-0000-0000-0000-0000-0000-0000-0001"), true);
    assert.equal(isOpenableSessionKey("agent:main:ipv6-p2p:direct:200::1"), false);
    assert.equal(isOpenableSessionKey("agent:main:ipv6-p2p:direct:"), false);
    assert.equal(isOpenableSessionKey("https://evil.example/x"), false);
    const html = renderTabPage(state({ peers: [peer({ sessionKey: "agent:main:ipv6-p2p:direct:200::1" })] }));
    assert.doesNotMatch(html, /data-session-key="/);
    assert.match(html, /no conversation link/);
  });
});
