/**
 * The gateway's node service (src/hosts/openclaw/service.ts): OpenClaw gives a service being replaced (a config
 * change, a reload) 5 s to stop, while starting Yggdrasil can take 20 s. A stop during the start cuts the start short
 * instead of waiting it out, and is not reported as a failed start. A fake daemon that never answers stands in for a
 * slow Yggdrasil (no TUN, no network: it only sleeps).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LOCK_FILE } from "../../src/core/run-lock.ts";
import { createNodeService } from "../../src/hosts/openclaw/service.ts";
import { freePort, waitFor } from "../helpers/declaw.ts";

test("stop() while Yggdrasil is still starting ends the start: no daemon left, lock released, no failure reported", { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "declaw-service-"));
  const bin = mkdtempSync(join(tmpdir(), "declaw-service-bin-"));
  t.after(() => [dir, bin].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const launched = join(bin, "launched");
  const binary = join(bin, "yggdrasil");
  // Answers -version as Yggdrasil does; run as a daemon it records its pid and never opens its admin socket.
  writeFileSync(binary, `#!/bin/sh\nif [ "$1" = "-version" ]; then echo "Build name: yggdrasil"; echo "Build version: 0.4.7"; exit 0; fi\necho $$ > ${launched}\nexec sleep 600\n`);
  chmodSync(binary, 0o755);
  const logged: string[] = [];
  const logger = { info: (m: string) => logged.push(`info ${m}`), warn: (m: string) => logged.push(`warn ${m}`), error: (m: string) => logged.push(`error ${m}`) };
  const failures: unknown[] = [];
  const ctx = {
    config: { plugins: { entries: { "ipv6-p2p": { config: { data_dir: dir, yggdrasil: "spawn", yggdrasil_binary: binary, peer_port: await freePort() } } } } },
    logger,
    serviceHealth: { reportFailure: (e: unknown) => failures.push(e), clearFailure() {} },
  };
  const service = createNodeService(() => undefined);
  t.after(() => service.stop(ctx)); // also when an assertion fails first (a second stop does nothing)
  await service.start(ctx);
  await waitFor("the daemon's launch", () => existsSync(launched) && readFileSync(launched, "utf8").trim() !== "", 20_000, 20).catch((e) => { throw new Error(`${e.message}; log: ${logged.join(" / ")}`); });
  const pid = Number(readFileSync(launched, "utf8"));

  await service.stop(ctx);

  assert.throws(() => process.kill(pid, 0), { code: "ESRCH" }, "the daemon it launched is gone");
  assert.equal(existsSync(join(dir, LOCK_FILE)), false, "the run lock is released");
  assert.deepEqual(failures, [], "a stop is not a failed start");
  assert.deepEqual(logged.filter((l) => l.startsWith("error")), []);
});
