/** Argument parsing, output and exit codes for `declaw`: 0 ok, 1 the operation failed, 2 usage error. */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { defaultDataDir } from "../../core/config.ts";
import { OperationError, P2PError, type ErrorCode } from "../../core/errors.ts";
import { MAX_CONTENT_BYTES } from "../../core/wire.ts";
import { escapeControls } from "../../core/text.ts";
import { COMMANDS, type Command } from "./commands.ts";
import { UNREACHABLE_HINT, withCommandPrefix } from "../format.ts";

type Flags = Record<string, string | boolean | string[] | undefined>;

const GLOBAL_OPTIONS = {
  "data-dir": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
} as const;

/**
 * Every option of every command: the first, lenient pass needs to know which options take a value to find the
 * command word wherever the options stand (`declaw --limit 5 inbox`). Commands agree on the type of a shared name.
 */
const ANY_OPTION: Record<string, { type: "string" | "boolean"; short?: string }> = Object.assign(
  {},
  ...Object.values(COMMANDS).map((c) => c.options ?? {}),
  GLOBAL_OPTIONS,
);

const HELP_HINT = "run `declaw --help` for the list of commands";

/** Shown in the help, and with a usage error that an argument starting with "-" may have caused. */
const DASH_TIP = 'text that starts with "-" goes after --: declaw send alice -- "-1 is the answer"';

function help(): string {
  const lines = ["usage: declaw <command> [args] [--data-dir DIR] [--json]   (declaw --version, declaw help)", "", "commands:"];
  for (const c of Object.values(COMMANDS)) lines.push(`  ${c.usage.padEnd(58)} ${c.summary}`);
  lines.push(
    "",
    "options may come before or after the command; a peer is an address (200:...), a peer id (0200-...) or an alias",
    DASH_TIP,
    `data dir defaults to ${defaultDataDir()} (or $DECLAW_DATA_DIR)`,
  );
  return lines.join("\n");
}

export type CommandLine =
  | { kind: "help"; exitCode: 0 | 2 }
  | { kind: "version" }
  | { kind: "usage"; message: string; hint?: string }
  | { kind: "command"; name: string; command: Command; positionals: string[]; flags: Flags };

/**
 * Pure: what the arguments (without `node main.ts`) ask for. Options may come before or after the command word.
 * Help is read from the strict parse once there is a command: the lenient one reads text such as "-1 is the answer"
 * as a bundle of short options, `-h` among them, and a message must never turn into help with exit 0.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const loose = parseArgs({ args: [...argv], options: ANY_OPTION, allowPositionals: true, strict: false });
  const name = loose.positionals[0];
  const command = name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) {
    if (loose.values.help === true || name === "help") return { kind: "help", exitCode: 0 };
    if (loose.values.version === true) return { kind: "version" };
    if (name === undefined) return { kind: "help", exitCode: 2 };
    return { kind: "usage", message: `unknown command "${name}"`, hint: HELP_HINT };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...GLOBAL_OPTIONS, ...(command.options ?? {}) }, allowPositionals: true, strict: true });
  } catch (err) {
    const dash = argv.some((a) => /^-[^-]/.test(a) && !/^-[a-z]$/i.test(a)) ? `\n(${DASH_TIP})` : "";
    return { kind: "usage", message: (err as Error).message, hint: `usage: declaw ${command.usage}${dash}` };
  }
  if (parsed.values.help === true) return { kind: "help", exitCode: 0 };
  if (parsed.values.version === true) return { kind: "version" };
  const positionals = parsed.positionals.slice(1);
  if (positionals.length < command.args[0] || positionals.length > command.args[1]) {
    return { kind: "usage", message: "wrong number of arguments", hint: `usage: declaw ${command.usage}` };
  }
  return { kind: "command", name, command, positionals, flags: parsed.values as Flags };
}

/**
 * The data directory: --data-dir, else $DECLAW_DATA_DIR, else the default; made absolute. An empty value is refused
 * (resolving "" would silently use the current directory), as the plugin refuses an empty data_dir.
 */
export function dataDirFrom(flag: string | undefined, env: string | undefined): string {
  if (flag !== undefined) {
    if (flag.trim() === "") {
      throw new P2PError("P2P_ERR_BAD_ARGUMENT", "--data-dir must be a non-empty path", { hint: `give a directory (--data-dir DIR), or leave the option out to use ${defaultDataDir()}` });
    }
    return resolve(flag);
  }
  if (env !== undefined) {
    if (env.trim() === "") {
      throw new P2PError("P2P_ERR_BAD_ARGUMENT", "DECLAW_DATA_DIR is set but empty; it must be a non-empty path", { hint: `set it to a directory, or unset it to use ${defaultDataDir()}` });
    }
    return resolve(env);
  }
  return resolve(defaultDataDir());
}

export async function main(argv: string[]): Promise<number> {
  const end = argv.indexOf("--"); // after it, "--json" is text (a message), not the option
  const wantsJson = (end === -1 ? argv : argv.slice(0, end)).includes("--json");
  const line = parseCommandLine(argv);
  // A bare `declaw --json` is a usage error a program can read, not the help text.
  if (line.kind === "help" && line.exitCode === 2 && wantsJson) return usageError("no command given", HELP_HINT, true);
  if (line.kind === "help") {
    process.stdout.write(`${help()}\n`);
    return line.exitCode;
  }
  if (line.kind === "version") {
    const { version } = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
    process.stdout.write(wantsJson ? `${JSON.stringify({ version })}\n` : `declaw ${version}\n`);
    return 0;
  }
  if (line.kind === "usage") return usageError(line.message, line.hint, wantsJson);
  try {
    const dataDir = dataDirFrom(line.flags["data-dir"] as string | undefined, process.env.DECLAW_DATA_DIR);
    const out = await line.command.run({ dataDir, positionals: line.positionals, flags: line.flags });
    if (wantsJson) process.stdout.write(`${JSON.stringify(out.json, null, 2)}\n`);
    else if (out.text) process.stdout.write(`${out.text}\n`);
    return out.exitCode ?? 0;
  } catch (err) {
    return report(err, wantsJson, line.command);
  }
}

/**
 * In text: the usage error, its hint, and where the list of commands is. Error text echoes what the user typed (a
 * command word, an alias, a path), and a pasted ESC or BEL there would reach the terminal as a peer's text could, so
 * it is made visible the same way (escapeControls; here and in `report`). Newlines stay: a message and its usage line
 * are meant to be lines of their own. JSON needs nothing: JSON.stringify escapes controls itself.
 */
function usageError(message: string, hint: string | undefined, json: boolean): number {
  if (json) process.stdout.write(`${JSON.stringify({ error: "P2P_ERR_BAD_ARGUMENT", message, hint })}\n`);
  else process.stderr.write(`declaw: ${escapeControls(message)}${hint ? `\n${escapeControls(hint)}` : ""}${hint === HELP_HINT ? "" : `\n${HELP_HINT}`}\n`);
  return 2;
}

/**
 * Next steps for errors whose creator (shared with the plugin) gives none; keyed by code, never by message text.
 * Only used when the error carries no hint of its own.
 */
function cliHint(code: ErrorCode, command: Command | undefined): string | undefined {
  switch (code) {
    case "P2P_ERR_UNREACHABLE":
      return withCommandPrefix(UNREACHABLE_HINT, "declaw");
    case "P2P_ERR_CONTENT_TOO_LARGE":
      return `send the text in several messages of at most ${MAX_CONTENT_BYTES} bytes (UTF-8) each`;
    case "P2P_ERR_BAD_ARGUMENT":
      return command ? `usage: declaw ${command.usage}` : undefined;
    default:
      return undefined;
  }
}

/** Pure: the code, message and next step the CLI shows for an error. Anything without a P2P code is a bug. */
export function describeCliError(err: unknown, command?: Command): { code: ErrorCode; message: string; hint: string | undefined } {
  const e =
    err instanceof P2PError || (err as P2PError)?.code?.startsWith?.("P2P_ERR_")
      ? (err as P2PError)
      : new P2PError("P2P_ERR_INTERNAL", `unexpected error: ${(err as Error)?.message ?? String(err)}`, { hint: "this is a bug; run again with DECLAW_DEBUG=1 for details and report it" });
  return { code: e.code, message: e.message, hint: e.hint ?? cliHint(e.code, command) };
}

/**
 * Known errors: the message and the next step (controls escaped, as in usageError). Anything else is a bug: say so,
 * without a stack trace. A bad argument is a usage error (2) unless the command marked it an OperationError.
 */
function report(err: unknown, json: boolean, command: Command): number {
  const e = describeCliError(err, command);
  if (process.env.DECLAW_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: e.code, message: e.message, hint: e.hint })}\n`);
  else process.stderr.write(`declaw: ${escapeControls(e.message)}${e.hint ? `\nnext step: ${escapeControls(e.hint)}` : ""}\n`);
  return e.code === "P2P_ERR_BAD_ARGUMENT" && !(err instanceof OperationError) ? 2 : 1;
}
