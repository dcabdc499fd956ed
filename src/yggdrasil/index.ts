/** Public surface of the Yggdrasil integration (what src/core/node.ts and the CLI import). */
export { YggdrasilSupervisor, RESTART_BACKOFF_MS } from "./supervisor.ts";
export { diagnoseYggdrasil } from "./diagnose.ts";
export type { YggMode, YggOptions, YggPeerStatus, YggProblem, YggState, YggStatus } from "./types.ts";
