/**
 * Builds the package the way it is published and packs it with `npm pack`, for installing into a real OpenClaw
 * (`openclaw plugins install npm-pack:FILE.tgz`).
 *
 * To stay independent of whatever is in the working tree's dist/ (someone may be rebuilding it), the TypeScript is
 * compiled with tsconfig.build.json into a scratch directory, and the package is staged there: package.json plus the
 * entries of its `files` list, with the fresh dist/. If package.json does not carry the OpenClaw fields yet, the
 * fields below are merged in and `staged.addedFields` says so (the test prints a note).
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
export const BIN = join(ROOT, "node_modules/.bin");

/** What package.json needs for OpenClaw (the lead applies these to the real file). */
export const OPENCLAW_PACKAGE_FIELDS = {
  openclaw: {
    extensions: ["./src/hosts/openclaw/index.ts"],
    runtimeExtensions: ["./dist/hosts/openclaw/index.js"],
    channel: {
      id: "ipv6-p2p",
      label: "IPv6 P2P",
      selectionLabel: "IPv6 P2P (Yggdrasil, signed agent-to-agent messages)",
      blurb: "Direct signed messages between OpenClaw instances over Yggdrasil; no server in between.",
      docsPath: "https://github.com/declaw/declaw#readme",
    },
    compat: { pluginApi: ">=2026.9.6" },
    install: { minHostVersion: ">=2026.9.6" },
  },
  peerDependencies: { openclaw: ">=2026.9.6" },
  peerDependenciesMeta: { openclaw: { optional: true } },
} as const;

export const REQUIRED_FILES = ["dist/", "openclaw.plugin.json", "skills/"];

export interface PackResult {
  tarball: string;
  /** Fields merged in because package.json lacked them. */
  addedFields: string[];
  /** `files` entries package.json lacks (added for the staged copy). */
  addedFiles: string[];
}

export function packPlugin(workDir: string): PackResult {
  const stage = join(workDir, "package");
  mkdirSync(stage, { recursive: true });
  execFileSync(join(BIN, "tsc"), ["-p", join(ROOT, "tsconfig.build.json"), "--outDir", join(stage, "dist")], { cwd: ROOT, stdio: "pipe" });
  if (!existsSync(join(stage, "dist/hosts/openclaw/index.js"))) throw new Error("build produced no dist/hosts/openclaw/index.js");

  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Record<string, unknown>;
  const addedFields: string[] = [];
  for (const [k, v] of Object.entries(OPENCLAW_PACKAGE_FIELDS)) {
    if (pkg[k] === undefined) {
      pkg[k] = v;
      addedFields.push(k);
    }
  }
  const files = Array.isArray(pkg.files) ? [...(pkg.files as string[])] : [];
  const addedFiles = REQUIRED_FILES.filter((f) => !files.includes(f) && !files.includes(f.replace(/\/$/, "")));
  pkg.files = [...files, ...addedFiles];
  delete pkg.scripts; // no lifecycle scripts in the scratch copy
  writeFileSync(join(stage, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  for (const entry of pkg.files as string[]) {
    const name = entry.replace(/\/$/, "");
    if (name === "dist" || name.includes("*")) continue;
    const from = join(ROOT, name);
    if (existsSync(from)) cpSync(from, join(stage, name), { recursive: true });
  }
  const out = execFileSync("npm", ["pack", "--silent", "--pack-destination", workDir], { cwd: stage, encoding: "utf8", env: { ...process.env, PATH: `${BIN}:${process.env.PATH}` } });
  const name = out.trim().split("\n").at(-1)!;
  const tarball = join(workDir, name);
  if (!existsSync(tarball)) throw new Error(`npm pack did not produce ${tarball} (${readdirSync(workDir).join(", ")})`);
  return { tarball, addedFields, addedFiles };
}
