/**
 * Headless Chromium (Debian `chromium`) driven by `playwright-core`, for Control UI tests. The browser can run inside
 * a test network namespace (through a tiny wrapper script that `ip netns exec`s Chromium), so it reaches a gateway
 * that listens on that namespace's loopback. Flags from /work/shared/docs/control-ui.md: without the
 * background-networking ones Chromium floods the closed network with connection attempts.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Namespace } from "./netns.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = resolve(import.meta.dirname, "../../.test-artifacts");

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
];

// Loaded lazily: the package is an optional dev dependency and the test skips without it.
type Playwright = typeof import("playwright-core");
export type BrowserContext = import("playwright-core").BrowserContext;
export type Page = import("playwright-core").Page;

export async function loadPlaywright(): Promise<Playwright | undefined> {
  try {
    return (await import("playwright-core")) as Playwright;
  } catch {
    return undefined;
  }
}

/** Why a browser test cannot run here, or false. */
export async function browserSkipReason(): Promise<string | false> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing (apt-get install -y chromium)`;
  if (!(await loadPlaywright())) return "playwright-core is not installed (npm i --no-save playwright-core@1.63.0)";
  return false;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** A fresh persistent context (own --user-data-dir) in `ns` (or the host's network when ns is undefined). */
export async function launchBrowser(o: { ns?: Namespace; viewport?: { width: number; height: number } } = {}): Promise<Browser> {
  const pw = await loadPlaywright();
  if (!pw) throw new Error("playwright-core is not installed");
  const dir = mkdtempSync(join(tmpdir(), "declaw-chromium-"));
  let exe = CHROMIUM;
  if (o.ns) {
    exe = join(dir, "chromium-in-netns.sh");
    writeFileSync(exe, `#!/bin/sh\nexec ip netns exec ${o.ns.name} ${CHROMIUM} "$@"\n`);
    chmodSync(exe, 0o755);
  }
  const context = await pw.chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: exe,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: o.viewport ?? { width: 1400, height: 900 },
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot under .test-artifacts/<name>.png (gitignored) and returns the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name.replace(/[^A-Za-z0-9_.-]/g, "_")}.png`);
  await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
  return file;
}
