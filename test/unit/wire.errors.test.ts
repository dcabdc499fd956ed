/**
 * docs/protocol.md section 14 and src/core/errors.ts describe the same wire codes with the same statuses, and every
 * code the wire parsers can return is documented (fastify-style: one table, a test keeps table and docs in step).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ERROR_TABLE, isErrorCode } from "../../src/core/errors.ts";

const doc = readFileSync(join(import.meta.dirname, "..", "..", "docs", "protocol.md"), "utf8");
const begin = doc.indexOf("<!-- errors:begin -->");
const end = doc.indexOf("<!-- errors:end -->");
const rows = new Map<string, number>();
for (const m of doc.slice(begin, end).matchAll(/^\| `(P2P_ERR_[A-Z0-9_]+)` \| (\d{3}) \|/gm)) rows.set(m[1]!, Number(m[2]));

/**
 * Codes that never travel from a peer server: local failures (CLI, hosts, storage setup, Yggdrasil supervision)
 * and client-side verdicts about a peer's answer. A new code in errors.ts must be added to protocol.md section 14 or
 * here, deliberately.
 */
const LOCAL_ONLY = new Set([
  "P2P_ERR_IDENTITY_CORRUPT",
  "P2P_ERR_DB_CORRUPT",
  "P2P_ERR_DB_UNAVAILABLE",
  "P2P_ERR_DATA_DIR",
  "P2P_ERR_CONFIG",
  "P2P_ERR_BAD_ARGUMENT",
  "P2P_ERR_INTERRUPTED",
  "P2P_ERR_PEER_NOT_FOUND",
  "P2P_ERR_ALIAS_TAKEN",
  "P2P_ERR_KEY_ADDRESS_MISMATCH",
  "P2P_ERR_UNREACHABLE",
  "P2P_ERR_PEER_REFUSED",
  "P2P_ERR_BAD_RESPONSE",
  "P2P_ERR_PORT_IN_USE",
]);
const isLocal = (code: string) => LOCAL_ONLY.has(code) || code.startsWith("P2P_ERR_YGG_");

describe("protocol.md section 14 and the error table", () => {
  test("the section has its table", () => {
    assert.ok(begin !== -1 && end > begin, "markers present");
    assert.ok(rows.size >= 25, `found ${rows.size} rows`);
  });

  test("every documented code exists in ERROR_TABLE with the documented status", () => {
    for (const [code, status] of rows) {
      assert.ok(isErrorCode(code), `${code} is documented but not in src/core/errors.ts`);
      assert.equal(ERROR_TABLE[code].status, status, `${code}: docs say ${status}, table says ${ERROR_TABLE[code].status}`);
    }
  });

  test("every code in ERROR_TABLE is either documented as a wire code or known to be local-only", () => {
    for (const code of Object.keys(ERROR_TABLE)) {
      assert.ok(rows.has(code) || isLocal(code), `${code} is in errors.ts but neither in protocol.md section 14 nor in LOCAL_ONLY`);
      assert.ok(!(rows.has(code) && isLocal(code)), `${code} is listed both as wire and as local-only`);
    }
  });

  test("every P2P_ERR_* named anywhere in protocol.md exists", () => {
    for (const m of doc.matchAll(/P2P_ERR_[A-Z0-9_]+/g)) assert.ok(isErrorCode(m[0]), `${m[0]} is mentioned but not in errors.ts`);
  });

  test("every code the wire parsers can return is a documented wire code", () => {
    const sources = ["wire.ts", "wire-v1.ts"].map((f) => readFileSync(join(import.meta.dirname, "..", "..", "src", "core", f), "utf8"));
    const used = new Set(sources.flatMap((s) => [...s.matchAll(/"(P2P_ERR_[A-Z0-9_]+)"/g)].map((m) => m[1]!)));
    assert.ok(used.size >= 15);
    for (const code of used) assert.ok(rows.has(code), `${code} is used by the wire modules but not documented in section 14`);
  });
});
