/**
 * Posts signed v2 envelopes and records exactly which ones the node acknowledged (fault tests). Run inside a
 * namespace; argument JSON `{target, port, seedHex, count, size, inFlight?}` (the sender's derived address must be on
 * an interface). Prints `{acked:[id], refused:{id:code}, statuses:{status:n}, badReceipts:n}`.
 */
import { Agent, request } from "node:http";
import { deriveAddress, formatIPv6 } from "../../src/core/address.ts";
import { keyPairFromSeed } from "../../src/core/keys.ts";
import { buildEnvelope, decodeJsonBody, newMessageId, parseReceipt, verifyReceipt } from "../../src/core/wire.ts";

const a = JSON.parse(process.argv[2]!) as { target: string; port: number; seedHex: string; count: number; size: number; inFlight?: number };
const kp = keyPairFromSeed(Buffer.from(a.seedHex, "hex"));
const me = { ...kp, address: formatIPv6(deriveAddress(kp.publicKey)) };
const agent = new Agent({ keepAlive: true, maxSockets: a.inFlight ?? 4 });
const acked: string[] = [];
const refused: Record<string, string> = {};
const statuses: Record<string, number> = {};
let badReceipts = 0;
let next = 0;

function post(body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve) => {
    const req = request({ host: a.target, port: a.port, family: 6, method: "POST", path: "/v2/message", agent, localAddress: me.address, headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ status: -1, text: e.code ?? e.message }));
    req.end(body);
  });
}

async function worker(): Promise<void> {
  while (next < a.count) {
    const i = next++;
    const now = Date.now();
    const env = buildEnvelope(me, a.target, "chat", `#${i} ${"d".repeat(a.size)}`, { id: newMessageId(now), ts: now });
    const r = await post(JSON.stringify(env));
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status === 200) {
      const j = decodeJsonBody(Buffer.from(r.text));
      const rec = j.ok ? parseReceipt((j.value as { receipt?: unknown }).receipt) : j;
      if (rec.ok && verifyReceipt(rec.value) && rec.value.id === env.id) acked.push(env.id);
      else badReceipts++;
    } else {
      let code = `HTTP_${r.status}`;
      try {
        code = JSON.parse(r.text).error ?? code;
      } catch { /* not JSON */ }
      refused[env.id] = code;
    }
  }
}
await Promise.all(Array.from({ length: a.inFlight ?? 4 }, worker));
agent.destroy();
process.stdout.write(`${JSON.stringify({ acked, refused, statuses, badReceipts })}\n`, () => process.exit(0));
