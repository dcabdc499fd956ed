/**
 * OpenClaw plugin entry for declaw (plugin id and channel id `ipv6-p2p`).
 *
 * `register` runs in every `openclaw` process and mode (CLI metadata, discovery, tool discovery, the gateway), so it
 * only registers: no sockets, timers or child processes, and no core modules loaded. The node runs in the service;
 * inbound dispatch runs in the channel account (`gateway.startAccount`); commands, slash commands and tools open the
 * data directory when they run.
 */
import { defineChannelPluginEntry } from "openclaw/plugin-sdk/channel-core";
import { ipv6P2pChannel, setCurrentConfigSource } from "./channel.ts";
import { registerP2pCommands, type CommandLike } from "./cli.ts";
import { SLASH_COMMANDS } from "./commands.ts";
import { CHANNEL_LABEL, PLUGIN_ID, pluginConfigFrom, resolveSettings } from "./config.ts";
import { registerControlUi, type ControlUiApi } from "./control-ui.ts";
import { createNodeService } from "./service.ts";
import { createTools, TOOL_NAMES, type ToolContextLike } from "./tools.ts";

type Api = Parameters<NonNullable<Parameters<typeof defineChannelPluginEntry>[0]["registerFull"]>>[0];

export default defineChannelPluginEntry({
  id: PLUGIN_ID,
  name: CHANNEL_LABEL,
  description: "Direct signed messaging between OpenClaw instances over Yggdrasil (declaw)",
  plugin: ipv6P2pChannel,
  setRuntime(runtime) {
    setCurrentConfigSource(() => runtime.config.current());
  },
  registerCliMetadata(api: Api) {
    api.registerCli(
      ({ program, config }) => {
        registerP2pCommands(program as unknown as CommandLike, () => resolveSettings(pluginConfigFrom(config) ?? api.pluginConfig));
      },
      { descriptors: [{ name: "p2p", description: "Direct signed messaging with other OpenClaw instances over Yggdrasil", hasSubcommands: true }] },
    );
  },
  registerFull(api: Api) {
    api.registerTool((ctx) => createTools(ctx as ToolContextLike, api.pluginConfig) as never, { names: [...TOOL_NAMES] });
    if (api.registrationMode !== "full") return;
    for (const c of SLASH_COMMANDS) {
      api.registerCommand({
        name: c.name,
        description: c.description,
        acceptsArgs: c.acceptsArgs,
        requireAuth: true,
        handler: (ctx) => c.handler({ args: ctx.args, sessionKey: ctx.sessionKey, config: ctx.config }),
      });
    }
    api.registerService(createNodeService(() => api.pluginConfig) as never);
    registerControlUi(api as unknown as ControlUiApi, () => api.pluginConfig);
  },
});
