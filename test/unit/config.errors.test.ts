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
import { MAX_BODY_BYTES, TIMESTAMP_WINDOW_MS } from "../../src/core/wire.ts";
import { V1_TS_REUSE_MS } from "../../src/core/outbox.ts";

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

test("keys are the config's own: names from Object.prototype in config.json are unknown keys, not crashes or no-ops", (t) => {
  const dir = tmp(t);
  // Written as text: JSON.parse makes "__proto__" an ordinary own key, which must be reported like any other.
  for (const key of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
    writeFileSync(join(dir, "config.json"), `{"${key}": 1}`);
    const e = caught(() => loadConfigFile(dir));
    assert.equal(e.code, "P2P_ERR_CONFIG", key);
    assert.equal(e.message, `${join(dir, "config.json")}: unknown key "${key}"`);
    assert.match(e.hint ?? "", /known keys: peer_port/);
  }
});

test("a config.json holding null is refused like [] or \"x\"; only a missing file or an absent plugin config is the defaults", (t) => {
  const dir = tmp(t);
  const file = join(dir, "config.json");
  for (const text of ["null", "[]", '"x"']) {
    writeFileSync(file, text);
    const e = caught(() => loadConfigFile(dir));
    assert.equal(e.code, "P2P_ERR_CONFIG", text);
    assert.equal(e.message, `${file} must be a JSON object`);
  }
  assert.equal(caught(() => configFromSnake(null, undefined, "cfg")).message, "cfg must be a JSON object");
  assert.equal(configFromSnake(undefined).peerPort, 8099, "no plugin config: the defaults");
  rmSync(file);
  assert.equal(loadConfigFile(dir).config.peerPort, 8099, "no config.json: the defaults");
});

test("yggdrasil_admin_socket: an absolute path, or the daemon's AdminListen unix:///path stored as the plain path", () => {
  assert.equal(configFromSnake({ yggdrasil_admin_socket: "/var/run/yggdrasil/yggdrasil.sock" }).yggdrasilAdminSocket, "/var/run/yggdrasil/yggdrasil.sock");
  assert.equal(configFromSnake({ yggdrasil_admin_socket: "unix:///var/run/yggdrasil/yggdrasil.sock" }).yggdrasilAdminSocket, "/var/run/yggdrasil/yggdrasil.sock");
});

test("yggdrasil_binary: the daemon binary a node starts, an absolute path (unset: found on PATH)", () => {
  assert.equal(configFromSnake({}).yggdrasilBinary, undefined);
  assert.equal(configFromSnake({ yggdrasil_binary: "/opt/ygg/bin/yggdrasil" }).yggdrasilBinary, "/opt/ygg/bin/yggdrasil");
  for (const v of ["yggdrasil", "bin/yggdrasil", "", 7]) {
    const e = caught(() => configFromSnake({ yggdrasil_binary: v }, undefined, "cfg"));
    assert.equal(e.code, "P2P_ERR_CONFIG", String(v));
    assert.match(e.message, /^cfg: yggdrasil_binary must be /);
  }
});

test("yggdrasil_admin_socket: tcp:// and other schemes are refused as unsupported, a relative path as not absolute", () => {
  for (const v of ["tcp://localhost:9001", "tcp://[::1]:9001", "tls://host:1"]) {
    const e = caught(() => configFromSnake({ yggdrasil_admin_socket: v }, undefined, "cfg"));
    assert.equal(e.code, "P2P_ERR_CONFIG", v);
    assert.match(e.message, new RegExp(`^cfg: yggdrasil_admin_socket must be a unix socket path .*only a unix socket is supported, not ${v.split(":")[0]}://$`));
  }
  for (const v of ["yggdrasil.sock", "run/yggdrasil.sock", "unix://yggdrasil.sock"]) {
    const e = caught(() => configFromSnake({ yggdrasil_admin_socket: v }, undefined, "cfg"));
    assert.equal(e.code, "P2P_ERR_CONFIG", v);
    assert.match(e.message, /must be a unix socket path .*: the path must be absolute$/);
    assert.equal(e.hint, 'correct "yggdrasil_admin_socket" in cfg, or remove it to use the default');
  }
});

test("body_limit_bytes is at least the protocol's MAX_BODY_BYTES, which every receiver must accept (protocol.md sections 2, 9)", () => {
  assert.equal(configFromSnake({ body_limit_bytes: MAX_BODY_BYTES }).bodyLimitBytes, MAX_BODY_BYTES);
  const e = caught(() => configFromSnake({ body_limit_bytes: MAX_BODY_BYTES - 1 }, undefined, "cfg"));
  assert.equal(e.code, "P2P_ERR_CONFIG");
  assert.match(e.message, /^cfg: body_limit_bytes must be an integer from 65536 to 16777216 \(got 65535\): the minimum is the protocol's MAX_BODY_BYTES/);
  assert.equal(caught(() => configFromSnake({ body_limit_bytes: 4096 })).code, "P2P_ERR_CONFIG", "the old minimum");
});

test("timestamp_window_seconds is at least the protocol's 300 s, so v1 retries that reuse their first timestamp stay fresh", () => {
  assert.ok(V1_TS_REUSE_MS < TIMESTAMP_WINDOW_MS, "a retry reusing its first timestamp fits in the smallest window");
  assert.equal(configFromSnake({ timestamp_window_seconds: 300 }).timestampWindowMs, TIMESTAMP_WINDOW_MS);
  const e = caught(() => configFromSnake({ timestamp_window_seconds: 299 }, undefined, "cfg"));
  assert.equal(e.code, "P2P_ERR_CONFIG");
  assert.match(e.message, /^cfg: timestamp_window_seconds must be an integer from 300 to 86400 \(got 299\): the minimum is the protocol's \+-5 minute window/);
  assert.equal(caught(() => configFromSnake({ timestamp_window_seconds: 10 })).code, "P2P_ERR_CONFIG", "the old minimum");
});

test("the plugin manifest and the README state the same minimums as the code", () => {
  const manifest = JSON.parse(readFileSync(new URL("../../openclaw.plugin.json", import.meta.url), "utf8"));
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const props = manifest.configSchema.properties;
  for (const [key, min] of [["body_limit_bytes", MAX_BODY_BYTES], ["timestamp_window_seconds", TIMESTAMP_WINDOW_MS / 1000]] as const) {
    assert.equal(props[key].minimum, min, key);
    assert.doesNotThrow(() => configFromSnake({ [key]: min }));
    assert.throws(() => configFromSnake({ [key]: min - 1 }), P2PError);
    assert.match(readme, new RegExp(`^\\| \`${key}\` \\| ${min} \\| .*at least ${min}\\b`, "m"), key);
  }
  const socket = new RegExp(props.yggdrasil_admin_socket.pattern);
  for (const v of ["/var/run/yggdrasil/yggdrasil.sock", "unix:///var/run/yggdrasil/yggdrasil.sock"]) assert.ok(socket.test(v), v);
  for (const v of ["tcp://localhost:9001", "yggdrasil.sock"]) assert.ok(!socket.test(v), v);
});
