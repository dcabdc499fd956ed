/**
 * The OpenClaw Control UI in a real headless Chromium against a real gateway (plugin installed from the packed
 * tarball, mock model, token auth) in namespace A, and a plain `declaw run` node "bob" in namespace B whose address
 * contains `::` (see test/helpers/control-ui-env.ts for why it is a 300::/8 address).
 *
 * Without any Labs flag: the P2P sidebar tab lists this node and bob, its link opens bob's conversation (colon-free
 * session key), `/p2p-send <text>` there sends to bob (the slash handler's own reply text is asserted, so a command
 * routed to the model would fail the test), and bob's answer sent with `declaw send` appears without a reload.
 * With Settings -> Labs -> Custom plugin UI on (gateway restarted after the config edit): the native "P2P peers" page
 * adds a new peer and starts a conversation (core `send`: the text is mirrored into the transcript, the delivery state
 * shows next to it), the replacement composer sends to bob (delivered with receipt time), and a pending peer is
 * allowed (its held message then reaches the agent). Screenshots go to .test-artifacts/.
 *
 * Needs root + `ip netns`, openclaw, /usr/bin/chromium and playwright-core; skipped with the reason otherwise.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/core/node.ts";
import { Store } from "../../src/core/store.ts";
import { parseIPv6, peerIdFromAddress } from "../../src/core/address.ts";
import { browserSkipReason, launchBrowser, screenshot, type Browser, type Page } from "../helpers/browser.ts";
import { editConfig, GATEWAY_TOKEN, sendAsStranger, setupControlUiEnv, startPeer, type ControlUiEnv } from "../helpers/control-ui-env.ts";
import { waitFor } from "../helpers/declaw.ts";
import { netnsAvailable } from "../helpers/netns.ts";
import { GATEWAY_PORT, historyTexts } from "../helpers/openclaw-gateway.ts";
import { BIN } from "../helpers/openclaw-pack.ts";

const avail = netnsAvailable();
const browserSkip = await browserSkipReason();
const skip = !avail.ok ? avail.reason : !existsSync(join(BIN, "openclaw")) ? "openclaw is not installed (npm i --no-save openclaw@2026.9.6)" : browserSkip;

const STEP_MS = 60_000;
const BASE = `http://127.0.0.1:${GATEWAY_PORT}`;
const COMPOSER = 'textarea[aria-label="Chat composer"]:not([inert] *)';

function inbox(dataDir: string, peer?: string) {
  const s = Store.open(dataDir);
  try {
    return s.listInbox({ peer, limit: 100 });
  } finally {
    s.close();
  }
}

async function sendSlash(page: Page, text: string): Promise<void> {
  const box = page.locator(COMPOSER);
  await box.click();
  await box.fill(text);
  // The first Enter would accept the command autocomplete; Escape closes it.
  await page.keyboard.press("Escape");
  await page.keyboard.press("Enter");
}

describe("Control UI in a real browser", { skip, timeout: 20 * 60_000 }, () => {
  let work: string;
  let env: ControlUiEnv;
  let browser: Browser | undefined;
  let page: Page;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), "declaw-cui-"));
    env = await setupControlUiEnv(work);
    if (env.packNotes.length) process.stderr.write(`note: package.json lacks ${env.packNotes.join(", ")}; added for this run (see test/helpers/openclaw-pack.ts)\n`);
    const { gw, bob } = env;
    const added = await gw.cliJson(["p2p", "add", bob.address, "--alias", "bob", "--json"]);
    assert.equal(added.trust, "trusted");
    const back = await bob.cli(["add", gw.address, "--alias", "gw"]);
    assert.equal(back.code, 0, back.stderr);
    await gw.startModel();
    await gw.startGateway();
    await startPeer(bob);
    // Bob writes first: the gateway's agent answers in bob's own session.
    await gw.waitFor(() => (gw.heartbeat()?.updatedAt ?? 0) > Date.now() - 30_000, STEP_MS, "the gateway's node running");
    // Sent once: if the gateway's peer server is not listening yet, bob's running node retries the queued message.
    const first = await bob.cli(["send", "gw", "hello from bob"]);
    assert.equal(first.code, 0, first.stderr);
    await gw.waitFor(() => inbox(bob.dir, gw.address).some((m) => m.content.includes("mock reply: hello from bob")), STEP_MS, "the agent's reply at bob");
  });

  after(async () => {
    await browser?.close();
    await env?.gw.stopGateway(5_000);
    env?.gw.stopModel();
    await env?.bob.node?.stop();
    await env?.net.destroy();
    if (work && !process.env.DECLAW_KEEP_TMP) rmSync(work, { recursive: true, force: true });
  });

  it("`openclaw skills list` lists the plugin's skill", async () => {
    const r = await env.gw.cliJson(["skills", "list", "--json"]);
    const skill = (r.skills as { name: string; eligible: boolean; disabled: boolean }[]).find((s) => s.name === "ipv6-p2p");
    assert.ok(skill, `ipv6-p2p not among ${(r.skills as { name: string }[]).map((s) => s.name).join(", ")}`);
    assert.equal(skill.eligible, true);
    assert.equal(skill.disabled, false);
  });

  it("the P2P tab shows this node and bob (address with ::), and opens bob's conversation", async () => {
    const { gw, bob } = env;
    assert.ok(bob.address.includes("::"), bob.address);
    browser = await launchBrowser({ ns: env.nsA });
    page = browser.page;
    await page.goto(`${BASE}/#token=${GATEWAY_TOKEN}`, { waitUntil: "domcontentloaded" });
    await page.locator('a[href="/plugin?plugin=ipv6-p2p&id=p2p"]').click();
    const tab = page.frameLocator("iframe.plugin-tab-embed__frame");
    await tab.locator("#self-address").waitFor({ timeout: STEP_MS });
    assert.equal(await tab.locator("#self-address").innerText(), gw.address);
    const row = tab.locator(`tr[data-peer-id="${bob.peerId}"]`);
    const text = await row.innerText();
    assert.match(text, /\bbob\b/);
    assert.ok(text.includes(bob.address), text);
    assert.match(text, /trusted/);
    assert.match(text, /reachable/);
    assert.match(await tab.locator("body").innerText(), /off: this plugin does not manage Yggdrasil/);
    await screenshot(page, "control-ui-1-p2p-tab");
    await row.locator("a[data-session-key]").click();
    await page.waitForURL(`**/chat/main/ipv6-p2p/direct/${bob.peerId}`, { timeout: STEP_MS });
    await page.getByText("hello from bob").first().waitFor({ timeout: STEP_MS });
    await page.getByText("mock reply: hello from bob").first().waitFor({ timeout: STEP_MS });
    await screenshot(page, "control-ui-2-bob-conversation");
  });

  it("/p2p-send <text> in bob's conversation goes to bob; the handler's reply says delivered", async () => {
    const { gw, bob } = env;
    const modelCalls = gw.modelRequests.length;
    await sendSlash(page, "/p2p-send hi bob, from the browser");
    const reply = page.getByText(`p2p: delivered to ${bob.address} — receipt: stored at`).first();
    await reply.waitFor({ timeout: STEP_MS });
    await waitFor("bob to store the message", () => inbox(bob.dir, gw.address).some((m) => m.content === "hi bob, from the browser"), STEP_MS);
    assert.equal(gw.modelRequests.length, modelCalls, "the slash command went to the model");
    await screenshot(page, "control-ui-3-p2p-send");
  });

  it("bob's reply (declaw send) appears in the open conversation without a reload", async () => {
    const { bob } = env;
    const navigations: string[] = [];
    page.on("framenavigated", (f) => {
      if (f === page.mainFrame()) navigations.push(f.url());
    });
    const sent = await bob.cli(["send", "gw", "reply from bob, live"]);
    assert.equal(sent.json?.state, "delivered", JSON.stringify(sent.json));
    await page.getByText("reply from bob, live").first().waitFor({ timeout: STEP_MS });
    assert.deepEqual(navigations, [], "the page navigated");
    await screenshot(page, "control-ui-4-live-reply");
  });

  it("/p2p-send <peer> <text> elsewhere names queued for a peer that does not answer", async () => {
    const { gw } = env;
    const nobody = Node.open({ dataDir: join(work, "nobody"), config: { yggdrasil: "off" } });
    const addr = nobody.identity.address;
    nobody.close();
    await page.goto(`${BASE}/chat/main`, { waitUntil: "domcontentloaded" });
    await page.locator(COMPOSER).waitFor({ timeout: STEP_MS });
    await sendSlash(page, `/p2p-send ${addr} are you there?`);
    await page.getByText(`p2p: queued for ${addr}`).first().waitFor({ timeout: STEP_MS });
    const h = historyTexts(await gw.gatewayCall("chat.history", { sessionKey: "main" }));
    assert.ok(h.some((m) => m.role === "assistant" && m.text.startsWith(`p2p: queued for ${addr}`)), JSON.stringify(h.slice(-3)));
    await screenshot(page, "control-ui-5-p2p-send-queued");
  });

  describe("with Settings -> Labs -> Custom plugin UI on", () => {
    let carolAddress: string;

    before(async () => {
      const { gw } = env;
      editConfig(gw, (c) => {
        c.gateway.controlUi = { ...(c.gateway.controlUi ?? {}), experimental: { ...(c.gateway.controlUi?.experimental ?? {}), customPlugins: true } };
      });
      // Restart after the config edit: hot-applied changes can route plugin slash commands to the model (control-ui.md).
      const mark = gw.gatewayLog.length;
      const restartAt = Date.now();
      await gw.stopGateway();
      // startGateway() matches "ready" anywhere in the accumulated log, so it returns at once on a restart: wait for a
      // new "ready" line and for the restarted node's heartbeat.
      await gw.startGateway();
      await gw.waitFor(() => /\[gateway\] ready$/m.test(gw.gatewayLog.slice(mark)), 120_000, "gateway ready after the restart");
      await gw.waitFor(() => (gw.heartbeat()?.updatedAt ?? 0) > restartAt, STEP_MS, "node heartbeat after the restart");
      const carol = Node.open({ dataDir: join(work, "carol"), config: { yggdrasil: "off" } });
      carolAddress = carol.identity.address;
      carol.close();
    });

    it("the native page adds a new peer and starts a conversation: mirrored text and its delivery state", async () => {
      const { gw } = env;
      await page.goto(`${BASE}/plugin?plugin=ipv6-p2p&id=peers#token=${GATEWAY_TOKEN}`, { waitUntil: "domcontentloaded" });
      await page.locator("[data-p2p-page] [data-self-address]").waitFor({ timeout: STEP_MS });
      await page.fill('input[aria-label="Peer address"]', carolAddress);
      await page.fill('input[aria-label="Peer alias"]', "carol");
      await page.click('button:has-text("Add peer")');
      await page.locator("[data-p2p-page] tr[data-peer-id]", { hasText: "carol" }).waitFor({ timeout: STEP_MS });
      await page.selectOption('select[aria-label="Peer"]', { label: `carol (${carolAddress})` });
      await page.fill('textarea[aria-label="First message"]', "hello carol, from the native page");
      await screenshot(page, "control-ui-6-native-page");
      await page.click('button:has-text("Start conversation")');
      const carolId = peerIdFromAddress(parseIPv6(carolAddress)!);
      await page.waitForURL(new RegExp(`/chat/main/ipv6-p2p/direct/${carolId}`), { timeout: STEP_MS });
      // Carol runs no node: the message is queued, with the reason, and the transcript has the mirrored text.
      await page.getByText("hello carol, from the native page").first().waitFor({ timeout: STEP_MS });
      const state = page.locator(`[data-p2p-composer="${carolId}"] li[data-state="queued"]`).first();
      await state.waitFor({ timeout: STEP_MS });
      assert.match(await state.innerText(), /queued: .*(EHOSTUNREACH|ETIMEDOUT|no connection|unreach)/i);
      const h = historyTexts(await gw.gatewayCall("chat.history", { sessionKey: `agent:main:ipv6-p2p:direct:${carolId}` }));
      assert.ok(h.some((m) => m.text.includes("hello carol, from the native page")), JSON.stringify(h));
      await screenshot(page, "control-ui-7-new-conversation-queued");
    });

    it("the replacement composer in bob's conversation sends to bob: delivered with the receipt time", async () => {
      const { gw, bob } = env;
      await page.goto(`${BASE}/chat/main/ipv6-p2p/direct/${bob.peerId}`, { waitUntil: "domcontentloaded" });
      const composer = page.locator(`[data-p2p-composer="${bob.peerId}"]`);
      await composer.waitFor({ timeout: STEP_MS });
      // "Ask agent": the built-in composer is still there, below ours.
      await page.locator(`[data-ask-agent] ${COMPOSER}`).waitFor({ timeout: STEP_MS });
      await composer.locator('textarea[aria-label="Message to the peer"]').fill("sent from the P2P composer");
      await composer.locator('button:has-text("Send to peer")').click();
      const li = composer.locator('li[data-state="delivered"]', { hasText: "sent from the P2P composer" });
      await li.waitFor({ timeout: STEP_MS });
      assert.match(await li.innerText(), /delivered — receipt: stored at /);
      await waitFor("bob to store it", () => inbox(bob.dir, gw.address).some((m) => m.content === "sent from the P2P composer"), STEP_MS);
      await page.getByText("sent from the P2P composer").first().waitFor({ timeout: STEP_MS });
      await screenshot(page, "control-ui-8-composer-delivered");
    });

    it("a pending peer is allowed from the native page and its held message reaches the agent", async () => {
      const { gw, nsB, bDev } = env;
      const dave = await sendAsStranger(nsB, bDev, join(work, "dave"), gw.address, "hi, I am dave <script>alert(1)</script>");
      assert.equal(dave.result.state, "delivered", JSON.stringify(dave.result));
      const daveId = peerIdFromAddress(parseIPv6(dave.address)!);
      await page.goto(`${BASE}/plugin?plugin=ipv6-p2p&id=peers#token=${GATEWAY_TOKEN}`, { waitUntil: "domcontentloaded" });
      const item = page.locator(`[data-p2p-page] li[data-pending="${daveId}"]`);
      await item.waitFor({ timeout: STEP_MS });
      // Hostile content is shown as text.
      assert.match(await item.innerText(), /hi, I am dave <script>alert\(1\)<\/script>/);
      assert.ok(!gw.modelRequests.some((q) => q.lastUser.includes("I am dave")), "a pending peer's message reached the agent");
      await screenshot(page, "control-ui-9-pending");
      await item.locator('button:has-text("Allow")').click();
      await page.locator(`[data-p2p-page] tr[data-peer-id="${daveId}"]`).waitFor({ timeout: STEP_MS });
      await gw.waitFor(() => gw.modelRequests.some((q) => q.lastUser.includes("I am dave")), STEP_MS, "dave's held message at the agent");
      await screenshot(page, "control-ui-10-allowed");
    });
  });
});
