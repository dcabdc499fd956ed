/**
 * `npm install` / `npm ci` in this checkout (the `dependencies` script, which npm runs after it changed
 * node_modules, only for the project itself): finishes the install of the openclaw dev dependency with the project's
 * Node 24. Not `prepare`: npm runs that one for git installs too and lists it as an install script of the published
 * package, so every install of declaw warned about a script that exists only for development.
 *
 * openclaw's own install scripts refuse to run under an older system Node (its preinstall exits 1 on Node 20), which
 * would make `npm install` fail on such a machine. package.json therefore denies openclaw's scripts (`allowScripts`)
 * and this step runs its postinstall here, where npm has put our Node 24 (`node_modules/.bin/node`) first on PATH.
 * A no-op when openclaw is not installed (e.g. `npm install --omit=dev`) or already finished.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..");
const pkg = join(root, "node_modules", "openclaw");
const script = join(pkg, "scripts", "postinstall-bundled-plugins.mjs");
if (existsSync(join(pkg, ".openclaw-lifecycle-pending")) && existsSync(script)) {
  const [major, minor] = process.versions.node.split(".").map(Number);
  if (major < 24 || (major === 24 && minor < 16)) {
    console.error(`finish-openclaw-install: Node ${process.version} is too old for openclaw; once node_modules/.bin/node (Node 24) is installed (\`npm install\`), run \`npm run dependencies\``);
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [script], { cwd: pkg, stdio: "inherit" });
  // npm runs this step again only when node_modules changes, so a plain `npm install` would not retry it.
  if (r.status !== 0) console.error("finish-openclaw-install: openclaw's postinstall failed; once fixed, run `npm run dependencies`");
  process.exit(r.status ?? 1);
}
