/**
 * Bad configuration and bad data directories are refused with a code, a message naming the real problem, and a next
 * step: a data dir that is a file or unreadable is P2P_ERR_DATA_DIR (not a config.json error); a bad config value
 * is P2P_ERR_CONFIG naming the key and where to fix it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { configFromSnake, dataDirError, loadConfigFile } from "../../src/core/config.ts";
import { ensureDataDir } from "../../src/core/identity.ts";
import { P2PError } from "../../src/core/errors.ts";

const CONFIG_MODULE = new URL("../../src/core/config.ts", import.meta.url).href;

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "declaw-config-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function caught(fn: () => unknown): P2PError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof P2PError, `not a P2PError: ${String(err)}`);
    return err;
  }
  assert.fail("did not throw");
}

test("a data dir that is a regular file: P2P_ERR_DATA_DIR 'is a file', from loadConfigFile and ensureDataDir alike", (t) => {
  const file = join(tmp(t), "file1");
  writeFileSync(file, "x");
  for (const fn of [() => loadConfigFile(file), () => ensureDataDir(file)]) {
    const e = caught(fn);
    assert.equal(e.code, "P2P_ERR_DATA_DIR");
    assert.equal(e.message, `data directory ${file} is a file, not a directory`);
    assert.match(e.hint ?? "", /choose another data directory/);
  }
  assert.equal(readFileSync(file, "utf8"), "x", "the file is left alone");
});

test("a data dir below a file: P2P_ERR_DATA_DIR saying a part of its path is a file", (t) => {
  const file = join(tmp(t), "file1");
  writeFileSync(file, "x");
  for (const fn of [() => loadConfigFile(join(file, "sub")), () => ensureDataDir(join(file, "sub"))]) {
    const e = caught(fn);
    assert.equal(e.code, "P2P_ERR_DATA_DIR");
    assert.match(e.message, /a part of its path is a file, not a directory/);
    assert.ok(e.hint);
  }
});

test("a missing or fine data dir is no data dir problem; a missing config.json is the defaults", (t) => {
  const dir = tmp(t);
  assert.equal(dataDirError(dir), undefined);
  assert.equal(dataDirError(join(dir, "not-yet")), undefined);
  assert.equal(loadConfigFile(join(dir, "not-yet")).config.peerPort, 8099);
});

test("a config.json that is not a readable file is P2P_ERR_CONFIG with a next step", (t) => {
  const dir = tmp(t);
  mkdirSync(join(dir, "config.json"));
  const e = caught(() => loadConfigFile(dir));
  assert.equal(e.code, "P2P_ERR_CONFIG");
  assert.match(e.message, /cannot read .*config\.json/);
  assert.match(e.hint ?? "", /remove it \(it is optional\)/);
});

/**
 * An unreadable data dir. Root reads everything, so as root the check runs in a child as user nobody; otherwise in
 * this process on a chmod 000 directory.
 */
test("a data dir this user cannot read: P2P_ERR_DATA_DIR 'cannot read data directory', not a config.json error", (t) => {
  const base = tmp(t);
  chmodSync(base, 0o755);
  const dir = join(base, "private");
  mkdirSync(dir, { mode: 0o700 });
  writeFileSync(join(dir, "config.json"), "{}");
  let result: { code: string; message: string; hint?: string };
  if (process.getuid?.() === 0) {
    const script = `import { loadConfigFile } from ${JSON.stringify(CONFIG_MODULE)};
      try { loadConfigFile(${JSON.stringify(dir)}); console.log("{}"); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { uid: 65534, gid: 65534, encoding: "utf8" });
    if (r.status !== 0) return t.skip(`cannot run node as user nobody here: ${r.stderr.split("\n")[0]}`);
    result = JSON.parse(r.stdout);
  } else {
    chmodSync(dir, 0o000);
    t.after(() => chmodSync(dir, 0o700));
    result = caught(() => loadConfigFile(dir));
  }
  assert.equal(result.code, "P2P_ERR_DATA_DIR");
  assert.match(result.message, new RegExp(`^cannot read data directory ${dir}: EACCES`));
  assert.match(result.hint ?? "", /owns .*permissions/);
});

test("a bad value names the key and the source, and says to correct or remove it", () => {
  const e = caught(() => configFromSnake({ peer_port: 0 }, undefined, "/d/config.json"));
  assert.equal(e.code, "P2P_ERR_CONFIG");
  assert.equal(e.message, "/d/config.json: peer_port must be an integer from 1 to 65535 (got 0)");
  assert.equal(e.hint, 'correct "peer_port" in /d/config.json, or remove it to use the default');
  const uri = caught(() => configFromSnake({ yggdrasil_peers: ["nope"] }, undefined, "cfg"));
  assert.equal(uri.message, 'cfg: yggdrasil_peers[0] must be a URI such as tcp://host:port or tls://host:port (got "nope")');
  assert.equal(uri.hint, 'correct "yggdrasil_peers" in cfg, or remove it to use the default');
  assert.match(caught(() => configFromSnake([], undefined, "cfg")).hint ?? "", /an object/);
  assert.match(caught(() => configFromSnake({ adminSocket: "/x" }, undefined, "cfg")).hint ?? "", /yggdrasil_admin_socket/, "unknown keys list the real ones");
});
