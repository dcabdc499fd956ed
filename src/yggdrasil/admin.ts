/**
 * Yggdrasil admin API: one JSON request per connection over the `AdminListen` unix socket (no keepalive, so the
 * daemon closes after its reply). Reply shapes differ between 0.4 and 0.5; `normalise*` turn both into one shape and
 * are pure so they can be tested with recorded replies. An incomplete request makes the daemon wait forever, and a
 * wedged daemon may never answer: every call has a timeout.
 */
import { connect } from "node:net";
import { canonicalAddress } from "../core/address.ts";
import { P2PError } from "../core/errors.ts";

export const ADMIN_TIMEOUT_MS = 3000;
const MAX_REPLY_BYTES = 4 * 1024 * 1024;

export interface AdminSelf {
  address: string;
  subnet: string;
  key: string;
  buildName?: string;
  buildVersion?: string;
}

export interface AdminPeer {
  uri?: string;
  /** Canonical text; "" while a configured 0.5 peer is not connected (0.5 omits it then). */
  address: string;
  /** Hex public key; "" when unknown. */
  key: string;
  up: boolean;
  inbound?: boolean;
  uptimeMs?: number;
  lastError?: string;
}

/** Thrown for a reply with `status: "error"`; `daemonError` is the daemon's own text. */
export class AdminCallError extends P2PError {
  readonly daemonError: string;
  constructor(request: string, daemonError: string) {
    super("P2P_ERR_YGG_ADMIN", `yggdrasil admin call ${request} failed: ${daemonError}`);
    this.daemonError = daemonError;
  }
}

/** Sends one request and resolves with the reply's `response` object. */
export function adminRequest(socketPath: string, request: string, args: Record<string, unknown> = {}, timeoutMs = ADMIN_TIMEOUT_MS): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let buf = "";
    let settled = false;
    const finish = (err: Error | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => {
      finish(new P2PError("P2P_ERR_YGG_ADMIN_UNREACHABLE", `yggdrasil admin socket ${socketPath} did not answer ${request} within ${timeoutMs} ms`));
    }, timeoutMs);
    const tryParse = (final: boolean): void => {
      let reply: unknown;
      try {
        reply = JSON.parse(buf);
      } catch {
        if (final) finish(new P2PError("P2P_ERR_YGG_ADMIN", `yggdrasil admin socket ${socketPath} sent a reply that is not JSON`));
        return; // partial reply: wait for more
      }
      const r = reply as { status?: unknown; error?: unknown; response?: unknown };
      if (typeof reply !== "object" || reply === null) finish(new P2PError("P2P_ERR_YGG_ADMIN", `yggdrasil admin reply to ${request} is not an object`));
      else if (r.status === "success") finish(undefined, r.response ?? {});
      else finish(new AdminCallError(request, typeof r.error === "string" ? r.error : "unknown error"));
    };
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(JSON.stringify({ request, arguments: args, keepalive: false })));
    sock.on("data", (d: string) => {
      buf += d;
      if (buf.length > MAX_REPLY_BYTES) finish(new P2PError("P2P_ERR_YGG_ADMIN", `yggdrasil admin reply to ${request} is too large`));
      else tryParse(false);
    });
    sock.on("end", () => tryParse(true));
    sock.on("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "EACCES"
        ? "permission denied (not in the socket's group?)"
        : err.code === "ENOENT" ? "no such socket (daemon not running?)"
        : err.code === "ECONNREFUSED" ? "connection refused (stale socket file, daemon gone)"
        : err.message;
      const e = new P2PError("P2P_ERR_YGG_ADMIN_UNREACHABLE", `yggdrasil admin socket ${socketPath}: ${why}`, { cause: err });
      finish(e); // callers read `cause.code` (EACCES means a group fix, not a missing daemon)
    });
  });
}

function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

/** getSelf of 0.4 (`coords`) and 0.5 (`routing_entries`) alike; throws P2P_ERR_YGG_ADMIN when fields are missing. */
export function normaliseSelf(response: unknown): AdminSelf {
  const r = (response ?? {}) as Record<string, unknown>;
  const address = canonicalAddress(str(r.address) ?? "");
  const key = str(r.key);
  if (!address || !key) throw new P2PError("P2P_ERR_YGG_ADMIN", "yggdrasil getSelf reply lacks address or key");
  const out: AdminSelf = { address, subnet: str(r.subnet) ?? "", key };
  const bn = str(r.build_name);
  const bv = str(r.build_version);
  if (bn !== undefined) out.buildName = bn;
  if (bv !== undefined) out.buildVersion = bv;
  return out;
}

/**
 * getPeers: 0.4 lists connected peers only (`remote`, `uptime` s, no `up`); 0.5 also lists configured peers that
 * are down (`up: false`, no address, empty key, `last_error`). 0.3 used an object keyed by address; accepted too.
 */
export function normalisePeers(response: unknown): AdminPeer[] {
  const raw = (response ?? {}) as { peers?: unknown };
  let list: Record<string, unknown>[] = [];
  if (Array.isArray(raw.peers)) list = raw.peers.filter((p): p is Record<string, unknown> => typeof p === "object" && p !== null);
  else if (typeof raw.peers === "object" && raw.peers !== null) {
    list = Object.entries(raw.peers as Record<string, unknown>).map(([address, p]) => ({ address, ...(p as object) }));
  }
  return list.map((p) => {
    const peer: AdminPeer = {
      address: canonicalAddress(str(p.address) ?? "") ?? "",
      key: str(p.key) ?? "",
      up: typeof p.up === "boolean" ? p.up : true, // 0.4 only lists live links
    };
    const uri = str(p.remote) ?? str(p.endpoint);
    if (uri) peer.uri = uri;
    if (typeof p.inbound === "boolean") peer.inbound = p.inbound;
    if (typeof p.uptime === "number" && Number.isFinite(p.uptime)) peer.uptimeMs = Math.round(p.uptime * 1000);
    const le = str(p.last_error);
    if (le) peer.lastError = le;
    return peer;
  });
}

/**
 * A peer URI as 0.4.7's getPeers `remote` shows it, for telling whether a configured peer is linked: 0.4.7 drops the
 * query (`?key=...`) and a trailing slash (`tcp://127.0.0.1:39411?key=<hex>` and `tcp://[::1]:39412/` come back as
 * `tcp://127.0.0.1:39411` and `tcp://[::1]:39412`), keeps the host as configured (a hostname, or `[0:0::1]`, stays
 * as written: checked on Debian's 0.4.7), and Go lowercases the scheme. So: no query, fragment or trailing slash,
 * lowercase scheme, the rest as given.
 */
export function peerUriKey(uri: string): string {
  const bare = uri.trim().replace(/[?#].*$/s, "").replace(/\/+$/, "");
  return bare.replace(/^[a-z][a-z0-9+.-]*:/i, (scheme) => scheme.toLowerCase());
}

export async function getSelf(socketPath: string, timeoutMs?: number): Promise<AdminSelf> {
  return normaliseSelf(await adminRequest(socketPath, "getSelf", {}, timeoutMs));
}

export async function getPeers(socketPath: string, timeoutMs?: number): Promise<AdminPeer[]> {
  return normalisePeers(await adminRequest(socketPath, "getPeers", {}, timeoutMs));
}

/** TUN state (`getTUN`, both lines): `enabled` turns true only once the interface is up with its address. */
export async function getTun(socketPath: string, timeoutMs?: number): Promise<{ enabled: boolean; name?: string; mtu?: number }> {
  const r = (await adminRequest(socketPath, "getTUN", {}, timeoutMs)) as Record<string, unknown>;
  const out: { enabled: boolean; name?: string; mtu?: number } = { enabled: r.enabled === true };
  if (typeof r.name === "string") out.name = r.name;
  if (typeof r.mtu === "number") out.mtu = r.mtu;
  return out;
}

/**
 * Idempotent: "peer already configured" counts as success. Resolves true when this call added the peer, false when
 * the daemon had it already (e.g. from its config file): a caller that takes back what it added must not take that.
 */
export async function addPeer(socketPath: string, uri: string, timeoutMs?: number): Promise<boolean> {
  try {
    await adminRequest(socketPath, "addPeer", { uri }, timeoutMs);
    return true;
  } catch (err) {
    if (err instanceof AdminCallError && /already configured/i.test(err.daemonError)) return false;
    throw err;
  }
}

/** Idempotent: "peer not configured" counts as success. */
export async function removePeer(socketPath: string, uri: string, timeoutMs?: number): Promise<void> {
  try {
    await adminRequest(socketPath, "removePeer", { uri }, timeoutMs);
  } catch (err) {
    if (err instanceof AdminCallError && /not configured/i.test(err.daemonError)) return;
    throw err;
  }
}
