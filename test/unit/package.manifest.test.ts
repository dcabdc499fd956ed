import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> };

test("package.json: installing declaw runs no script of ours (npm lists any install-time script as a risk to review)", () => {
  // The lifecycle scripts npm runs, or may run (git installs), where a package is installed.
  const installTime = ["preinstall", "install", "postinstall", "prepublish", "preprepare", "prepare", "postprepare"];
  assert.deepEqual(installTime.filter((s) => s in pkg.scripts), []);
});

test("package.json: the checkout's own install finishes the openclaw dev dependency (a `dependencies` script runs only here)", () => {
  assert.equal(pkg.scripts.dependencies, "node scripts/finish-openclaw-install.mjs");
});
