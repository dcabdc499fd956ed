/**
 * `openclaw p2p setup`: creates the data directory and identity if needed, reports what Yggdrasil needs (binary,
 * privileges, admin socket) with the fix for each problem, and prints the OpenClaw config lines that matter.
 */
import { CHANNEL_ID, PLUGIN_ID, type PluginSettings } from "./config.ts";
import type { CliOutput } from "./cli.ts";
import { withNode } from "./node-access.ts";

export async function runPluginSetup(s: PluginSettings): Promise<CliOutput> {
  return withNode(s, async (n) => {
    const st = await n.status();
    const y = st.yggdrasil;
    const next: string[] = [];
    if (y.problem) next.push(...y.problem.fix);
    if (!st.node.running) next.push("start the gateway (`openclaw gateway run`): the plugin service runs the node and keeps Yggdrasil up");
    next.push(`share your address with peers: ${st.address}`);
    next.push("add a peer: `openclaw p2p add <address> --alias NAME`");
    const json = {
      address: st.address,
      publicKey: st.publicKey,
      dataDir: st.dataDir,
      peerPort: st.peerPort,
      yggdrasil: y,
      node: st.node,
      dmPolicy: s.dmPolicy,
      config: `plugins.entries["${PLUGIN_ID}"].config`,
      next,
    };
    const text = [
      `identity    ${st.address} (key ${st.publicKey})`,
      `data dir    ${st.dataDir}`,
      `yggdrasil   mode ${y.mode}: ${y.effectiveMode} ${y.state}${y.problem ? ` — ${y.problem.message}` : ""}`,
      `node        ${st.node.running ? `running (pid ${st.node.pid})` : "not running"}`,
      `channel     ${CHANNEL_ID}, dm_policy ${s.dmPolicy}`,
      `config      openclaw config set 'plugins.entries["${PLUGIN_ID}"].config' '{"yggdrasil":"auto","yggdrasil_peers":["tls://host:port"]}' --strict-json`,
      "",
      "next steps:",
      ...next.map((l) => `  - ${l}`),
    ].join("\n");
    return { json, text };
  });
}
