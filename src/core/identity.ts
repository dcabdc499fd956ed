/**
 * The node's identity: one Ed25519 key pair, stored in `<data_dir>/identity.json` (mode 0600), created atomically on
 * first use and never overwritten. The Yggdrasil address and subnet are derived from the public key and stored
 * alongside so that a mismatch (a hand-edited or damaged file) is caught before the node speaks. (Node.open refuses
 * to create one for a data directory whose database was already used under an identity.)
 */
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { deriveAddress, deriveSubnet, formatIPv6, bytesEqual } from "./address.ts";
import { dataDirError } from "./config.ts";
import { P2PError } from "./errors.ts";
import { createFileExclusive } from "./fsutil.ts";
import { generateKeyPair, keyPairFromSeed, type KeyPair } from "./keys.ts";

export const IDENTITY_FILE = "identity.json";
const IDENTITY_FORMAT_VERSION = 1;

export interface Identity extends KeyPair {
  /** Canonical text of the derived 200::/8 address. */
  address: string;
  addressBytes: Uint8Array;
  /** The routed /64, e.g. `300:6a38:a928:9062::/64`. */
  subnet: string;
  publicKeyBase64: string;
  file: string;
  createdAt: number;
}

interface IdentityFile {
  version: number;
  publicKey: string;
  privateKey: string;
  address: string;
  subnet: string;
  createdAt: number;
}

/** Creates `dataDir` (mode 0700) unless it exists. Failures are P2P_ERR_DATA_DIR saying why (e.g. it is a file). */
export function ensureDataDir(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw dataDirError(dataDir, err) ?? new P2PError("P2P_ERR_DATA_DIR", `cannot create data directory ${dataDir}: ${(err as Error).message}`, {
      hint: "choose a writable directory with --data-dir, or fix its permissions",
      cause: err,
    });
  }
}

function describe(kp: KeyPair): Omit<Identity, "file" | "createdAt"> {
  const addressBytes = deriveAddress(kp.publicKey);
  return {
    ...kp,
    address: formatIPv6(addressBytes),
    addressBytes,
    subnet: `${formatIPv6(deriveSubnet(kp.publicKey))}/64`,
    publicKeyBase64: Buffer.from(kp.publicKey).toString("base64"),
  };
}

/** Loads the identity of `dataDir`, creating it on first use. Throws P2P_ERR_IDENTITY_CORRUPT naming the file. */
export function loadOrCreateIdentity(dataDir: string): Identity {
  ensureDataDir(dataDir);
  const file = join(dataDir, IDENTITY_FILE);
  let exists = true;
  try {
    statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw unreadable(dataDir, file, err);
    exists = false;
  }
  if (!exists) {
    const kp = generateKeyPair();
    const d = describe(kp);
    const body: IdentityFile = {
      version: IDENTITY_FORMAT_VERSION,
      publicKey: d.publicKeyBase64,
      privateKey: Buffer.from(kp.seed).toString("base64"),
      address: d.address,
      subnet: d.subnet,
      createdAt: Date.now(),
    };
    try {
      // Exclusive create: if another process won the race, we load its identity below instead of replacing it.
      createFileExclusive(file, `${JSON.stringify(body, null, 2)}\n`, 0o600);
    } catch (err) {
      throw new P2PError("P2P_ERR_DATA_DIR", `cannot write ${file}: ${(err as Error).message}`, {
        hint: "make the data directory writable by this user",
        cause: err,
      });
    }
  }
  return loadIdentity(file);
}

export function loadIdentity(file: string): Identity {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw unreadable(dirname(file), file, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt(file, "it is not valid JSON");
  }
  const f = parsed as Partial<IdentityFile>;
  if (typeof f?.version === "number" && Number.isInteger(f.version) && f.version > IDENTITY_FORMAT_VERSION) {
    throw new P2PError("P2P_ERR_IDENTITY_CORRUPT", `identity file ${file} was written by a newer declaw (format version ${f.version}; this one reads ${IDENTITY_FORMAT_VERSION}); refusing to start`, {
      hint: "upgrade declaw (and the OpenClaw plugin) to the version that wrote it; the file is left as it is",
    });
  }
  if (typeof parsed !== "object" || parsed === null || f.version !== IDENTITY_FORMAT_VERSION) {
    throw corrupt(file, `unknown format (expected version ${IDENTITY_FORMAT_VERSION})`);
  }
  const seed = decodeB64(f.privateKey, 32);
  const pub = decodeB64(f.publicKey, 32);
  if (!seed || !pub) throw corrupt(file, "privateKey and publicKey must be 32 bytes of base64");
  const kp = keyPairFromSeed(seed);
  if (!bytesEqual(kp.publicKey, pub)) throw corrupt(file, "publicKey does not belong to privateKey");
  const d = describe(kp);
  if (f.address !== d.address) throw corrupt(file, `stored address ${String(f.address)} does not match its key (${d.address})`);
  if (f.subnet !== d.subnet) throw corrupt(file, `stored subnet ${String(f.subnet)} does not match its key (${d.subnet})`);
  return { ...d, file, createdAt: typeof f.createdAt === "number" ? f.createdAt : 0 };
}

/** The key as Yggdrasil 0.4 and 0.5 both accept it in `PrivateKey`: hex(seed || public key), 128 characters. */
export function yggdrasilPrivateKeyHex(id: KeyPair): string {
  return Buffer.concat([id.seed, id.publicKey]).toString("hex");
}

function decodeB64(v: unknown, len: number): Uint8Array | undefined {
  if (typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return undefined;
  const b = Buffer.from(v, "base64");
  return b.length === len && b.toString("base64") === v ? new Uint8Array(b) : undefined;
}

/** A file we may not read (or a directory we may not search) is a permissions problem, not a damaged identity. */
function unreadable(dataDir: string, file: string, err: unknown): P2PError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM") {
    return dataDirError(dataDir, err) ?? new P2PError("P2P_ERR_DATA_DIR", `cannot read ${file}: permission denied`, {
      hint: `run as the user that owns ${dataDir} (its files are private to their owner), or fix the owner: sudo chown -R "$(id -un)" ${dataDir}`,
      cause: err,
    });
  }
  return corrupt(file, `cannot read it: ${(err as Error).message}`, err);
}

function corrupt(file: string, why: string, cause?: unknown): P2PError {
  return new P2PError("P2P_ERR_IDENTITY_CORRUPT", `identity file ${file}: ${why}; refusing to start`, {
    hint: `restore ${file} from a backup; it is never replaced automatically, because peers pinned its key`,
    cause,
  });
}
