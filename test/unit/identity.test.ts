/**
 * identity.json: created once (0600, exclusive create), reloaded unchanged, refused loudly (never replaced) when
 * damaged, and its key is the one the real Yggdrasil daemon turns into our address.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateIdentity, loadIdentity, yggdrasilPrivateKeyHex, IDENTITY_FILE } from "../../src/core/identity.ts";
import { deriveAddress, formatIPv6, parseIPv6 } from "../../src/core/address.ts";
import { generateKeyPair } from "../../src/core/keys.ts";
import { P2PError } from "../../src/core/errors.ts";
import { Node } from "../../src/core/node.ts";
import { DB_FILE } from "../../src/core/store.ts";
import { newMessageId } from "../../src/core/wire.ts";
import { YGGDRASIL_SKIP_REASON, yggdrasilDerive } from "../helpers/ygg-cli.ts";

const IDENTITY_MODULE = new URL("../../src/core/identity.ts", import.meta.url).href;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "declaw-identity-"));
}

test("created on first use with mode 0600 and the documented JSON fields; loaded again unchanged", () => {
  const dir = join(tmp(), "data");
  try {
    const id = loadOrCreateIdentity(dir);
    const file = join(dir, IDENTITY_FILE);
    assert.equal(id.file, file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o077, 0, "data dir not group/world accessible");
    const json = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(Object.keys(json).sort(), ["address", "createdAt", "privateKey", "publicKey", "subnet", "version"]);
    assert.equal(json.version, 1);
    assert.equal(Buffer.from(json.privateKey, "base64").length, 32);
    assert.equal(json.publicKey, id.publicKeyBase64);
    assert.equal(json.address, id.address);
    assert.equal(json.subnet, id.subnet);
    assert.equal(typeof json.createdAt, "number");
    assert.equal(id.address, formatIPv6(deriveAddress(id.publicKey)));
    assert.deepEqual(id.addressBytes, parseIPv6(id.address));
    assert.match(id.subnet, /^3[0-9a-f]{2}:.*::\/64$/);

    const before = readFileSync(file);
    const again = loadOrCreateIdentity(dir);
    assert.equal(again.address, id.address);
    assert.deepEqual(again.seed, id.seed);
    assert.equal(again.createdAt, id.createdAt);
    assert.deepEqual(readFileSync(file), before, "reloading never rewrites the file");
  } finally {
    rmSync(join(dir, ".."), { recursive: true, force: true });
  }
});

/** Writes `content` as identity.json, expects P2P_ERR_IDENTITY_CORRUPT naming the file, and an untouched file. */
function expectCorrupt(mutate: (json: Record<string, unknown>, file: string) => string | void): void {
  const dir = tmp();
  try {
    const id = loadOrCreateIdentity(dir);
    const json = JSON.parse(readFileSync(id.file, "utf8"));
    const out = mutate(json, id.file);
    if (out !== undefined) writeFileSync(id.file, out);
    const before = readFileSync(id.file);
    assert.throws(() => loadOrCreateIdentity(dir), (err: unknown) => {
      assert.ok(err instanceof P2PError);
      assert.equal(err.code, "P2P_ERR_IDENTITY_CORRUPT");
      assert.ok(err.message.includes(id.file), `message names the file: ${err.message}`);
      assert.ok(err.hint && err.hint.length > 0);
      return true;
    });
    assert.deepEqual(readFileSync(id.file), before, "file unchanged after refusal");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("corrupt JSON is refused, file unchanged", () => expectCorrupt(() => "{ \"version\": 1, "));
test("empty file is refused", () => expectCorrupt(() => ""));
test("JSON that is not an object is refused", () => expectCorrupt(() => "[1,2,3]"));
test("unknown version is refused", () => expectCorrupt((j) => JSON.stringify({ ...j, version: 0 })));
test("a file from a newer declaw (higher version) is refused with an upgrade hint, not called damaged", () => {
  const dir = tmp();
  try {
    const id = loadOrCreateIdentity(dir);
    writeFileSync(id.file, JSON.stringify({ ...JSON.parse(readFileSync(id.file, "utf8")), version: 2 }));
    const before = readFileSync(id.file);
    assert.throws(() => loadOrCreateIdentity(dir), (err: unknown) =>
      err instanceof P2PError && err.code === "P2P_ERR_IDENTITY_CORRUPT" && /newer declaw/.test(err.message) && /upgrade/.test(err.hint ?? "") && !/backup/.test(err.hint ?? ""));
    assert.deepEqual(readFileSync(id.file), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
test("wrong stored address is refused", () => expectCorrupt((j) => {
  const other = formatIPv6(deriveAddress(generateKeyPair().publicKey));
  return JSON.stringify({ ...j, address: other });
}));
test("non-canonical stored address is refused", () => expectCorrupt((j) => {
  return JSON.stringify({ ...j, address: (j.address as string).toUpperCase().replace(/^2/, "02") });
}));
test("wrong stored subnet is refused", () => expectCorrupt((j) => JSON.stringify({ ...j, subnet: "300::/64" })));
test("public key of another key pair is refused", () => expectCorrupt((j) => {
  return JSON.stringify({ ...j, publicKey: Buffer.from(generateKeyPair().publicKey).toString("base64") });
}));
test("truncated private key is refused", () => expectCorrupt((j) => {
  return JSON.stringify({ ...j, privateKey: Buffer.from(j.privateKey as string, "base64").subarray(0, 31).toString("base64") });
}));
test("identity path that is a directory (unreadable) is refused", () => {
  const dir = tmp();
  try {
    const file = join(dir, IDENTITY_FILE);
    mkdirSync(file);
    assert.throws(() => loadOrCreateIdentity(dir), (err: unknown) =>
      err instanceof P2PError && err.code === "P2P_ERR_IDENTITY_CORRUPT" && err.message.includes(file));
    assert.ok(statSync(file).isDirectory());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("identity file without read permission is a permissions problem (P2P_ERR_DATA_DIR naming the owner), not a damaged file", { timeout: 20_000 }, async () => {
  const dir = tmp();
  try {
    const id = loadOrCreateIdentity(dir);
    const before = readFileSync(id.file);
    if (process.getuid?.() === 0) {
      // Root reads anything: load it as `nobody` from a child, dir traversable but the 0600 root file unreadable.
      chmodSync(dir, 0o755);
      const r = await runNode(
        `import { loadIdentity } from ${JSON.stringify(IDENTITY_MODULE)};
         try { loadIdentity(${JSON.stringify(id.file)}); console.log("LOADED"); }
         catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }`,
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"],
      );
      const out = JSON.parse(r.stdout.trim());
      assert.equal(out.code, "P2P_ERR_DATA_DIR", r.stdout + r.stderr);
      assert.ok(out.message.includes(id.file));
      assert.match(out.message, /permission denied/i);
      assert.match(out.hint, /owns/);
    } else {
      chmodSync(id.file, 0o000);
      assert.throws(() => loadIdentity(id.file), (err: unknown) =>
        err instanceof P2PError && err.code === "P2P_ERR_DATA_DIR" && err.message.includes(id.file));
      chmodSync(id.file, 0o600);
    }
    assert.deepEqual(readFileSync(id.file), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function runNode(code: string, prefix: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const argv = [...prefix, process.execPath, "--input-type=module", "-e", code];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (c) => resolve({ code: c, stdout, stderr }));
  });
}

test("concurrent creators in separate processes end up with one identity", { timeout: 60_000 }, async () => {
  const dir = join(tmp(), "race");
  try {
    // All children sleep until the same instant, then race to create the identity.
    const startAt = Date.now() + 1500;
    const script = `import { loadOrCreateIdentity } from ${JSON.stringify(IDENTITY_MODULE)};
      const wait = ${startAt} - Date.now(); if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      console.log(loadOrCreateIdentity(${JSON.stringify(dir)}).address);`;
    const results = await Promise.all(Array.from({ length: 6 }, () => runNode(script)));
    const addresses = results.map((r) => {
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    });
    assert.equal(new Set(addresses).size, 1, `one identity, got ${addresses.join(", ")}`);
    assert.equal(loadOrCreateIdentity(dir).address, addresses[0]);
    // No temp files left behind by the losers.
    const left = execFileSync("ls", ["-A", dir], { encoding: "utf8" }).trim().split("\n");
    assert.deepEqual(left, [IDENTITY_FILE]);
  } finally {
    rmSync(join(dir, ".."), { recursive: true, force: true });
  }
});

test("yggdrasilPrivateKeyHex is hex(seed || public key), 128 chars", () => {
  const kp = generateKeyPair();
  const hex = yggdrasilPrivateKeyHex(kp);
  assert.match(hex, /^[0-9a-f]{128}$/);
  assert.equal(hex.slice(0, 64), Buffer.from(kp.seed).toString("hex"));
  assert.equal(hex.slice(64), Buffer.from(kp.publicKey).toString("hex"));
});

test("the real yggdrasil binary derives our address from our PrivateKey", { skip: YGGDRASIL_SKIP_REASON, timeout: 20_000 }, () => {
  const dir = tmp();
  try {
    const id = loadOrCreateIdentity(dir);
    const hex = yggdrasilPrivateKeyHex(id);
    assert.equal(yggdrasilDerive(hex, "-address"), id.address);
    assert.equal(yggdrasilDerive(hex, "-subnet"), id.subnet);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a data directory whose database was used under a key never gets a new key when identity.json goes missing", () => {
  const dir = tmp();
  try {
    const first = Node.open({ dataDir: dir });
    const address = first.address;
    first.store.enqueueOutbound({ id: newMessageId(1), peer: "200::1", kind: "chat", content: "hi", ts: 1, protocol: 2, expiresAt: Date.now() + 60_000 }, 1);
    first.close();
    rmSync(join(dir, IDENTITY_FILE)); // a partial restore, a copy made without it

    assert.throws(() => Node.open({ dataDir: dir }), (err: unknown) =>
      err instanceof P2PError && err.code === "P2P_ERR_IDENTITY_CORRUPT" && err.message.includes(join(dir, IDENTITY_FILE)) && /backup/.test(err.hint ?? ""));
    assert.throws(() => statSync(join(dir, IDENTITY_FILE)), "no new identity was written");

    // Peers added by hand (no message, no recorded address) do not tie the directory to a key: a first identity is made.
    const fresh = tmp();
    const setup = Node.open({ dataDir: fresh });
    setup.store.upsertPeer({ address: "200::2", trust: "trusted" });
    setup.close();
    rmSync(join(fresh, IDENTITY_FILE));
    const again = Node.open({ dataDir: fresh });
    assert.notEqual(again.address, address);
    again.close();
    rmSync(fresh, { recursive: true, force: true });
    assert.ok(statSync(join(dir, DB_FILE)).isFile(), "the database is left as it was");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
