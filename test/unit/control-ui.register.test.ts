/**
 * registerControlUi with a hand-made api: the tab route (auth gateway, GET/HEAD only, CSP with a nonce), the tab
 * descriptor, and the gateway methods against a real data directory (no sockets: the node is only opened).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/core/node.ts";
import { registerControlUi, reachFromOutbox, TAB_PATH, type ControlUiApi } from "../../src/hosts/openclaw/control-ui.ts";
import type { MessageRow } from "../../src/core/store.ts";

type Handler = Parameters<ControlUiApi["registerHttpRoute"]>[0]["handler"];
type Method = Parameters<ControlUiApi["registerGatewayMethod"]>[1];

function fakeApi(dataDir: string) {
  const routes: { path: string; auth: string; handler: Handler }[] = [];
  const descriptors: Record<string, unknown>[] = [];
  const methods = new Map<string, { handler: Method; scope?: string }>();
  const cfg = { plugins: { entries: { "ipv6-p2p": { config: { data_dir: dataDir, yggdrasil: "off" } } } } };
  const api: ControlUiApi = {
    config: cfg,
    registerHttpRoute: (r) => void routes.push(r),
    registerGatewayMethod: (name, handler, opts) => void methods.set(name, { handler, scope: opts?.scope }),
    session: { controls: { registerControlUiDescriptor: (d) => void descriptors.push(d) } },
  };
  return { api, routes, descriptors, methods };
}

async function get(handler: Handler, method = "GET", url = TAB_PATH): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  let status = 0;
  let headers: Record<string, string> = {};
  let body = "";
  const res = {
    writeHead(s: number, h: Record<string, string>) {
      status = s;
      headers = h;
      return res;
    },
    end(b?: string) {
      body = b ?? "";
    },
  };
  await handler({ method, url } as never, res as never);
  return { status, headers, body };
}

async function call(methods: ReturnType<typeof fakeApi>["methods"], name: string, params: Record<string, unknown>): Promise<{ ok: boolean; payload: any; error: any }> {
  const m = methods.get(name);
  assert.ok(m, `method ${name} not registered`);
  let out: { ok: boolean; payload: any; error: any } | undefined;
  await m.handler({ params, respond: (ok, payload, error) => void (out = { ok, payload, error }) });
  assert.ok(out, "no response");
  return out;
}

describe("registerControlUi", () => {
  let dir: string;
  let f: ReturnType<typeof fakeApi>;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "declaw-cui-unit-"));
    f = fakeApi(dir);
    registerControlUi(f.api, () => undefined);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("registers a gateway-auth tab route and a tab descriptor pointing at it", () => {
    assert.deepEqual(f.routes.map((r) => [r.path, r.auth]), [[TAB_PATH, "gateway"]]);
    assert.equal(f.descriptors.length, 1);
    assert.deepEqual({ ...f.descriptors[0], description: undefined, icon: undefined }, {
      id: "p2p",
      surface: "tab",
      label: "P2P",
      description: undefined,
      icon: undefined,
      group: "control",
      path: TAB_PATH,
      requiredScopes: ["operator.read"],
    });
    assert.deepEqual(
      [...f.methods].map(([n, m]) => [n, m.scope]).sort(),
      [
        ["ipv6-p2p.addPeer", "operator.write"],
        ["ipv6-p2p.allow", "operator.write"],
        ["ipv6-p2p.block", "operator.write"],
        ["ipv6-p2p.outbox", "operator.read"],
        ["ipv6-p2p.peers", "operator.read"],
      ],
    );
  });

  it("serves the page on GET with a nonce CSP, refuses POST", async () => {
    const r = await get(f.routes[0]!.handler);
    assert.equal(r.status, 200);
    assert.match(r.headers["content-type"]!, /^text\/html/);
    assert.equal(r.headers["cache-control"], "no-store");
    const nonce = /script-src 'nonce-([^']+)'/.exec(r.headers["content-security-policy"]!)?.[1];
    assert.ok(nonce);
    assert.ok(r.body.includes(`<script nonce="${nonce}">`));
    const n = Node.open({ dataDir: dir, config: { yggdrasil: "off" } });
    const self = n.address;
    n.close();
    assert.ok(r.body.includes(`id="self-address">${self}<`));
    const head = await get(f.routes[0]!.handler, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    const post = await get(f.routes[0]!.handler, "POST");
    assert.equal(post.status, 405);
  });

  it("addPeer, peers, allow, block and outbox work on the data directory; bad input is INVALID_REQUEST", async () => {
    const added = await call(f.methods, "ipv6-p2p.addPeer", { address: "200:1234:5678::1", alias: "zed" });
    assert.equal(added.ok, true, JSON.stringify(added.error));
    assert.equal(added.payload.trust, "trusted");
    assert.equal(added.payload.peerId, "0200-1234-5678-0000-0000-0000-0000-0001");
    assert.equal(added.payload.sessionKey, "agent:main:ipv6-p2p:direct:0200-1234-5678-0000-0000-0000-0000-0001");
    const listed = await call(f.methods, "ipv6-p2p.peers", {});
    assert.equal(listed.ok, true);
    assert.deepEqual(listed.payload.peers.map((p: { alias: string }) => p.alias), ["zed"]);
    const blocked = await call(f.methods, "ipv6-p2p.block", { peer: "zed" });
    assert.equal(blocked.payload.trust, "blocked");
    const allowed = await call(f.methods, "ipv6-p2p.allow", { peer: "0200-1234-5678-0000-0000-0000-0000-0001" });
    assert.equal(allowed.payload.trust, "trusted");
    const outbox = await call(f.methods, "ipv6-p2p.outbox", { peer: "zed" });
    assert.deepEqual(outbox.payload, { messages: [] });
    const bad = await call(f.methods, "ipv6-p2p.addPeer", { address: "1.2.3.4" });
    assert.equal(bad.ok, false);
    assert.equal(bad.error.code, "INVALID_REQUEST");
    const badAlias = await call(f.methods, "ipv6-p2p.addPeer", { address: "200::2", alias: "<script>" });
    assert.equal(badAlias.error.code, "INVALID_REQUEST");
    const missing = await call(f.methods, "ipv6-p2p.allow", {});
    assert.equal(missing.error.code, "INVALID_REQUEST");
  });
});

describe("reachFromOutbox", () => {
  const row = (peer: string, state: MessageRow["state"], o: Partial<MessageRow> = {}): MessageRow =>
    ({ seq: 1, id: "x", peer, direction: "out", kind: "chat", content: "", ts: 1, createdAt: 10, state, attempts: 1, nextAttemptAt: null, expiresAt: null, lastError: null, receipt: null, deliveredAt: null, protocol: 2, handledAt: null, held: false, ...o }) as MessageRow;

  it("takes the newest outbound message per peer", () => {
    const r = reachFromOutbox([
      row("a", "queued", { lastError: "EHOSTUNREACH" }),
      row("a", "delivered", { deliveredAt: 5 }),
      row("b", "delivered", { deliveredAt: 7 }),
      row("c", "failed", { lastError: "P2P_ERR_PEER_BLOCKED" }),
      row("d", "queued", { attempts: 0 }),
    ]);
    assert.deepEqual(r.get("a"), { state: "unreachable", at: 10, detail: "EHOSTUNREACH; retrying" });
    assert.deepEqual(r.get("b"), { state: "reached", at: 7 });
    assert.deepEqual(r.get("c"), { state: "refused", at: 10, detail: "P2P_ERR_PEER_BLOCKED" });
    assert.equal(r.get("d"), undefined);
  });
});
