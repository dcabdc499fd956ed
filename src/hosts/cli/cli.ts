/** Argument parsing, output and exit codes for `declaw`: 0 ok, 1 the operation failed, 2 usage error. */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { defaultDataDir } from "../../core/config.ts";
import { P2PError } from "../../core/errors.ts";
import { COMMANDS } from "./commands.ts";

const GLOBAL_OPTIONS = {
  "data-dir": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function help(): string {
  const lines = ["usage: declaw [--data-dir DIR] [--json] <command> [args]", "", "commands:"];
  for (const c of Object.values(COMMANDS)) lines.push(`  ${c.usage.padEnd(58)} ${c.summary}`);
  lines.push("", `data dir defaults to ${defaultDataDir()} (or $DECLAW_DATA_DIR)`);
  return lines.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const name = argv.find((a) => !a.startsWith("-") && !isOptionValue(argv, a));
  const cmd = name ? COMMANDS[name] : undefined;
  const wantsJson = argv.includes("--json");
  if (!name || argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${help()}\n`);
    return name || argv.includes("--help") || argv.includes("-h") ? 0 : 2;
  }
  if (!cmd) return usageError(`unknown command "${name}"`, wantsJson);
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL_OPTIONS, ...(cmd.options ?? {}) }, allowPositionals: true, strict: true });
  } catch (err) {
    return usageError(`${(err as Error).message}\nusage: declaw ${cmd.usage}`, wantsJson);
  }
  const positionals = parsed.positionals.slice(parsed.positionals.indexOf(name) + 1);
  if (positionals.length < cmd.args[0] || positionals.length > cmd.args[1]) {
    return usageError(`wrong number of arguments\nusage: declaw ${cmd.usage}`, wantsJson);
  }
  const dataDir = resolve((parsed.values["data-dir"] as string | undefined) ?? process.env.DECLAW_DATA_DIR ?? defaultDataDir());
  try {
    const out = await cmd.run({ dataDir, positionals, flags: parsed.values as Record<string, string | boolean | string[] | undefined> });
    if (wantsJson) process.stdout.write(`${JSON.stringify(out.json, null, 2)}\n`);
    else if (out.text) process.stdout.write(`${out.text}\n`);
    return out.exitCode ?? 0;
  } catch (err) {
    return report(err, wantsJson);
  }
}

function isOptionValue(argv: string[], a: string): boolean {
  const i = argv.indexOf(a);
  return i > 0 && argv[i - 1] === "--data-dir";
}

function usageError(message: string, json: boolean): number {
  if (json) process.stdout.write(`${JSON.stringify({ error: "P2P_ERR_BAD_ARGUMENT", message })}\n`);
  else process.stderr.write(`declaw: ${message}\nrun \`declaw --help\` for the list of commands\n`);
  return 2;
}

/** Known errors: the message and the next step. Anything else is a bug: say so, without a stack trace. */
function report(err: unknown, json: boolean): number {
  const e =
    err instanceof P2PError || (err as P2PError)?.code?.startsWith?.("P2P_ERR_")
      ? (err as P2PError)
      : new P2PError("P2P_ERR_INTERNAL", `unexpected error: ${(err as Error)?.message ?? String(err)}`, { hint: "this is a bug; run again with DECLAW_DEBUG=1 for details and report it" });
  if (process.env.DECLAW_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  if (json) process.stdout.write(`${JSON.stringify({ error: e.code, message: e.message, hint: e.hint })}\n`);
  else process.stderr.write(`declaw: ${e.message}${e.hint ? `\nnext step: ${e.hint}` : ""}\n`);
  return e.code === "P2P_ERR_BAD_ARGUMENT" ? 2 : 1;
}
