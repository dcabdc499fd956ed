/**
 * What `declaw` commands tell a user who typed something slightly wrong: a mistyped data directory, an id that is
 * not queued, a peer named by alias in `add`, our own address, control characters in what they typed. Runs the real
 * CLI from sources on temp data dirs (no root, no network, no Yggdrasil).
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/core/node.ts";
import { newMessageId } from "../../src/core/wire.ts";

const CLI = new URL("../../src/hosts/cli/main.ts", import.meta.url).pathname;

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "declaw-cli-commands-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function declaw(args: string[]) {
  const env: Record<string, string | undefined> = { ...process.env, DECLAW_DEBUG: undefined, DECLAW_DATA_DIR: undefined };
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A data dir with one outbound message to 200::9, left queued, delivered or failed. */
function withMessage(dir: string, state: "queued" | "delivered" | "failed"): string {
  const node = Node.open({ dataDir: dir });
  try {
    node.addPeer("200::9");
    const now = Date.now();
    const id = newMessageId(now);
    node.store.enqueueOutbound({ id, peer: "200::9", kind: "chat", content: "hi", ts: now, protocol: 2, expiresAt: now + 3_600_000 }, now);
    if (state === "delivered") node.store.markDelivered(id, "{}", now);
    if (state === "failed") node.store.markFailed(id, "P2P_ERR_PEER_BLOCKED: peer said: sender is blocked");
    return id;
  } finally {
    node.close();
  }
}

test("a command that creates a new identity says so on stderr, with the data dir and the address; later runs do not", (t) => {
  const dir = join(tmp(t), "new");
  const first = declaw(["--data-dir", dir, "--json", "status"]);
  assert.equal(first.code, 0, first.stderr);
  const { address } = JSON.parse(first.stdout) as { address: string };
  assert.equal(first.stderr, `declaw: created a new identity in ${dir} (address ${address})\n`);
  const again = declaw(["--data-dir", dir, "status"]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stderr, "", "the identity exists now: nothing to report");
});

test("config.json keys that only the OpenClaw plugin reads are named on stderr as having no effect there; node keys are not", (t) => {
  const dir = tmp(t);
  declaw(["--data-dir", dir, "status"]); // the identity, so that only the config speaks below
  writeFileSync(join(dir, "config.json"), JSON.stringify({ dm_policy: "open", loop_budget: 5, peer_tools: ["*"], peer_port: 8100 }));
  const r = declaw(["--data-dir", dir, "--json", "status"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).peerPort, 8100, "the node key applies");
  assert.match(r.stderr, /^declaw: .*config\.json: dm_policy, loop_budget, peer_tools have no effect there \(OpenClaw plugin settings: set them with `openclaw config set/);
  writeFileSync(join(dir, "config.json"), JSON.stringify({ peer_port: 8100 }));
  assert.equal(declaw(["--data-dir", dir, "status"]).stderr, "");
});

test("inbox, outbox, peers, cancel and remove refuse a data dir that does not exist, create nothing, and say what to check", (t) => {
  const dir = join(tmp(t), "typo");
  for (const args of [["inbox"], ["outbox"], ["peers"], ["cancel", "x"], ["remove", "alice"]]) {
    const r = declaw(["--data-dir", dir, ...args]);
    assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, `declaw: data directory ${dir} does not exist\nnext step: check --data-dir (or DECLAW_DATA_DIR) for a typo; to start a new node there, \`declaw status\` creates its identity\n`);
  }
  const json = declaw(["--data-dir", dir, "--json", "inbox"]);
  assert.equal(JSON.parse(json.stdout).error, "P2P_ERR_DATA_DIR");
  assert.ok(!existsSync(dir), "no identity, no database, no directory");
});

test("cancel of a message that is no longer queued, or of an id that names none, is a failed operation: exit 1, not 2", (t) => {
  for (const state of ["delivered", "failed"] as const) {
    const dir = tmp(t);
    const id = withMessage(dir, state);
    const r = declaw(["--data-dir", dir, "cancel", id]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^declaw: message ${id} is ${state}, not queued`));
    assert.match(r.stderr, /\nnext step: `outbox` lists sent messages/);
  }
  const dir = tmp(t);
  const queued = withMessage(dir, "queued");
  assert.equal(declaw(["--data-dir", dir, "cancel", queued]).code, 0, "a queued message is cancelled");
  const unknown = declaw(["--data-dir", dir, "--json", "cancel", "no-such-id"]);
  assert.equal(unknown.code, 1);
  assert.equal(JSON.parse(unknown.stdout).error, "P2P_ERR_BAD_ARGUMENT", "the code stays what the core says");
});

test("add updates a known peer named by its alias (or p2p:alias), as the re-add with --key after a key mismatch needs", (t) => {
  const dir = tmp(t);
  assert.equal(declaw(["--data-dir", dir, "add", "200::1", "--alias", "bob"]).code, 0);
  const key = Buffer.alloc(32, 7).toString("base64");
  const r = declaw(["--data-dir", dir, "--json", "add", "bob", "--key", key]);
  assert.equal(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout);
  assert.deepEqual([p.address, p.alias, p.publicKey, p.keyBinding], ["200::1", "bob", key, "user"]);
  const port = declaw(["--data-dir", dir, "--json", "add", "p2p:bob", "--port", "9000"]);
  assert.equal(port.code, 0, port.stderr);
  assert.equal(JSON.parse(port.stdout).port, 9000);
  const peers = JSON.parse(declaw(["--data-dir", dir, "--json", "peers"]).stdout);
  assert.equal(peers.length, 1, "still one peer");
  const unknown = declaw(["--data-dir", dir, "add", "carol"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^declaw: "carol" is neither an address nor a known peer's alias\nnext step: add a new peer by its Yggdrasil address/);
});

test("add refuses this node's own address, as send does", (t) => {
  const dir = tmp(t);
  const { address } = JSON.parse(declaw(["--data-dir", dir, "--json", "status"]).stdout) as { address: string };
  const r = declaw(["--data-dir", dir, "add", address, "--alias", "me"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`^declaw: ${address} is this node's own address, not a peer\nnext step: `));
  assert.deepEqual(JSON.parse(declaw(["--data-dir", dir, "--json", "peers"]).stdout), [], "no peer was added");
});

test("control characters the user typed are shown escaped in error messages, never written raw to the terminal", (t) => {
  const dir = tmp(t);
  const alias = "x\x1b]0;TITLE\x07y";
  for (const args of [["--data-dir", dir, "add", "200::1", "--alias", alias], ["--data-dir", dir, "send", `bob\x1b[2J`, "hi"], [`fr\x1bob`]]) {
    const r = declaw(args);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /[\x00-\x09\x0b-\x1f\x7f-\x9f]/, JSON.stringify(r.stderr));
  }
  const r = declaw(["--data-dir", dir, "add", "200::1", "--alias", alias]);
  assert.match(r.stderr, /alias "x\\u001b\]0;TITLE\\u0007y" must be 1 to 32 of A-Z a-z 0-9 _ \. -, starting with a letter/);
});

test("peers --trust lists only the peers of that trust level (waiting strangers, say); another level is a usage error", (t) => {
  const dir = tmp(t);
  const node = Node.open({ dataDir: dir });
  try {
    node.addPeer("200::9");
    node.store.setTrust("200::a", "pending");
    node.store.setTrust("200::b", "blocked");
  } finally {
    node.close();
  }
  const list = (trust: string) => JSON.parse(declaw(["--data-dir", dir, "--json", "peers", "--trust", trust]).stdout).map((p: { address: string }) => p.address);
  assert.deepEqual(list("pending"), ["200::a"]);
  assert.deepEqual(list("blocked"), ["200::b"]);
  assert.deepEqual(list("trusted"), ["200::9"]);
  const bad = declaw(["--data-dir", dir, "peers", "--trust", "waiting"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /trust must be trusted, pending or blocked \(got "waiting"\)/);
});
