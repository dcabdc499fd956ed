/**
 * Child process for the store tests (run as another user): opens `<dataDir>`, tries a read and a write, and prints
 * one JSON line `{open, read?, write?}` whose values are "ok", an error code, or "RAW <message>" for an uncoded error.
 *
 *   node store-probe.ts <dataDir>
 */
import { Store } from "../../src/core/store.ts";

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error("usage: store-probe.ts <dataDir>");
const out: Record<string, string> = {};
const attempt = (name: string, fn: () => unknown): boolean => {
  try {
    fn();
    out[name] = "ok";
    return true;
  } catch (err) {
    const e = err as { name?: string; code?: string; message?: string };
    out[name] = e.name === "P2PError" ? String(e.code) : `RAW ${e.message}`;
    return false;
  }
};
let store: Store | undefined;
if (attempt("open", () => (store = Store.open(dataDir))) && store !== undefined) {
  const s: Store = store;
  attempt("read", () => s.listPeers());
  attempt("write", () => s.setTrust("200::9", "trusted", 1));
  s.close();
}
console.log(JSON.stringify(out));
