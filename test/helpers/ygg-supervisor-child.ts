/**
 * Runs one YggdrasilSupervisor in its own process (so tests can put it in a network namespace, run it as another
 * user, or SIGKILL it). Usage: node ygg-supervisor-child.ts '<json options>'.
 * Options: {dataDir, mode, peers?, listen?, multicast?, adminSocket?, binary?}. The identity is loaded/created in
 * dataDir. Protocol (JSON lines): stdout first gets {"event":"started","status":...} or
 * {"event":"error","error":{code,message,hint}}; then each stdin line {"id","cmd":"status"|"setPeers"|"stop"|"exit",
 * "peers"?} is answered by {"id","result"} or {"id","error"}. Supervisor log lines go to stderr.
 */
import { createInterface } from "node:readline";
import { loadOrCreateIdentity } from "../../src/core/identity.ts";
import { YggdrasilSupervisor } from "../../src/yggdrasil/supervisor.ts";
import type { YggMode } from "../../src/yggdrasil/types.ts";

interface ChildOptions { dataDir: string; mode: YggMode; peers?: string[]; listen?: string[]; multicast?: boolean; adminSocket?: string; binary?: string }

const o = JSON.parse(process.argv[2] ?? "{}") as ChildOptions;
const send = (v: unknown): void => { process.stdout.write(`${JSON.stringify(v)}\n`); };
const errJson = (err: unknown): unknown => {
  const e = err as { code?: string; message?: string; hint?: string };
  return { code: e.code, message: e.message, hint: e.hint };
};

const identity = loadOrCreateIdentity(o.dataDir);
const sup = new YggdrasilSupervisor({
  dataDir: o.dataDir,
  identity,
  mode: o.mode,
  peers: o.peers ?? [],
  listen: o.listen ?? [],
  multicast: o.multicast ?? false,
  ...(o.adminSocket ? { adminSocket: o.adminSocket } : {}),
  ...(o.binary ? { binary: o.binary } : {}),
  log: (level, msg) => process.stderr.write(`[${level}] ${msg}\n`),
});

try {
  send({ event: "started", identity: { address: identity.address, subnet: identity.subnet }, status: await sup.start() });
} catch (err) {
  send({ event: "error", identity: { address: identity.address }, error: errJson(err), status: await sup.status() });
}

const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  void (async () => {
    const req = JSON.parse(line) as { id: number; cmd: string; peers?: string[] };
    try {
      let result: unknown = null;
      if (req.cmd === "status") result = await sup.status();
      else if (req.cmd === "setPeers") await sup.setPeers(req.peers ?? []);
      else if (req.cmd === "stop") await sup.stop();
      else if (req.cmd === "exit") {
        await sup.stop();
        send({ id: req.id, result: null });
        process.exit(0);
      } else throw new Error(`unknown cmd ${req.cmd}`);
      send({ id: req.id, result });
    } catch (err) {
      send({ id: req.id, error: errJson(err) });
    }
  })();
});
rl.on("close", () => {
  // Parent went away without "exit": shut down cleanly.
  void sup.stop().then(() => process.exit(0));
});
