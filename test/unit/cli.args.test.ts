/**
 * The `declaw` command line: where options may stand, which data directory a command gets, peer names, and the
 * message, next step and exit code of each kind of bad input. The parsing is pure; the last tests run the real CLI
 * from sources on a temp data dir (no root, no network, no Yggdrasil).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestContext } from "node:test";
import { dataDirFrom, describeCliError, parseCommandLine } from "../../src/hosts/cli/cli.ts";
import { COMMANDS, configForRun } from "../../src/hosts/cli/commands.ts";
import { defaultDataDir } from "../../src/core/config.ts";
import { P2PError } from "../../src/core/errors.ts";

const CLI = new URL("../../src/hosts/cli/main.ts", import.meta.url).pathname;

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "declaw-cli-args-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs the CLI from sources; DECLAW_DATA_DIR is unset unless `env` sets it. */
function declaw(args: string[], o: { cwd?: string; env?: Record<string, string> } = {}) {
  const env: Record<string, string | undefined> = { ...process.env, DECLAW_DEBUG: undefined, DECLAW_DATA_DIR: undefined, ...o.env };
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: o.cwd, env, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("options may come before or after the command word, with the same result", () => {
  const after = parseCommandLine(["inbox", "--limit", "5", "--data-dir", "/d"]);
  const before = parseCommandLine(["--limit", "5", "--data-dir", "/d", "inbox"]);
  const mixed = parseCommandLine(["--data-dir=/d", "inbox", "--limit=5"]);
  for (const r of [after, before, mixed]) {
    assert.equal(r.kind, "command");
    if (r.kind !== "command") continue;
    assert.equal(r.name, "inbox");
    assert.deepEqual(r.positionals, []);
    assert.equal(r.flags.limit, "5");
    assert.equal(r.flags["data-dir"], "/d");
  }
  const send = parseCommandLine(["--json", "send", "alice", "hello", "world"]);
  assert.equal(send.kind, "command");
  if (send.kind === "command") assert.deepEqual(send.positionals, ["alice", "hello", "world"]);
});

test("an option the command does not take is a usage error naming the command's usage, wherever it stands", () => {
  for (const argv of [["--alias", "x", "inbox"], ["inbox", "--alias", "x"], ["--bogus", "peers"]]) {
    const r = parseCommandLine(argv);
    assert.equal(r.kind, "usage", argv.join(" "));
    if (r.kind === "usage") assert.match(r.hint ?? "", /usage: declaw (inbox|peers)/);
  }
});

test("unknown commands, argument counts and help", () => {
  const help = "run `declaw --help` for the list of commands";
  assert.deepEqual(parseCommandLine(["frobnicate"]), { kind: "usage", message: 'unknown command "frobnicate"', hint: help });
  assert.deepEqual(parseCommandLine(["toString"]), { kind: "usage", message: 'unknown command "toString"', hint: help });
  assert.deepEqual(parseCommandLine(["send", "alice"]), { kind: "usage", message: "wrong number of arguments", hint: "usage: declaw send <peer> <text>" });
  assert.deepEqual(parseCommandLine([]), { kind: "help", exitCode: 2 });
  assert.deepEqual(parseCommandLine(["--json"]), { kind: "help", exitCode: 2 });
  assert.deepEqual(parseCommandLine(["--help"]), { kind: "help", exitCode: 0 });
  assert.deepEqual(parseCommandLine(["inbox", "-h"]), { kind: "help", exitCode: 0 });
});

test("a message that starts with '-' is never read as options: no help with exit 0, a usage error that shows --", () => {
  for (const text of ["-1 is the answer", "-hello", "-5 degrees"]) {
    const r = parseCommandLine(["send", "bob", text]);
    assert.equal(r.kind, "usage", text);
    if (r.kind === "usage") assert.match(r.hint ?? "", /usage: declaw send <peer> <text>/);
  }
  const told = parseCommandLine(["send", "bob", "-1 is the answer"]);
  assert.ok(told.kind === "usage" && told.hint?.includes('declaw send alice -- "-1 is the answer"'));
  const sent = parseCommandLine(["send", "bob", "--", "-1 is the answer"]);
  assert.ok(sent.kind === "command" && sent.positionals[1] === "-1 is the answer");
  const literal = parseCommandLine(["send", "bob", "--", "--json"]);
  assert.ok(literal.kind === "command" && literal.positionals[1] === "--json" && literal.flags.json === undefined);
});

test("CLI: usage errors read the same in text (message, usage line, where help is) and in --json (the usage in `hint`)", () => {
  const text = declaw(["send", "alice"]);
  assert.equal(text.code, 2);
  assert.equal(text.stderr, "declaw: wrong number of arguments\nusage: declaw send <peer> <text>\nrun `declaw --help` for the list of commands\n");
  const json = declaw(["--json", "send", "alice"]);
  assert.equal(json.code, 2);
  assert.deepEqual(JSON.parse(json.stdout), { error: "P2P_ERR_BAD_ARGUMENT", message: "wrong number of arguments", hint: "usage: declaw send <peer> <text>" });
});

test("CLI: `declaw --json` without a command is a JSON usage error (exit 2); without --json it prints the help", () => {
  const json = declaw(["--json"]);
  assert.equal(json.code, 2);
  assert.deepEqual(JSON.parse(json.stdout), { error: "P2P_ERR_BAD_ARGUMENT", message: "no command given", hint: "run `declaw --help` for the list of commands" });
  const text = declaw([]);
  assert.equal(text.code, 2);
  assert.match(text.stdout, /^usage: declaw <command>/);
});

test("the help lists every option of every command (run's --verbose too)", () => {
  const help = declaw(["--help"]).stdout;
  for (const [name, c] of Object.entries(COMMANDS)) {
    for (const option of Object.keys(c.options ?? {})) assert.match(help, new RegExp(`\\n  ${name} .*--${option}\\b`), `${name} --${option}`);
  }
});

test("help and version: `help`, --help/-h with or without a command, --version", () => {
  assert.deepEqual(parseCommandLine(["help"]), { kind: "help", exitCode: 0 });
  assert.deepEqual(parseCommandLine(["send", "--help"]), { kind: "help", exitCode: 0 });
  assert.deepEqual(parseCommandLine(["--version"]), { kind: "version" });
  assert.deepEqual(parseCommandLine(["status", "--version"]), { kind: "version" });
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  const v = declaw(["--version"]);
  assert.equal(v.code, 0);
  assert.equal(v.stdout, `declaw ${pkg.version}\n`);
  const j = declaw(["--version", "--json"]);
  assert.deepEqual(JSON.parse(j.stdout), { version: pkg.version });
});

test("CLI: `send PEER -- --json` sends the text --json; it does not switch the output to JSON", (t) => {
  const dir = tmp(t);
  const r = declaw(["--data-dir", dir, "send", "nobody-known", "--", "--json"]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "", "no JSON on stdout");
  assert.match(r.stderr, /^declaw: .*nobody-known/m);
});

test("CLI: a port below 1024 without root is a config error with the way out, not a bug report", { skip: process.getuid?.() === 0 ? false : "needs root to run the CLI as another user" }, (t) => {
  const dir = tmp(t);
  chownSync(dir, 65534, 65534); // nobody
  const r = spawnSync("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath, CLI, "--data-dir", join(dir, "d"), "run", "--yggdrasil", "off", "--port", "80"], {
    env: { ...process.env, DECLAW_DEBUG: "", DECLAW_DATA_DIR: "", HOME: "/nonexistent" },
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /peer port 80 may not be used by this user: ports below 1024 need root/);
  assert.match(r.stderr, /next step: choose another port \(declaw run --port/);
  assert.doesNotMatch(r.stderr, /bug/);
  assert.match(r.stderr, new RegExp(`^declaw: created a new identity in ${join(dir, "d")} \\(address 2`, "m"), "run on a new (or mistyped) data dir says so too");
});

test("the data dir: --data-dir, else $DECLAW_DATA_DIR, else the default; always absolute", () => {
  assert.equal(dataDirFrom("/a/b", "/env"), "/a/b");
  assert.equal(dataDirFrom("rel", undefined), resolve("rel"));
  assert.equal(dataDirFrom(undefined, "/env"), "/env");
  assert.equal(dataDirFrom(undefined, undefined), defaultDataDir());
});

test("an empty --data-dir or DECLAW_DATA_DIR is refused (never the current directory), with a next step", () => {
  for (const flag of ["", "  "]) {
    assert.throws(() => dataDirFrom(flag, "/env"), (e: unknown) =>
      e instanceof P2PError && e.code === "P2P_ERR_BAD_ARGUMENT" && /--data-dir must be a non-empty path/.test(e.message) && /--data-dir DIR/.test(e.hint ?? ""));
  }
  assert.throws(() => dataDirFrom(undefined, ""), (e: unknown) =>
    e instanceof P2PError && e.code === "P2P_ERR_BAD_ARGUMENT" && /DECLAW_DATA_DIR is set but empty/.test(e.message) && /unset it/.test(e.hint ?? ""));
});

test("errors that come without a next step get one from the CLI, by code", () => {
  const unreachable = describeCliError(new P2PError("P2P_ERR_UNREACHABLE", "200:1234:5678::1 port 8099: EHOSTUNREACH"));
  assert.equal(unreachable.message, "200:1234:5678::1 port 8099: EHOSTUNREACH");
  assert.match(unreachable.hint ?? "", /declaw status/);
  assert.match(describeCliError(new P2PError("P2P_ERR_CONTENT_TOO_LARGE", "message is larger than 32768 bytes")).hint ?? "", /several messages of at most 32768 bytes/);
  assert.equal(describeCliError(new P2PError("P2P_ERR_BAD_ARGUMENT", "--limit must be an integer"), COMMANDS.peers).hint, "usage: declaw peers [--trust trusted|pending|blocked] [--limit N]");
  assert.equal(describeCliError(new P2PError("P2P_ERR_CONFIG", "x", { hint: "its own" })).hint, "its own", "an error's own hint wins");
  const bug = describeCliError(new TypeError("boom"));
  assert.equal(bug.code, "P2P_ERR_INTERNAL");
  assert.match(bug.hint ?? "", /DECLAW_DEBUG=1/);
});

test("CLI: an empty data dir exits 2 with a next step and writes nothing to the current directory", (t) => {
  const cwd = tmp(t);
  const viaEnv = declaw(["peers"], { cwd, env: { DECLAW_DATA_DIR: "" } });
  assert.equal(viaEnv.code, 2, viaEnv.stderr);
  assert.match(viaEnv.stderr, /DECLAW_DATA_DIR is set but empty[^]*\nnext step: /);
  const viaFlag = declaw(["--data-dir", "", "peers"], { cwd });
  assert.equal(viaFlag.code, 2, viaFlag.stderr);
  assert.match(viaFlag.stderr, /--data-dir must be a non-empty path\nnext step: /);
  assert.deepEqual(readdirSync(cwd), [], "no identity.json or peers.db in the current directory");
});

test("CLI: a data dir that is a file (or below one) is P2P_ERR_DATA_DIR saying so, exit 1, the file untouched", (t) => {
  const dir = tmp(t);
  const file = join(dir, "file1");
  writeFileSync(file, "keep me");
  for (const d of [file, join(file, "sub")]) {
    const r = declaw(["--data-dir", d, "--json", "peers"]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.error, "P2P_ERR_DATA_DIR");
    assert.match(out.message, /is a file, not a directory|part of its path is a file/);
    assert.doesNotMatch(out.message, /config\.json/);
    assert.match(out.hint, /--data-dir/);
  }
  const text = declaw(["--data-dir", file, "status"]);
  assert.equal(text.code, 1);
  assert.equal(text.stderr, `declaw: data directory ${file} is a file, not a directory\nnext step: choose another data directory (declaw: --data-dir or DECLAW_DATA_DIR; OpenClaw plugin: data_dir), or move that file out of the way\n`);
  assert.equal(readFileSync(file, "utf8"), "keep me");
});

test("CLI: options before the command work; peers may be named by peer id, as `openclaw p2p` and session keys do", (t) => {
  const data = join(tmp(t), "data");
  const added = declaw(["--data-dir", data, "--json", "add", "0200-1234-5678-0000-0000-0000-0000-0001", "--alias", "alice"]);
  assert.equal(added.code, 0, added.stderr);
  assert.equal(JSON.parse(added.stdout).address, "200:1234:5678::1");
  const inbox = declaw(["--limit", "5", "--data-dir", data, "--json", "inbox", "--peer", "0200-1234-5678-0000-0000-0000-0000-0001"]);
  assert.equal(inbox.code, 0, inbox.stderr);
  assert.deepEqual(JSON.parse(inbox.stdout), []);
  const blocked = declaw(["--data-dir", data, "--json", "block", "ipv6-p2p:0200-1234-5678-0000-0000-0000-0000-0001"]);
  assert.equal(blocked.code, 0, blocked.stderr);
  assert.equal(JSON.parse(blocked.stdout).trust, "blocked");
});

test("CLI: a bad config.json value names the key and the file, and says how to fix it", (t) => {
  const data = join(tmp(t), "data");
  mkdirSync(data);
  writeFileSync(join(data, "config.json"), '{"peer_port": 0}');
  const r = declaw(["--data-dir", data, "peers"]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr, `declaw: ${join(data, "config.json")}: peer_port must be an integer from 1 to 65535 (got 0)\nnext step: correct "peer_port" in ${join(data, "config.json")}, or remove it to use the default\n`);
  assert.ok(!existsSync(join(data, "peers.db")), "nothing opened with a bad config");
});

test("run's --peer and --listen URIs are checked as config.json's are, before anything starts", (t) => {
  const dir = tmp(t);
  const run = (flags: Record<string, string[]>) => configForRun({ dataDir: dir, positionals: [], flags });
  assert.deepEqual(run({ peer: ["tls://[fd00::1]:443"], listen: ["tcp://[::]:0"] }).yggdrasilPeers, ["tls://[fd00::1]:443"]);
  assert.throws(() => run({ peer: ["tls://[fd00::1]:443", "not a uri"] }), { code: "P2P_ERR_CONFIG", message: /^--peer\[1\] must be a URI/ });
  assert.throws(() => run({ listen: ["http://x"] }), { code: "P2P_ERR_CONFIG", message: /^--listen\[0\] must be a URI/, hint: /tls:\/\/\[host\]:port, the form of yggdrasil_listen/ });
});

test("CLI: `add --key` with a key that does not derive to the address says the key is pinned on the user's word; a deriving key says nothing more", async (t) => {
  const { generateKeyPair } = await import("../../src/core/keys.ts");
  const { deriveAddress, formatIPv6 } = await import("../../src/core/address.ts");
  const owner = generateKeyPair();
  const other = generateKeyPair();
  const address = formatIPv6(deriveAddress(owner.publicKey));
  const b64 = (k: Uint8Array) => Buffer.from(k).toString("base64");
  const dir = tmp(t);
  const foreign = declaw(["--data-dir", dir, "add", address, "--key", b64(other.publicKey)]);
  assert.equal(foreign.code, 0, foreign.stderr);
  assert.match(foreign.stdout, /key user\nthis key does not derive to the address, so it is pinned on your word: messages from the address signed by any other key are refused/);
  const own = declaw(["--data-dir", tmp(t), "add", address, "--key", b64(owner.publicKey)]);
  assert.equal(own.code, 0, own.stderr);
  assert.match(own.stdout, /key derived$/m);
  assert.doesNotMatch(own.stdout, /pinned on your word/);
});
