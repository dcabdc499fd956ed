/**
 * `declaw setup --binary PATH` checks that PATH is the Yggdrasil daemon before anything else is said or done about
 * it: any other executable fails the check (and is never given a capability), and a path that does not exist is named
 * as such, not suggested as the node's yggdrasil_binary. The real binary passing is test/integration/cli.setup.test.ts.
 */
import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSetup, type Check } from "../../src/hosts/cli/setup.ts";
import { DEFAULT_CONFIG } from "../../src/core/config.ts";

function tmp(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "declaw-setup-binary-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(dataDir: string, binary: string) {
  const out = await runSetup({ dataDir, positionals: [], flags: { binary } }, { ...DEFAULT_CONFIG, yggdrasil: "spawn" });
  return { ...(out.json as { ok: boolean; checks: Check[]; actions: string[] }), text: out.text, exitCode: out.exitCode };
}

test("an executable that does not answer -version as Yggdrasil fails the binary check, gets no setcap, and is not suggested as the node's binary", async (t) => {
  const dir = tmp(t);
  const script = join(dir, "anyscript");
  writeFileSync(script, "#!/bin/sh\necho hello\n", { mode: 0o755 });
  const r = await setup(dir, script);
  assert.equal(r.ok, false);
  assert.equal(r.exitCode, 1);
  const binary = r.checks.find((c) => c.check === "yggdrasil binary");
  assert.deepEqual([binary?.ok, binary?.detail], [false, `${script} is not Yggdrasil (its -version output has no "Build version:" line)`]);
  assert.match(binary?.fix?.[0] ?? "", /^give --binary the path of the yggdrasil daemon/);
  assert.deepEqual(r.actions, [], "no setcap");
  assert.deepEqual(r.checks.map((c) => c.check).filter((c) => c === "configured binary" || c === "TUN privilege"), []);
  assert.doesNotMatch(r.text, /yggdrasil_binary|setcap/);
});

test("a --binary that does not exist is named as missing, not suggested as yggdrasil_binary", async (t) => {
  const dir = tmp(t);
  const missing = join(dir, "nope");
  const r = await setup(dir, missing);
  const binary = r.checks.find((c) => c.check === "yggdrasil binary");
  assert.deepEqual([binary?.ok, binary?.detail], [false, `${missing} does not exist`]);
  assert.equal(r.checks.find((c) => c.check === "configured binary"), undefined);
  assert.doesNotMatch(r.text, /"yggdrasil_binary"/);
});
