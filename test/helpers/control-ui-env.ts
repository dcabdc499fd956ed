/**
 * The world for the Control UI browser test: one real OpenClaw gateway ("gw", plugin installed from the packed
 * tarball, mock model, Yggdrasil off) in namespace A, and a plain `declaw run` node ("bob") in namespace B.
 *
 * Bob's address must contain `::` (the Control UI cannot open session keys with an empty `:` segment, so this is the
 * case worth testing). A node's own 200::/8 address is derived from its key, and RFC 5952 compresses only runs of
 * two or more zero groups, so a derived address practically never has `::` (about 7 in 2^32 keys). Bob therefore
 * uses an address from his routed /64 (300::/8): `<his subnet prefix>::1`, which always prints with `::`. The core
 * binds such a source to its key by construction (keyMatchesAddress: a 300::/8 address in the key's derived /64), as
 * it does for hosts behind a Yggdrasil router. Bob's identity is real (loadOrCreateIdentity); the one thing set by
 * hand is the node's "self_address" meta (the address the node answers for; in system mode the daemon's address is
 * stored there the same way), so envelopes, receipts and pings name the /64 address.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deriveSubnet, formatIPv6, parseIPv6, peerIdFromAddress } from "../../src/core/address.ts";
import { Node } from "../../src/core/node.ts";
import { BIN, ROOT } from "./openclaw-pack.ts";
import { cli as declawCli, startNode, type RunningNode } from "./declaw.ts";
import { Testnet, type Namespace } from "./netns.ts";
import { OpenClawInstance, PEER_PORT } from "./openclaw-gateway.ts";
import { packPlugin } from "./openclaw-pack.ts";

export const GATEWAY_TOKEN = "declaw-control-ui-test-token-0123456789";

/** Edits ~/.openclaw/openclaw.json of `gw` (restart the gateway afterwards: see control-ui.md on hot reloads). */
export function editConfig(gw: OpenClawInstance, fn: (c: Record<string, any>) => void): void {
  const c = gw.readConfig();
  fn(c);
  writeFileSync(gw.configFile(), `${JSON.stringify(c, null, 2)}\n`);
}

export interface DeclawPeer {
  name: string;
  dir: string;
  address: string;
  peerId: string;
  ns: Namespace;
  node?: RunningNode;
  /** `declaw --data-dir <dir> --json <args>` in the peer's namespace. */
  cli(args: string[]): Promise<{ code: number | null; json: any; stdout: string; stderr: string }>;
}

export interface ControlUiEnv {
  work: string;
  net: Testnet;
  nsA: Namespace;
  nsB: Namespace;
  bDev: string;
  gw: OpenClawInstance;
  bob: DeclawPeer;
  packNotes: string[];
}

/** `<subnet prefix>::1` for the identity in `dir` (created if missing). */
export function subnetAddress(dir: string): { address: string; identityAddress: string } {
  const n = Node.open({ dataDir: dir, config: { yggdrasil: "off" } });
  try {
    const net = deriveSubnet(n.identity.publicKey);
    net[15] = 1;
    return { address: formatIPv6(net), identityAddress: n.identity.address };
  } finally {
    n.close();
  }
}

/** Makes the node in `dir` answer for `address` (see the file comment). */
export function setSelfAddress(dir: string, address: string): void {
  const n = Node.open({ dataDir: dir, config: { yggdrasil: "off" } });
  try {
    n.store.setMeta("self_address", address);
  } finally {
    n.close();
  }
}

export function declawPeer(name: string, dir: string, address: string, ns: Namespace): DeclawPeer {
  return {
    name,
    dir,
    address,
    peerId: peerIdFromAddress(parseIPv6(address)!),
    ns,
    cli: (args) => declawCli(ns, dir, args),
  };
}

/** Builds the world; the caller destroys `net` (and stops the gateway) in `after`. */
export async function setupControlUiEnv(work: string): Promise<ControlUiEnv> {
  const packed = packPlugin(work);
  const packNotes = [...packed.addedFields, ...packed.addedFiles.map((f) => `files:${f}`)];
  const net = new Testnet();
  const nsA = net.add();
  const nsB = net.add();
  const { aDev, bDev } = net.link(nsA, nsB);
  const gw = new OpenClawInstance({ name: "gw", ns: nsA, workDir: work });
  nsA.addAddress(aDev, `${gw.address}/7`);

  const bobDir = join(work, "bob");
  mkdirSync(bobDir, { recursive: true });
  const { address: bobAddress } = subnetAddress(bobDir);
  if (!bobAddress.includes("::")) throw new Error(`bob's address ${bobAddress} has no "::"`);
  setSelfAddress(bobDir, bobAddress);
  // 200::/7 on-link on both sides: covers the gateway's 200::/8 address and bob's 300::/8 one.
  nsB.addAddress(bDev, `${bobAddress}/7`);
  const bob = declawPeer("bob", bobDir, bobAddress, nsB);

  const inst = await gw.cli(["plugins", "install", "--force", "--accept-capabilities", `npm-pack:${packed.tarball}`]);
  if (inst.code !== 0) throw new Error(`plugins install failed\n${inst.stderr}\n${inst.stdout}`);
  gw.writeConfig({ yggdrasil: "off", peer_port: PEER_PORT });
  // Token auth: with auth "none" the Control UI never grants a plugin tab frame, so its session links do nothing.
  const c = gw.readConfig();
  c.gateway.auth = { mode: "token", token: GATEWAY_TOKEN };
  writeFileSync(gw.configFile(), `${JSON.stringify(c, null, 2)}\n`);
  return { work, net, nsA, nsB, bDev, gw, bob, packNotes };
}

export async function startPeer(p: DeclawPeer): Promise<void> {
  p.node = await startNode(p.ns, p.dir, ["--yggdrasil", "off"]);
}

/**
 * A peer the gateway has never heard of sends one message from namespace `ns`: its derived address is added to `dev`
 * deprecated (preferred_lft 0, so the kernel never picks it for anyone else) and bound as the source.
 */
export async function sendAsStranger(ns: Namespace, dev: string, dir: string, to: string, text: string): Promise<{ address: string; result: any }> {
  mkdirSync(dir, { recursive: true });
  const n = Node.open({ dataDir: dir, config: { yggdrasil: "off" } });
  const address = n.identity.address;
  n.close();
  ns.exec("ip", ["-6", "addr", "add", `${address}/128`, "dev", dev, "nodad", "preferred_lft", "0"]);
  const script = `
    import { Node } from ${JSON.stringify(join(ROOT, "src/core/node.ts"))};
    const n = Node.open({ dataDir: ${JSON.stringify(dir)}, config: { yggdrasil: "off" }, localAddress: ${JSON.stringify(address)} });
    const r = await n.send(${JSON.stringify(to)}, ${JSON.stringify(text)});
    n.close();
    process.stdout.write(JSON.stringify(r));`;
  const r = await ns.run(join(BIN, "node"), ["--input-type=module", "-e", script], { env: { PATH: process.env.PATH } });
  if (r.code !== 0) throw new Error(`stranger send failed: ${r.stderr}`);
  return { address, result: JSON.parse(r.stdout) };
}
