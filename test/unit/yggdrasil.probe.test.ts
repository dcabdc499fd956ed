/** Pure probes: binary line detection, capability masks, getcap output, os-release, exit classification. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseBinaryProbe } from "../../src/yggdrasil/binary.ts";
import { capabilityInMask, getcapGrantsNetAdmin, canSpawnTun, CAP_NET_ADMIN, type PrivilegeReport } from "../../src/yggdrasil/privileges.ts";
import { platformFromOsRelease, installFix, problemNoPrivilege, problemAdminUnreachable, problemBinaryMissing, problemAdminSocketTooLong, problemStartFailed } from "../../src/yggdrasil/diagnose.ts";
import { UNIX_SOCKET_PATH_MAX_BYTES } from "../../src/yggdrasil/config.ts";
import { configFromSnake } from "../../src/core/config.ts";
import { classifyExit } from "../../src/yggdrasil/daemon.ts";

const HELP_047 = "Usage of /usr/sbin/yggdrasil:\n  -address\n  -autoconf\n  -genconf\n  -json\n  -loglevel string\n  -logto string\n  -normaliseconf\n  -subnet\n  -useconf\n  -useconffile string\n  -version\n";
const HELP_05 = `${HELP_047}  -exportkey\n  -publickey\n`;

test("parseBinaryProbe: Debian 0.4.7 prints 'unknown'; flags decide; a real version wins", () => {
  assert.deepEqual(parseBinaryProbe("Build name: unknown\nBuild version: unknown\n", HELP_047), { version: "unknown", line: "0.4" });
  assert.deepEqual(parseBinaryProbe("Build name: unknown\nBuild version: unknown\n", HELP_05), { version: "unknown", line: "0.5" });
  assert.deepEqual(parseBinaryProbe("Build name: yggdrasil\nBuild version: 0.5.12\n", HELP_05), { version: "0.5.12", line: "0.5" });
  assert.deepEqual(parseBinaryProbe("Build version: v0.4.7\n", HELP_047), { version: "v0.4.7", line: "0.4" });
  assert.deepEqual(parseBinaryProbe("", ""), { version: "unknown", line: "0.4" });
});

test("capabilityInMask reads CapEff bit 12", () => {
  const status = "Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n";
  assert.equal(capabilityInMask(status, "CapEff", CAP_NET_ADMIN), true);
  assert.equal(capabilityInMask(status.replace(/CapEff:\t\w+/, "CapEff:\t0000000000000000"), "CapEff", CAP_NET_ADMIN), false);
  assert.equal(capabilityInMask("CapEff:\t0000000000001000\n", "CapEff", CAP_NET_ADMIN), true);
  assert.equal(capabilityInMask("CapEff:\t0000000000000800\n", "CapEff", CAP_NET_ADMIN), false);
  assert.equal(capabilityInMask("nothing", "CapEff", CAP_NET_ADMIN), false);
});

test("getcapGrantsNetAdmin: old and new getcap formats", () => {
  assert.equal(getcapGrantsNetAdmin("/usr/sbin/yggdrasil cap_net_admin=ep\n"), true);
  assert.equal(getcapGrantsNetAdmin("/usr/sbin/yggdrasil = cap_net_admin+ep\n"), true);
  assert.equal(getcapGrantsNetAdmin("/usr/bin/x cap_net_bind_service,cap_net_admin=eip\n"), true);
  assert.equal(getcapGrantsNetAdmin("/usr/bin/x cap_net_admin=p\n"), false);
  assert.equal(getcapGrantsNetAdmin("/usr/bin/ping cap_net_raw=ep\n"), false);
  assert.equal(getcapGrantsNetAdmin(""), false);
});

const R: PrivilegeReport = { platform: "linux", uid: 1000, root: false, capNetAdmin: false, capNetAdminBounded: true, binaryCapNetAdmin: false, tunPresent: true, tunAccessible: true };
test("canSpawnTun", () => {
  assert.equal(canSpawnTun(R), false);
  assert.equal(canSpawnTun({ ...R, binaryCapNetAdmin: true }), true);
  assert.equal(canSpawnTun({ ...R, binaryCapNetAdmin: true, capNetAdminBounded: false }), false);
  assert.equal(canSpawnTun({ ...R, root: true, uid: 0, capNetAdmin: true }), true);
  assert.equal(canSpawnTun({ ...R, root: true, uid: 0, capNetAdmin: true, tunPresent: false }), false);
  assert.equal(canSpawnTun({ ...R, binaryCapNetAdmin: true, tunAccessible: false }), false);
  assert.equal(canSpawnTun({ ...R, platform: "darwin", root: true }), true);
  assert.equal(canSpawnTun({ ...R, platform: "darwin" }), false);
});

test("platformFromOsRelease and install commands", () => {
  assert.equal(platformFromOsRelease('ID=debian\nVERSION_ID="12"\n'), "debian");
  assert.equal(platformFromOsRelease('ID=ubuntu\nID_LIKE=debian\n'), "debian");
  assert.equal(platformFromOsRelease('ID="linuxmint"\nID_LIKE="ubuntu debian"\n'), "debian");
  assert.equal(platformFromOsRelease("ID=fedora\n"), "fedora");
  assert.equal(platformFromOsRelease('ID="rocky"\nID_LIKE="rhel centos fedora"\n'), "fedora");
  assert.equal(platformFromOsRelease("ID=arch\n"), "arch");
  assert.equal(platformFromOsRelease("ID=alpine\n"), "linux");
  assert.deepEqual(installFix("debian"), ["sudo apt install yggdrasil"]);
  assert.deepEqual(installFix("fedora"), ["sudo dnf install yggdrasil"]);
  assert.deepEqual(installFix("arch"), ["sudo pacman -S yggdrasil"]);
  assert.deepEqual(installFix("macos"), ["brew install yggdrasil"]);
  assert.ok(installFix("linux").length >= 4);
});

test("problems carry codes and exact fix commands", () => {
  const missing = problemBinaryMissing("debian");
  assert.equal(missing.code, "P2P_ERR_YGG_BINARY_MISSING");
  assert.deepEqual(missing.fix, ["sudo apt install yggdrasil"]);
  const np = problemNoPrivilege("debian", undefined, R);
  assert.equal(np.code, "P2P_ERR_YGG_NO_PRIVILEGE");
  assert.ok(np.fix.includes('sudo setcap cap_net_admin+ep "$(command -v yggdrasil)"'));
  assert.ok(np.fix.includes("sudo usermod -aG yggdrasil $USER"));
  assert.ok(problemNoPrivilege("debian", "/usr/sbin/yggdrasil", { ...R, tunPresent: false }).fix.includes("sudo modprobe tun"));
  assert.ok(problemNoPrivilege("macos", "/opt/homebrew/bin/yggdrasil", { ...R, platform: "darwin" }).fix.includes("sudo brew services start yggdrasil"));
  const denied = problemAdminUnreachable("debian", ["/var/run/yggdrasil/yggdrasil.sock"], "EACCES");
  assert.equal(denied.code, "P2P_ERR_YGG_ADMIN_UNREACHABLE");
  assert.equal(denied.fix[0], "sudo usermod -aG yggdrasil $USER");
  assert.equal(problemAdminUnreachable("debian", ["/x.sock"], "ENOENT").fix[0], "sudo systemctl enable --now yggdrasil");
});

test("classifyExit: panic + status 2 on a permission error = no privilege; other exits = start failed", () => {
  const tail = "2026/11/26 10:45:46 TCP listener started on [::1]:45551\npanic: permission denied\n\ngoroutine 8 [running]:\ngithub.com/yggdrasil-network/yggdrasil-go/src/tun.(*TunAdapter).setup(...)\n";
  assert.deepEqual(classifyExit({ code: 2, signal: null }, tail), { code: "P2P_ERR_YGG_NO_PRIVILEGE", message: "panic: permission denied" });
  assert.equal(classifyExit({ code: 2, signal: null }, "panic: operation not permitted\n").code, "P2P_ERR_YGG_NO_PRIVILEGE");
  const other = classifyExit({ code: 1, signal: null }, "2026/11/26 failed to parse config\n");
  assert.equal(other.code, "P2P_ERR_YGG_START_FAILED");
  assert.match(other.message, /status 1.*failed to parse config/);
  assert.match(classifyExit({ code: null, signal: "SIGKILL" }, "").message, /killed by SIGKILL/);
  assert.equal(classifyExit({ code: 2, signal: null }, "panic: runtime error: index out of range\n").code, "P2P_ERR_YGG_START_FAILED");
});

test("classifyExit: a taken interface name (EBUSY) is a retried start failure naming the interface, not a privilege problem", () => {
  // Every TUN panic's stack names src/tun/tun_linux.go: only the panic line may decide.
  const tail = "panic: device or resource busy\n\ngoroutine 1 [running]:\ngithub.com/yggdrasil-network/yggdrasil-go/src/tun.(*TunAdapter).setup(...)\n\tgithub.com/yggdrasil-network/yggdrasil-go/src/tun/tun_linux.go:20 +0xd5\n";
  const c = classifyExit({ code: 2, signal: null }, tail, "ygg-0123456789a");
  assert.equal(c.code, "P2P_ERR_YGG_START_FAILED");
  assert.match(c.message, /the network interface ygg-0123456789a is busy.*panic: device or resource busy/);
  const other = classifyExit({ code: 2, signal: null }, "panic: some other failure\n\tsrc/tun/tun_linux.go:20 /dev/net/tun\n");
  assert.equal(other.code, "P2P_ERR_YGG_START_FAILED", "the stack below the panic line does not count");
  assert.equal(classifyExit({ code: 2, signal: null }, "panic: open /dev/net/tun: no such file or directory\n").code, "P2P_ERR_YGG_NO_PRIVILEGE");
});

test("a data dir too long for the spawned daemon's admin socket is a problem with the longest path that fits", () => {
  // <data_dir>/yggdrasil/admin.sock adds 21 bytes, so 82 bytes of data dir is the most a 103-byte socket path allows.
  const fits = `/${"d".repeat(81)}`;
  assert.equal(Buffer.byteLength(`${fits}/yggdrasil/admin.sock`), UNIX_SOCKET_PATH_MAX_BYTES);
  assert.equal(problemAdminSocketTooLong(fits), undefined);
  const long = `${fits}x`;
  const p = problemAdminSocketTooLong(long);
  assert.equal(p?.code, "P2P_ERR_CONFIG", "the code the supervisor reports when the same path fails");
  assert.match(p!.message, new RegExp(`${long}/yggdrasil/admin\\.sock would be 104 bytes`));
  assert.match(p!.fix[0]!, /at most 82 bytes \(declaw: --data-dir or DECLAW_DATA_DIR; OpenClaw plugin: data_dir\)/);
  assert.match(p!.fix[1]!, /set yggdrasil to "system"/);
  // bytes, not characters
  assert.ok(problemAdminSocketTooLong(`/${"é".repeat(41)}`), "42 characters, but 83 bytes");
});

test("fixes name config keys as config.json and the plugin spell them (snake_case keys that exist)", () => {
  const fixes = [
    ...problemAdminUnreachable("debian", ["/x.sock"], "ENOENT").fix,
    ...problemAdminUnreachable("debian", ["/x.sock"], "EACCES").fix,
    ...problemStartFailed("failed", "/d/yggdrasil.log").fix,
    ...problemAdminSocketTooLong(`/${"d".repeat(100)}`)!.fix,
  ].join("\n");
  assert.match(fixes, /set yggdrasil_admin_socket to the daemon's AdminListen/);
  assert.doesNotMatch(fixes, /adminSocket|Listen\/Peers/, "no internal (camelCase) or daemon-side names");
  for (const key of new Set(fixes.match(/\byggdrasil_[a-z_]+/g) ?? [])) {
    assert.doesNotThrow(() => configFromSnake({ [key]: key === "yggdrasil_multicast" ? false : key.endsWith("socket") ? "/x.sock" : [] }), `${key} is a config key`);
  }
});
