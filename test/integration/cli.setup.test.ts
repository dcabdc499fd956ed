/**
 * `declaw setup`: with the rights (root) it performs the one-time step — cap_net_admin on the yggdrasil binary, so
 * an unprivileged node can spawn its own daemon; without them it exits non-zero and prints the exact commands.
 * Run against a copy of the binary so the machine's own yggdrasil is never changed.
 */
import assert from "node:assert/strict";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cli } from "../helpers/declaw.ts";
import { cliAsNobody, nobodyCannotRunCli, setcapMissing } from "../helpers/mesh-net.ts";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";
import { findYggdrasilBinary } from "../../src/yggdrasil/binary.ts";

const avail = netnsAvailable();
const system = findYggdrasilBinary();
const skip = !avail.ok ? avail.reason : !system ? "yggdrasil binary not installed" : setcapMissing();

describe("declaw setup", { skip, timeout: 120_000 }, () => {
  let net: Testnet;
  let ns: Namespace;
  const work = mkdtempSync(join(tmpdir(), "declaw-setup-"));
  const copy = join(work, "yggdrasil");

  before(() => {
    net = new Testnet();
    ns = net.add();
    copyFileSync(system!, copy);
    chmodSync(work, 0o755);
    chmodSync(copy, 0o755);
  });
  after(async () => {
    await net.destroy();
    rmSync(work, { recursive: true, force: true });
  });

  it("as root: gives the configured binary (yggdrasil_binary) cap_net_admin and reports ready", async () => {
    const dir = join(work, "root-data");
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, "config.json"), JSON.stringify({ yggdrasil_binary: copy }));
    const r = await cli(ns, dir, ["setup"]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.json.ok, true);
    assert.deepEqual(r.json.actions, [`setcap cap_net_admin+ep ${copy}`]);
    assert.match(execFileSync("getcap", [copy], { encoding: "utf8" }), /cap_net_admin[=+]ep/);
    const again = await cli(ns, dir, ["setup", "--binary", copy]);
    assert.equal(again.json.ok, true, "--binary naming the configured binary is the same check");
    assert.deepEqual(again.json.actions, [], "the one-time step is not repeated");
  });

  it("--binary naming a binary the node would not run fails, and says which key makes the node run it", async () => {
    const dir = join(work, "other-data"); // no config.json: the node runs the first yggdrasil it finds
    const r = await cli(ns, dir, ["setup", "--binary", copy]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const c = r.json.checks.find((x: { check: string }) => x.check === "configured binary");
    assert.equal(c?.ok, false, JSON.stringify(r.json.checks));
    assert.match(c.detail, new RegExp(`runs ${system}, not ${copy}`));
    assert.match(c.fix[0], /"yggdrasil_binary"/);
  });

  it("without the rights: exits 1 with the exact fix commands", { skip: nobodyCannotRunCli() ?? false }, async () => {
    execFileSync("setcap", ["-r", copy]);
    const dir = join(work, "nobody-data");
    const r = await cliAsNobody(ns, dir, ["setup", "--binary", copy]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.equal(r.json.ok, false);
    const priv = r.json.checks.find((c: { check: string }) => c.check === "TUN privilege");
    assert.equal(priv.ok, false);
    assert.ok(priv.fix.includes(`sudo setcap cap_net_admin+ep ${copy}`), JSON.stringify(priv.fix));
    assert.deepEqual(r.json.actions, []);
    const text = await ns.run("setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath, join(import.meta.dirname, "../../src/hosts/cli/main.ts"), "--data-dir", dir, "setup", "--binary", copy], { env: { ...process.env, HOME: "/nonexistent" } });
    assert.equal(text.code, 1);
    assert.match(text.stdout, /FAIL TUN privilege/);
    assert.match(text.stdout, /fix: sudo setcap cap_net_admin\+ep /);
    assert.match(text.stdout, /not ready: run the fix commands above/);
  });
});
