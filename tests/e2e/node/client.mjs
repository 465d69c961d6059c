// An MCP client written with the official TypeScript SDK, for tests/e2e/test_typescript_sdk_e2e.py.
//   node client.mjs URL ARGS_JSON
// Lists the tools, calls slow_progress (or slow) with a progress handler, then echo with
// ARGS_JSON's "echo" text and leak with its "leak" arguments. Prints one JSON line: tools,
// progress [[value, ms since the call], ...], slow_ms, echo (text or {error}), leak.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, argsJson] = process.argv.slice(2);
const args = JSON.parse(argsJson);
const client = new Client({ name: "ts-sdk-client", version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
const out = {};
out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
const slow = out.tools.includes("slow_progress")
  ? ["slow_progress", { steps: 3, delay: 0.3 }]
  : ["slow", { steps: 3 }];
out.progress = [];
const t0 = Date.now();
const r = await client.callTool({ name: slow[0], arguments: slow[1] }, undefined, {
  onprogress: (p) => out.progress.push([p.progress, Date.now() - t0]),
});
out.slow_ms = Date.now() - t0;
out.slow = r.content[0].text;
const text = async (name, a) => {
  try {
    const res = await client.callTool({ name, arguments: a });
    return res.isError ? { isError: res.content[0].text } : res.content[0].text;
  } catch (e) {
    return { error: e.code, message: e.message };
  }
};
out.echo = await text("echo", { text: args.echo });
out.leak = await text("leak", args.leak || {});
await client.close();
console.log(JSON.stringify(out));
