/**
 * The one error table of declaw. Every refusal on the wire and every failure a user can see carries one of these
 * stable codes; callers branch on `err.code`, never on message text (safe even when two copies of the module are
 * loaded, as happens inside plugin hosts). `docs/protocol.md` lists the wire-facing codes; a test keeps the two in
 * step.
 *
 * `status` is the HTTP status the peer server answers with (local-only errors use the status a local API would).
 */
export const ERROR_TABLE = {
  // --- transport and framing (peer server) ---
  P2P_ERR_SOURCE_NOT_YGGDRASIL: { status: 403, text: "source address is not in 200::/7" },
  P2P_ERR_RATE_LIMITED: { status: 429, text: "too many requests from this source" },
  P2P_ERR_BODY_TOO_LARGE: { status: 413, text: "request body exceeds the size limit" },
  P2P_ERR_REQUEST_TIMEOUT: { status: 408, text: "request headers or body arrived too slowly" },
  P2P_ERR_HEADERS_TOO_LARGE: { status: 431, text: "request headers exceed the size limit" },
  P2P_ERR_EXPECTATION_FAILED: { status: 417, text: "only Expect: 100-continue is supported" },
  P2P_ERR_NOT_FOUND: { status: 404, text: "no such endpoint" },
  P2P_ERR_METHOD_NOT_ALLOWED: { status: 405, text: "method not allowed on this endpoint" },
  P2P_ERR_BAD_JSON: { status: 400, text: "body is not valid UTF-8 JSON" },
  P2P_ERR_BAD_QUERY: { status: 400, text: "query string is malformed" },

  // --- envelope validation (400): one code per way a field can be wrong ---
  P2P_ERR_NOT_OBJECT: { status: 400, text: "body is not a JSON object" },
  P2P_ERR_MISSING_FIELD: { status: 400, text: "a required field is missing" },
  P2P_ERR_UNKNOWN_FIELD: { status: 400, text: "an unknown field is present" },
  P2P_ERR_BAD_VERSION: { status: 400, text: "unsupported protocol version" },
  P2P_ERR_BAD_TYPE: { status: 400, text: "wrong message type for this endpoint" },
  P2P_ERR_BAD_ID: { status: 400, text: "message id is not a canonical lowercase UUID" },
  P2P_ERR_BAD_ADDRESS: { status: 400, text: "address is not a canonical 200::/7 IPv6 text" },
  P2P_ERR_BAD_KEY: { status: 400, text: "public key is not 32 bytes of padded base64" },
  P2P_ERR_BAD_TIMESTAMP: { status: 400, text: "timestamp is not a non-negative safe integer of milliseconds" },
  P2P_ERR_BAD_KIND: { status: 400, text: "kind is not a lowercase token" },
  P2P_ERR_UNSUPPORTED_KIND: { status: 400, text: "kind is not supported by this node" },
  P2P_ERR_BAD_CONTENT: { status: 400, text: "content is not a string of valid Unicode" },
  P2P_ERR_CONTENT_TOO_LARGE: { status: 400, text: "content exceeds the size limit" },
  P2P_ERR_BAD_SIGNATURE_ENCODING: { status: 400, text: "signature is not 64 bytes of padded base64" },
  P2P_ERR_BAD_NONCE: { status: 400, text: "nonce is not 16 to 64 bytes of base64url" },

  // --- authentication and policy (403) ---
  P2P_ERR_SENDER_MISMATCH: { status: 403, text: "sender address does not match the connection's source" },
  P2P_ERR_WRONG_RECIPIENT: { status: 403, text: "message is addressed to another node" },
  P2P_ERR_STALE_TIMESTAMP: { status: 403, text: "timestamp is outside the acceptance window" },
  P2P_ERR_BAD_SIGNATURE: { status: 403, text: "signature does not verify" },
  P2P_ERR_KEY_MISMATCH: { status: 403, text: "public key differs from the key pinned for this address" },
  P2P_ERR_PEER_BLOCKED: { status: 403, text: "sender is blocked" },
  P2P_ERR_PENDING_QUOTA: { status: 429, text: "this node holds as many messages from senders its user has not accepted yet as it keeps" },

  // --- storage (the receiver could not make the message durable; the sender retries) ---
  P2P_ERR_STORAGE: { status: 503, text: "message could not be stored durably" },
  P2P_ERR_SHUTTING_DOWN: { status: 503, text: "node is shutting down" },
  P2P_ERR_BUSY: { status: 503, text: "too many signatures from unproved senders are waiting to be checked; retry later" },
  P2P_ERR_INTERNAL: { status: 500, text: "internal error (a bug: please report it)" },

  // --- local errors (CLI, hosts) ---
  P2P_ERR_IDENTITY_CORRUPT: { status: 500, text: "identity file is unreadable or inconsistent" },
  P2P_ERR_DB_CORRUPT: { status: 500, text: "database is unreadable or corrupt" },
  P2P_ERR_DB_UNAVAILABLE: { status: 503, text: "database cannot be opened or written" },
  P2P_ERR_DATA_DIR: { status: 500, text: "data directory cannot be created or written" },
  P2P_ERR_CONFIG: { status: 400, text: "configuration value is invalid" },
  P2P_ERR_BAD_ARGUMENT: { status: 400, text: "argument is invalid" },
  // The user stopped a command (Ctrl-C) before it did anything (499: a client that closed its request).
  P2P_ERR_INTERRUPTED: { status: 499, text: "interrupted before anything was done" },
  P2P_ERR_PEER_NOT_FOUND: { status: 404, text: "no such peer" },
  P2P_ERR_ALIAS_TAKEN: { status: 409, text: "alias is already used by another peer" },
  P2P_ERR_KEY_ADDRESS_MISMATCH: { status: 400, text: "given key does not derive to the given address" },
  P2P_ERR_UNREACHABLE: { status: 502, text: "peer could not be reached" },
  P2P_ERR_PEER_REFUSED: { status: 502, text: "peer refused the request" },
  P2P_ERR_BAD_RESPONSE: { status: 502, text: "peer answered with an invalid or unverifiable response" },
  P2P_ERR_PORT_IN_USE: { status: 500, text: "peer port is already in use" },

  // --- Yggdrasil ---
  P2P_ERR_YGG_BINARY_MISSING: { status: 500, text: "yggdrasil binary not found" },
  P2P_ERR_YGG_NO_PRIVILEGE: { status: 500, text: "yggdrasil cannot create its TUN interface" },
  P2P_ERR_YGG_ADMIN_UNREACHABLE: { status: 500, text: "yggdrasil admin socket not reachable" },
  P2P_ERR_YGG_ADDRESS_MISMATCH: { status: 500, text: "yggdrasil daemon's address differs from ours" },
  P2P_ERR_YGG_ADMIN: { status: 500, text: "yggdrasil admin call failed" },
  P2P_ERR_YGG_START_FAILED: { status: 500, text: "yggdrasil daemon failed to start" },
} as const;

export type ErrorCode = keyof typeof ERROR_TABLE;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_TABLE, code);
}

/** An error with a stable code. `message` is for people and may name files, fields and next steps. */
export class P2PError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** What the user can do about it, shown by the CLI after the message. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message?: string, options?: { hint?: string; cause?: unknown }) {
    super(message ?? ERROR_TABLE[code].text, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "P2PError";
    this.code = code;
    this.status = ERROR_TABLE[code].status;
    this.hint = options?.hint;
  }

  /** The JSON body the peer server sends: `{error, message}`. */
  toJSON(): { error: ErrorCode; message: string } {
    return { error: this.code, message: this.message };
  }
}

/**
 * A refusal about the state of things, not about how a command was typed (a message that is no longer queued, an id
 * that names none): hosts exit 1 for it, where other P2P_ERR_BAD_ARGUMENT refusals are usage errors (exit 2).
 */
export class OperationError extends P2PError {
  /** What hosts check (not instanceof: a host may hold another copy of this module). */
  readonly operation = true;
}

/** Result of a parser that never throws: either a value or a coded refusal. */
export type Result<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(code: ErrorCode, message?: string): Result<T> {
  return { ok: false, code, message: message ?? ERROR_TABLE[code].text };
}
