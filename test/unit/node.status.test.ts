/**
 * `status` read from another process than the running node's (the CLI while the gateway runs): the Yggdrasil part
 * comes from the node's heartbeat, written every few seconds, and its uptimes are brought to the time of reading.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { agedStatus } from "../../src/core/node.ts";
import type { YggStatus } from "../../src/yggdrasil/types.ts";

const recorded: YggStatus = {
  mode: "auto",
  effectiveMode: "spawn",
  state: "running",
  keyBinding: "derived",
  pid: 42,
  uptimeMs: 60_000,
  peers: [
    { uri: "tcp://[fd00::1]:1", address: "200::1", key: "k1", up: true, uptimeMs: 5_000 },
    { uri: "tcp://[fd00::2]:1", address: "200::2", key: "k2", up: false },
  ],
};

test("a heartbeat's uptimes are aged by the time since it was written; nothing else changes", () => {
  const now = agedStatus(recorded, 7_500);
  assert.equal(now.uptimeMs, 67_500);
  assert.equal(now.peers![0]!.uptimeMs, 12_500);
  assert.deepEqual(now.peers![1], recorded.peers![1], "a peer that is down has no uptime to age");
  assert.deepEqual({ ...now, uptimeMs: 0, peers: [] }, { ...recorded, uptimeMs: 0, peers: [] });
  assert.equal(recorded.uptimeMs, 60_000, "the recorded status is not changed");
});

test("a heartbeat stamped ahead of this process's clock is not aged backwards; a status without uptimes gets none", () => {
  assert.equal(agedStatus(recorded, -3_000).uptimeMs, 60_000);
  const stopped: YggStatus = { mode: "off", effectiveMode: "off", state: "stopped", keyBinding: "n/a" };
  assert.deepEqual(agedStatus(stopped, 5_000), stopped);
});
