/**
 * Who may create the TUN, judged from what the machine shows (/proc/self/status, getcap output, access to
 * /dev/net/tun) by pure functions, and the fixes named for each case (/work/shared/docs/yggdrasil.md, Privileges).
 * A container started without --cap-add NET_ADMIN has CAP_NET_ADMIN outside its bounding set: neither root nor setcap
 * can help there.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { canSpawnTun, getcapGrantsNetAdmin, privilegeReport, type PrivilegeInputs } from "../../src/yggdrasil/privileges.ts";
import { problemNoPrivilege } from "../../src/yggdrasil/diagnose.ts";
import { tunDeviceCheck, tunPrivilegeCheck } from "../../src/hosts/cli/setup.ts";

const BIN = "/usr/sbin/yggdrasil";
const status = (mask: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapPrm:\t${mask}\nCapEff:\t${mask}\nCapBnd:\t${mask}\nCapAmb:\t0000000000000000\n`;
/** Root on a host (docker's default set also carries bit 12 only with --cap-add NET_ADMIN). */
const FULL = status("000001fffeffffff");
/** `setpriv --bounding-set=-all` as root, as it shows in /proc/self/status. */
const NO_BOUNDING = status("0000000000000000");
/** `setpriv --bounding-set=-net_admin` as root: everything but bit 12. */
const NO_NET_ADMIN = status("000001fffeffefff");
/** A user process: empty effective set, full bounding set. */
const USER = "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001fffeffffff\n";

const seen = (o: Partial<PrivilegeInputs>): PrivilegeInputs => ({ platform: "linux", uid: 1000, status: USER, tunPresent: true, tunAccessible: true, binaryCapNetAdmin: false, ...o });

test("getcap: every capability (=ep, all=ep, old '= =ep') grants cap_net_admin", () => {
  assert.equal(getcapGrantsNetAdmin(`${BIN} =ep\n`), true);
  assert.equal(getcapGrantsNetAdmin(`${BIN} all=ep\n`), true);
  assert.equal(getcapGrantsNetAdmin(`${BIN} = =ep\n`), true);
  assert.equal(getcapGrantsNetAdmin(`${BIN} =eip\n`), true);
});

test("getcap: cap_net_admin with + or =, with or without i, in either getcap format", () => {
  for (const caps of ["cap_net_admin+ep", "cap_net_admin+eip", "cap_net_admin=ep", "cap_net_admin=eip", "cap_net_admin=pe", "cap_net_raw,cap_net_admin+ep", "cap_net_admin=e+p"]) {
    assert.equal(getcapGrantsNetAdmin(`${BIN} ${caps}\n`), true, caps);
    assert.equal(getcapGrantsNetAdmin(`${BIN} = ${caps}\n`), true, `old format: ${caps}`);
  }
  assert.equal(getcapGrantsNetAdmin(`/opt/my tools/yggdrasil cap_net_admin=ep\n`), true, "a file name with a space");
});

test("getcap: no grant without both e and p, for another capability, or when a later clause takes it back", () => {
  for (const caps of ["cap_net_admin=p", "cap_net_admin+e", "cap_net_admin=i", "cap_net_raw=ep", "=p", "=ep cap_net_admin-e", "cap_net_admin=ep cap_net_admin-p"]) {
    assert.equal(getcapGrantsNetAdmin(`${BIN} ${caps}\n`), false, caps);
  }
  assert.equal(getcapGrantsNetAdmin(""), false, "no file capabilities: getcap prints nothing");
});

test("privilegeReport reads CAP_NET_ADMIN from CapEff and CapBnd, for root too", () => {
  const host = privilegeReport(seen({ uid: 0, status: FULL }));
  assert.equal(host.root, true);
  assert.equal(host.capNetAdmin, true);
  assert.equal(host.capNetAdminBounded, true);
  for (const s of [NO_BOUNDING, NO_NET_ADMIN]) {
    const container = privilegeReport(seen({ uid: 0, status: s }));
    assert.equal(container.root, true);
    assert.equal(container.capNetAdmin, false, "root without the capability is not privileged");
    assert.equal(container.capNetAdminBounded, false);
    assert.equal(canSpawnTun(container), false);
  }
  const user = privilegeReport(seen({}));
  assert.equal(user.capNetAdmin, false);
  assert.equal(user.capNetAdminBounded, true);
  assert.equal(privilegeReport(seen({ tunAccessible: false })).tunAccessible, false);
});

test("diagnosis: without CAP_NET_ADMIN in the bounding set the fix is --cap-add NET_ADMIN, never setcap", () => {
  for (const r of [
    privilegeReport(seen({ uid: 0, status: NO_BOUNDING })),
    privilegeReport(seen({ uid: 1000, status: NO_NET_ADMIN.replace(/CapEff:\t\w+/, "CapEff:\t0000000000000000") })),
    privilegeReport(seen({ status: NO_NET_ADMIN, binaryCapNetAdmin: true })),
  ]) {
    const p = problemNoPrivilege("debian", BIN, r);
    assert.equal(p.code, "P2P_ERR_YGG_NO_PRIVILEGE");
    assert.match(p.message, /CAP_NET_ADMIN is not in this process's capability bounding set/);
    assert.match(p.fix[0]!, /^run the container with --cap-add NET_ADMIN --device \/dev\/net\/tun/);
    assert.ok(!p.fix.some((f) => f.includes("setcap cap_net_admin")), JSON.stringify(p.fix));
  }
});

test("diagnosis: with the capability in the bounding set, setcap on the binary is still the fix", () => {
  const p = problemNoPrivilege("debian", BIN, privilegeReport(seen({})));
  assert.ok(p.fix.includes(`sudo setcap cap_net_admin+ep ${BIN}`));
  assert.doesNotMatch(p.fix.join("\n"), /--cap-add/);
});

test("setup's TUN privilege: root passes only with CAP_NET_ADMIN effective", () => {
  const container = tunPrivilegeCheck(privilegeReport(seen({ uid: 0, status: NO_BOUNDING })), BIN);
  assert.equal(container.ok, false, "root in a container without NET_ADMIN");
  assert.match(container.detail, /not in the capability bounding set/);
  assert.match(container.fix![0]!, /--cap-add NET_ADMIN --device \/dev\/net\/tun/);
  assert.ok(!container.fix!.some((f) => f.includes("setcap cap_net_admin")), "no setcap command");
  assert.deepEqual(tunPrivilegeCheck(privilegeReport(seen({ uid: 0, status: FULL })), BIN), { check: "TUN privilege", ok: true, detail: "root" });
  assert.equal(tunPrivilegeCheck(privilegeReport(seen({ uid: 0, status: FULL, binaryCapNetAdmin: true })), BIN).detail, "root; binary has cap_net_admin for other users");
});

test("setup's TUN privilege: a user needs the binary's file capability, and it counts only within the bounding set", () => {
  assert.deepEqual(tunPrivilegeCheck(privilegeReport(seen({ binaryCapNetAdmin: true })), BIN), { check: "TUN privilege", ok: true, detail: "binary has cap_net_admin" });
  const user = tunPrivilegeCheck(privilegeReport(seen({})), BIN);
  assert.equal(user.ok, false);
  assert.equal(user.fix![0], `sudo setcap cap_net_admin+ep ${BIN}`);
  const capped = tunPrivilegeCheck(privilegeReport(seen({ status: NO_NET_ADMIN.replace(/CapEff:\t\w+/, "CapEff:\t0000000000000000"), binaryCapNetAdmin: true })), BIN);
  assert.equal(capped.ok, false);
  assert.match(capped.fix![0]!, /--cap-add NET_ADMIN/);
});

test("setup's /dev/net/tun line: ok only when the device is there and this user can open it", () => {
  const denied = tunDeviceCheck(privilegeReport(seen({ tunAccessible: false })));
  assert.equal(denied.ok, false);
  assert.equal(denied.detail, "present but not readable and writable by uid 1000");
  assert.deepEqual(denied.fix, ["sudo chmod 0666 /dev/net/tun"]);
  const missing = tunDeviceCheck(privilegeReport(seen({ tunPresent: false, tunAccessible: false })));
  assert.equal(missing.ok, false);
  assert.equal(missing.detail, "missing");
  assert.match(missing.fix!.join("\n"), /--device \/dev\/net\/tun/);
  assert.deepEqual(tunDeviceCheck(privilegeReport(seen({}))), { check: "/dev/net/tun", ok: true, detail: "present, readable and writable" });
});
