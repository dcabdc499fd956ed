/**
 * `openclaw p2p setup`: the same checks and one-time step as `declaw setup` (src/hosts/cli/setup.ts: yggdrasil
 * binary, TUN privilege, setcap when root, /dev/net/tun), judged against the plugin's configured Yggdrasil mode, plus
 * this node's identity (created on first use) so the operator can share the address.
 */
import { CHANNEL_ID, type PluginSettings } from "./config.ts";
import type { CliOutput } from "./cli.ts";
import { withNode } from "./node-access.ts";

interface Check {
  check: string;
  ok: boolean;
  detail: string;
  fix?: string[];
}

export async function runPluginSetup(s: PluginSettings): Promise<CliOutput> {
  const [{ runSetup }, { diagnoseYggdrasil }] = await Promise.all([import("../cli/setup.ts"), import("../../yggdrasil/supervisor.ts")]);
  return withNode(s, async (n) => {
    const base = await runSetup({ dataDir: s.dataDir, positionals: [], flags: {} }, n.config);
    const json = base.json as { ok: boolean; checks: Check[]; actions: string[] };
    // declaw judges the mode of <data_dir>/config.json; the plugin's own config decides here.
    const ygg = await diagnoseYggdrasil({ mode: n.config.yggdrasil, dataDir: s.dataDir, adminSocket: n.config.yggdrasilAdminSocket, binary: n.config.yggdrasilBinary });
    const modeCheck: Check = { check: `mode ${n.config.yggdrasil}`, ok: !ygg.problem, detail: ygg.problem ? ygg.problem.message : `would use ${ygg.effectiveMode}`, fix: ygg.problem?.fix };
    const checks = [...json.checks.filter((c) => !c.check.startsWith("mode ")), modeCheck];
    // Mode "off" needs nothing from Yggdrasil: the address is managed outside the node.
    const relevant = n.config.yggdrasil === "off" ? [modeCheck] : checks;
    const ok = relevant.every((c) => c.ok);
    const lines = [
      `identity    ${n.address}`,
      `public key  ${n.identity.publicKeyBase64}`,
      `data dir    ${s.dataDir}`,
      `channel     ${CHANNEL_ID}, dm_policy ${s.dmPolicy}`,
      ...checks.map((c) => `${c.ok ? "ok  " : "FAIL"} ${c.check}: ${c.detail}${c.fix && !c.ok ? c.fix.map((f) => `\n       fix: ${f}`).join("") : ""}`),
      ...json.actions.map((a) => `done ${a}`),
      ok
        ? "ready: the gateway's plugin service runs the node (`openclaw gateway run`, or the installed gateway service)"
        : "not ready: run the fix commands above, then `openclaw p2p setup` again",
    ];
    return {
      json: { ok, address: n.address, publicKey: n.identity.publicKeyBase64, dataDir: s.dataDir, yggdrasilMode: n.config.yggdrasil, checks, actions: json.actions },
      text: lines.join("\n"),
      exitCode: ok ? 0 : 1,
    };
  });
}
