/** config.ts: the daemon config both 0.4 and 0.5 accept, built from our identity. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { buildDaemonConfig, ifNameFor, renderDaemonConfig, IFNAME_MAX_CHARS } from "../../src/yggdrasil/config.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { yggdrasilPrivateKeyHex } from "../../src/core/identity.ts";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { YGGDRASIL_SKIP_REASON, yggdrasilDerive } from "../helpers/ygg-cli.ts";

const kp = keyPairFromSeed(new Uint8Array(32).fill(7));
const address = formatIPv6(deriveAddress(kp.publicKey));
const base = { privateKeyHex: yggdrasilPrivateKeyHex(kp), address, listen: [], peers: [], adminSocketPath: "/tmp/d/yggdrasil/admin.sock", multicast: false };

test("PrivateKey is hex(seed || public key); no PublicKey or PrivateKeyPath field", () => {
  const c = buildDaemonConfig(base);
  assert.equal(c.PrivateKey, Buffer.from(kp.seed).toString("hex") + Buffer.from(kp.publicKey).toString("hex"));
  assert.equal((c.PrivateKey as string).length, 128);
  assert.ok(!("PublicKey" in c));
  assert.ok(!("PrivateKeyPath" in c));
});

test("fields: admin socket URI, peers, listen, multicast off by default, interface name, MTU, quiet NodeInfo", () => {
  const c = buildDaemonConfig({ ...base, peers: ["tcp://[fd00::1]:1"], listen: ["tcp://[::]:2"] });
  assert.equal(c.AdminListen, "unix:///tmp/d/yggdrasil/admin.sock");
  assert.deepEqual(c.Peers, ["tcp://[fd00::1]:1"]);
  assert.deepEqual(c.Listen, ["tcp://[::]:2"]);
  assert.deepEqual(c.MulticastInterfaces, []);
  assert.equal(c.IfName, ifNameFor(address));
  assert.equal(c.IfMTU, 65535);
  assert.deepEqual(c.NodeInfo, {});
  assert.equal(c.NodeInfoPrivacy, true);
  assert.deepEqual(buildDaemonConfig({ ...base, multicast: true }).MulticastInterfaces, [{ Regex: ".*", Beacon: true, Listen: true, Port: 0 }]);
  assert.deepEqual(JSON.parse(renderDaemonConfig(c)), c);
});

test("interface name: ygg- + last 11 hex digits of the address (44 bits), exactly IFNAMSIZ's 15 characters", () => {
  assert.equal(ifNameFor("200:1234:5678:9abc:def0:1234:5678:abcd"), "ygg-2345678abcd");
  assert.equal(ifNameFor("200::"), "ygg-00000000000");
  assert.equal(ifNameFor(address).length, IFNAME_MAX_CHARS);
  assert.throws(() => ifNameFor("nope"), RangeError);
});

test("refuses a malformed key, an over-long interface name or admin socket path", () => {
  assert.throws(() => buildDaemonConfig({ ...base, privateKeyHex: base.privateKeyHex.slice(0, 64) }), RangeError);
  assert.throws(() => buildDaemonConfig({ ...base, ifName: "x".repeat(16) }), RangeError);
  assert.throws(() => buildDaemonConfig({ ...base, adminSocketPath: `/tmp/${"d".repeat(120)}/admin.sock` }), /admin socket path/);
});

test("refuses an admin socket path with a % that is no URI escape: the daemon cannot parse its AdminListen URI", () => {
  for (const bad of ["/tmp/100%/admin.sock", "/tmp/a%zz/admin.sock", "/tmp/a%4/admin.sock"]) {
    assert.throws(() => buildDaemonConfig({ ...base, adminSocketPath: bad }), /%.*cannot parse/, bad);
  }
  assert.equal(buildDaemonConfig({ ...base, adminSocketPath: "/tmp/a%41/admin.sock" }).AdminListen, "unix:///tmp/a%41/admin.sock");
});

test("the real binary reads our config and derives our address", { skip: YGGDRASIL_SKIP_REASON }, () => {
  assert.equal(yggdrasilDerive(buildDaemonConfig(base).PrivateKey as string, "-address"), address);
});
