/**
 * The daemon config we write for spawn mode. Pure. Only fields that both 0.4.x and 0.5.x understand
 * (/work/shared/docs/yggdrasil.md): `PrivateKey` as hex(seed || public key) — never `PrivateKeyPath`, which 0.4.7
 * silently ignores and then runs with a random key — and no `PublicKey` (0.4.7 ignores it anyway).
 */
import { parseIPv6 } from "../core/address.ts";

/** Linux IFNAMSIZ is 16 including the NUL. */
export const IFNAME_MAX_CHARS = 15;
/** 0.4.7 clamps to its own maximum (53049 seen); asking for the largest keeps both lines at their best. */
export const DEFAULT_IF_MTU = 65535;
/** sun_path is 108 bytes on Linux, 104 on macOS; stay below both with the NUL. */
export const UNIX_SOCKET_PATH_MAX_BYTES = 103;

export interface DaemonConfigInput {
  privateKeyHex: string;
  /** Our derived address; names the interface so two nodes on one host do not fight over one TUN. */
  address: string;
  listen: readonly string[];
  peers: readonly string[];
  adminSocketPath: string;
  multicast: boolean;
  ifName?: string;
  ifMtu?: number;
}

/**
 * `ygg-` + the last 11 hex digits of the address (its first bytes are the prefix and the leading-ones count): 44 bits,
 * the most IFNAMSIZ leaves after the prefix, so two identities on one host practically never want the same name
 * (a taken name fails the start with EBUSY). Declaw 0.1.0 used only 4 hex digits (`ygg-abcd`): an upgraded node
 * comes up on a new interface name, which only matters to firewall rules written for the old one.
 */
export function ifNameFor(address: string): string {
  const b = parseIPv6(address);
  if (!b) throw new RangeError(`not an IPv6 address: ${address}`);
  return `ygg-${Buffer.from(b.subarray(10)).toString("hex").slice(1)}`;
}

export function buildDaemonConfig(i: DaemonConfigInput): Record<string, unknown> {
  if (!/^[0-9a-f]{128}$/.test(i.privateKeyHex)) throw new RangeError("PrivateKey must be 128 lowercase hex chars (seed || public key)");
  const ifName = i.ifName ?? ifNameFor(i.address);
  if (ifName !== "none" && ifName !== "auto" && (ifName.length === 0 || ifName.length > IFNAME_MAX_CHARS)) {
    throw new RangeError(`IfName must be 1..${IFNAME_MAX_CHARS} characters`);
  }
  if (Buffer.byteLength(i.adminSocketPath) > UNIX_SOCKET_PATH_MAX_BYTES) {
    throw new RangeError(`admin socket path is longer than ${UNIX_SOCKET_PATH_MAX_BYTES} bytes: ${i.adminSocketPath}`);
  }
  // The daemon parses AdminListen as a URI (Go's url.Parse): a `%` without two hex digits after it fails there, and
  // the daemon exits at every start with an error about the URI, not the directory.
  if (/%(?![0-9a-fA-F]{2})/.test(i.adminSocketPath)) {
    throw new RangeError(`the admin socket path ${i.adminSocketPath} has a % that is not followed by two hex digits, which yggdrasil cannot parse in its AdminListen URI`);
  }
  return {
    PrivateKey: i.privateKeyHex,
    Peers: [...i.peers],
    InterfacePeers: {},
    Listen: [...i.listen],
    AdminListen: `unix://${i.adminSocketPath}`,
    // `[]` turns LAN discovery off; the default (`.*`) would peer with every Yggdrasil node on the LAN.
    MulticastInterfaces: i.multicast ? [{ Regex: ".*", Beacon: true, Listen: true, Port: 0 }] : [],
    AllowedPublicKeys: [],
    IfName: ifName,
    IfMTU: i.ifMtu ?? DEFAULT_IF_MTU,
    // NodeInfo is readable by the whole network: say nothing, and hide build/platform details.
    NodeInfoPrivacy: true,
    NodeInfo: {},
  };
}

export function renderDaemonConfig(cfg: Record<string, unknown>): string {
  return `${JSON.stringify(cfg, null, 2)}\n`;
}
