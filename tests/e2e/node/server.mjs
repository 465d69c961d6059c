// An MCP server written with the official TypeScript SDK, for tests/e2e/test_typescript_sdk_e2e.py.
//   node server.mjs PORT [sse|json]
// Tools: echo(text), leak() (returns $LEAK_TEXT), slow(steps) (a progress notification per
// step, 200 ms apart), long() (closes its answer stream, then answers $LEAK_TEXT: the client
// resumes the stream from its last event id; sse mode keeps an event store), ask() (asks the
// user for a name, the question holding $LEAK_TEXT, and returns the answer), sample2() (two
// sampling requests on the call's own stream; returns both answers, or the error).
// Prints "listening PORT" when ready. Loopback only.
import http from "node:http";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { InMemoryEventStore } from "@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js";
import { CreateMessageResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

const port = Number(process.argv[2]);
const jsonResponse = process.argv[3] === "json";
const sessions = {};
const eventStore = new InMemoryEventStore();

function build() {
  const server = new McpServer({ name: "ts-sdk-server", version: "1.0.0" });
  server.tool("echo", { text: z.string() }, async ({ text }) => ({
    content: [{ type: "text", text }],
  }));
  server.tool("leak", {}, async () => ({
    content: [{ type: "text", text: process.env.LEAK_TEXT || "nothing" }],
  }));
  server.tool("slow", { steps: z.number() }, async ({ steps }, extra) => {
    const token = extra._meta?.progressToken;
    for (let i = 1; i <= steps; i++) {
      if (token !== undefined) {
        await extra.sendNotification({
          method: "notifications/progress",
          params: { progressToken: token, progress: i, total: steps },
        });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return { content: [{ type: "text", text: `done ${steps}` }] };
  });
  server.tool("long", {}, async (_args, extra) => {
    await new Promise((r) => setTimeout(r, 100));
    extra.closeSSEStream?.(); // (with an event store: the client resumes with Last-Event-ID)
    await new Promise((r) => setTimeout(r, 300));
    return { content: [{ type: "text", text: `long done ${process.env.LEAK_TEXT || ""}` }] };
  });
  server.tool("ask", {}, async () => {
    const r = await server.server.elicitInput({
      message: `give your name (${process.env.LEAK_TEXT || ""})`,
      requestedSchema: { type: "object", properties: { name: { type: "string" } } },
    });
    return { content: [{ type: "text", text: `got ${JSON.stringify(r.content)}` }] };
  });
  server.tool("sample2", {}, async (_args, extra) => {
    const ask = (text) =>
      extra.sendRequest(
        {
          method: "sampling/createMessage",
          params: { messages: [{ role: "user", content: { type: "text", text } }], maxTokens: 10 },
        },
        CreateMessageResultSchema,
      );
    try {
      const [a, b] = await Promise.all([ask("first"), ask("second")]);
      return { content: [{ type: "text", text: `sampled ${a.content.text} / ${b.content.text}` }] };
    } catch (e) {
      return { content: [{ type: "text", text: `failed: ${e.message}` }], isError: true };
    }
  });
  return server;
}

http
  .createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString();
    const sid = req.headers["mcp-session-id"];
    let transport = sid && sessions[sid];
    if (!transport) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        enableJsonResponse: jsonResponse,
        eventStore: jsonResponse ? undefined : eventStore,
        retryInterval: 100,
        onsessioninitialized: (id) => {
          sessions[id] = transport;
        },
      });
      await build().connect(transport);
    }
    await transport.handleRequest(req, res, raw ? JSON.parse(raw) : undefined);
  })
  .listen(port, "127.0.0.1", () => console.log("listening", port));
