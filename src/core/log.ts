/** The one logger shape the core writes to. Hosts pass their own (OpenClaw's api.logger fits); the CLI prints lines. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Readable single-line logs on stderr: `2026-11-26T10:00:00.000Z info  message`. */
export function stderrLogger(opts: { debug?: boolean } = {}): Logger {
  const line = (level: string) => (msg: string) => process.stderr.write(`${new Date().toISOString()} ${level.padEnd(5)} ${msg}\n`);
  return { debug: opts.debug ? line("debug") : () => {}, info: line("info"), warn: line("warn"), error: line("error") };
}
