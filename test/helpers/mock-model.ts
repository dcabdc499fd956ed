/**
 * A tiny OpenAI-compatible model server for tests: `POST /v1/chat/completions` (streaming SSE or plain JSON) and
 * `GET /v1/models`. No real model: the reply is decided by a script.
 *
 * Default script:
 * - the last message is a tool result -> text `tool said: <first 300 chars of the result>`;
 * - the last user text contains `CALL_TOOL <name> <json-args>` -> one tool call of that name;
 * - the last user text contains `mock reply:` (another mock's answer) -> `NO_REPLY` (OpenClaw's silent token);
 * - otherwise -> text `mock reply: <last user text, first 200 chars>`.
 *
 * Use in-process (`startMockModel()`), or as a child process in a network namespace:
 * `node test/helpers/mock-model.ts [--port N] [--host 127.0.0.1]` prints `{"listening":PORT}` on the first stdout
 * line, then one JSON line per request: `{"request":{"model","lastUser","lastRole","tools":[names],"messages":N}}`.
 * Only ever binds loopback.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ChatMessage {
  role: string;
  content?: unknown;
  tool_calls?: unknown;
  tool_call_id?: string;
}

export interface ChatRequest {
  model?: string;
  messages?: ChatMessage[];
  stream?: boolean;
  tools?: { type?: string; function?: { name?: string } }[];
}

export type MockReply = { text: string } | { toolCall: { name: string; arguments: Record<string, unknown> } };
export type Script = (req: ChatRequest) => MockReply;

export interface RequestSummary {
  model: string | undefined;
  lastUser: string;
  lastRole: string | undefined;
  tools: string[];
  messages: number;
}

export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (typeof p === "string" ? p : p && typeof p === "object" && typeof (p as { text?: unknown }).text === "string" ? (p as { text: string }).text : ""))
      .join("");
  }
  return "";
}

/** OpenClaw adds context blocks as user-role text; the user's own words are what is left without them. */
export function stripInternalContext(text: string): string {
  return text.replace(/<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT>>>[\s\S]*?<<<END_OPENCLAW_INTERNAL_CONTEXT>>>/g, "").trim();
}

/** The latest user-role text that is more than injected context. */
export function lastUserText(msgs: ChatMessage[]): string {
  for (const m of [...msgs].reverse()) {
    if (m.role !== "user") continue;
    const t = stripInternalContext(textOf(m.content));
    if (t !== "") return t;
  }
  return "";
}

export function summarize(req: ChatRequest): RequestSummary {
  const msgs = req.messages ?? [];
  return {
    model: req.model,
    lastUser: lastUserText(msgs),
    lastRole: msgs.at(-1)?.role,
    tools: (req.tools ?? []).map((t) => t.function?.name ?? "").filter(Boolean),
    messages: msgs.length,
  };
}

/**
 * The message itself from OpenClaw's user-turn text: without the leading `[time]`, the `Conversation info` JSON block
 * and the trailing `Runtime:` line.
 */
export function messageBody(text: string): string {
  return text
    .replace(/^\[[^\]\n]*\]\s*/, "")
    .replace(/Conversation info:[^\n]*\n```json\n[\s\S]*?\n```\s*/g, "")
    .replace(/\n+Runtime:[^\n]*$/, "")
    .replace(/\s+/g, " ")
    .trim();
}

/** User texts of the current turn: the user messages after the last assistant message. */
export function currentTurnUserTexts(msgs: ChatMessage[]): string[] {
  const out: string[] = [];
  for (const m of [...msgs].reverse()) {
    if (m.role === "assistant") break;
    if (m.role === "user") out.push(stripInternalContext(textOf(m.content)));
  }
  return out.filter((t) => t !== "");
}

export const defaultScript: Script = (req) => {
  const msgs = req.messages ?? [];
  const last = msgs.at(-1);
  if (last?.role === "tool") return { text: `tool said: ${textOf(last.content).slice(0, 300)}` };
  // Two agents running this mock would answer each other forever: a turn started by a mock's answer (including
  // OpenClaw's retry of it) gets OpenClaw's silent token.
  if (currentTurnUserTexts(msgs).some((t) => t.includes("mock reply:"))) return { text: "NO_REPLY" };
  const user = lastUserText(msgs);
  const m = /CALL_TOOL\s+([a-z0-9_]+)\s*(\{[^\n]*\})?/i.exec(user);
  if (m) {
    let args: Record<string, unknown> = {};
    try {
      args = m[2] ? (JSON.parse(m[2]) as Record<string, unknown>) : {};
    } catch { /* bad JSON in a test prompt: call without arguments */ }
    return { toolCall: { name: m[1]!, arguments: args } };
  }
  return { text: `mock reply: ${messageBody(user).slice(0, 200)}` };
};

function readBody(req: IncomingMessage, limit = 16 * 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error("body too large"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

let counter = 0;

function handleChat(res: ServerResponse, req: ChatRequest, reply: MockReply): void {
  const id = `chatcmpl-mock-${++counter}`;
  const created = Math.floor(Date.now() / 1000);
  const model = req.model ?? "mock";
  const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
  const toolCall =
    "toolCall" in reply
      ? { index: 0, id: `call_mock_${counter}`, type: "function", function: { name: reply.toolCall.name, arguments: JSON.stringify(reply.toolCall.arguments) } }
      : undefined;
  const finish = toolCall ? "tool_calls" : "stop";
  if (!req.stream) {
    const message = toolCall ? { role: "assistant", content: null, tool_calls: [toolCall] } : { role: "assistant", content: (reply as { text: string }).text };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id, object: "chat.completion", created, model, choices: [{ index: 0, message, finish_reason: finish }], usage }));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  const chunk = (delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}) =>
    res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`);
  chunk({ role: "assistant", content: "" }, null);
  if (toolCall) chunk({ tool_calls: [toolCall] }, null);
  else {
    const text = (reply as { text: string }).text;
    // A few pieces, so streaming consumers see more than one delta.
    const step = Math.max(1, Math.ceil(text.length / 3));
    for (let i = 0; i < text.length; i += step) chunk({ content: text.slice(i, i + step) }, null);
  }
  chunk({}, finish);
  res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage })}\n\n`);
  res.end("data: [DONE]\n\n");
}

export interface MockModel {
  port: number;
  url: string;
  requests: RequestSummary[];
  close(): Promise<void>;
}

export function startMockModel(o: { port?: number; host?: string; script?: Script; onRequest?: (s: RequestSummary) => void; onBody?: (b: ChatRequest) => void } = {}): Promise<MockModel> {
  const host = o.host ?? "127.0.0.1";
  if (host !== "127.0.0.1" && host !== "::1" && host !== "localhost") throw new RangeError("the mock model only binds loopback");
  const script = o.script ?? defaultScript;
  const requests: RequestSummary[] = [];
  const server: Server = createServer(async (req, res) => {
    try {
      const path = (req.url ?? "/").split("?")[0]!.replace(/\/+$/, "");
      if (req.method === "GET" && path.endsWith("/models")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ object: "list", data: [{ id: "mock-1", object: "model", created: 0, owned_by: "mock" }] }));
        return;
      }
      if (req.method === "POST" && path.endsWith("/chat/completions")) {
        const body = JSON.parse(await readBody(req)) as ChatRequest;
        const s = summarize(body);
        requests.push(s);
        o.onRequest?.(s);
        o.onBody?.(body);
        handleChat(res, body, script(body));
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `mock model: no route ${req.method} ${path}` } }));
    } catch (err) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: `mock model: ${(err as Error).message}` } }));
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, host, () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/v1`,
        requests,
        close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

/** The provider block to put under `models.providers.<id>` for this mock. */
export function mockProviderConfig(url: string): Record<string, unknown> {
  return {
    baseUrl: url,
    apiKey: "mock-key",
    api: "openai-completions",
    models: [{ id: "mock-1", name: "Mock 1", reasoning: false, input: ["text"], cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 }, contextWindow: 128000, maxTokens: 4096 }],
  };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const m = await startMockModel({
    port: Number(opt("--port") ?? 0),
    host: opt("--host") ?? "127.0.0.1",
    onRequest: (s) => process.stdout.write(`${JSON.stringify({ request: s })}\n`),
    onBody: args.includes("--log-bodies") ? (b) => process.stderr.write(`${JSON.stringify({ body: b })}\n`) : undefined,
  });
  process.stdout.write(`${JSON.stringify({ listening: m.port })}\n`);
  const stop = () => void m.close().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
