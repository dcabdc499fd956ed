/**
 * The receiver's checks through real sockets: runs test/integration/inside/peer-server.checks.ts inside a fresh
 * network namespace (where it may put 200::/7 addresses on `lo`), and requires every case there to pass.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { after, before, it } from "node:test";
import { netnsAvailable, Testnet, type Namespace } from "../helpers/netns.ts";

const avail = netnsAvailable();
const INSIDE = fileURLToPath(new URL("./inside/peer-server.checks.ts", import.meta.url));

let net: Testnet;
let ns: Namespace;
before(() => {
  if (!avail.ok) return;
  net = new Testnet();
  ns = net.add();
});
after(() => net?.destroy());

it("every receiver check holds through a real socket, and the server keeps serving", { skip: avail.ok ? false : avail.reason, timeout: 120_000 }, async () => {
  // A nested test runner must not think it reports to ours (NODE_TEST_CONTEXT switches its output protocol).
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const r = await ns.run(process.execPath, ["--test", "--test-reporter=spec", INSIDE], { timeoutMs: 110_000, env });
  assert.equal(r.code, 0, `inside the namespace:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /pass \d+/);
  assert.match(r.stdout, /fail 0/);
});
