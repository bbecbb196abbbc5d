/**
 * Spans through Deno's built-in OpenTelemetry: a real server (`deno task start`'s way) runs with
 * `OTEL_DENO=true`, exporting OTLP/HTTP JSON to a receiver started here; a kv PUT's trace has
 * Chorus's own spans (mailbox wait, group commit, KV commit, KV read) under the request's span.
 * @module
 */
import assert from "node:assert/strict";
import { type StartedServer, startServer, tempKvPath } from "../_helpers.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string } }[];
}

function attribute(span: OtlpSpan, key: string): string | undefined {
  const a = span.attributes.find((a) => a.key === key);
  return a?.value.stringValue ?? a?.value.intValue;
}

Deno.test("[otel] a kv PUT's trace has Chorus spans under the HTTP server span", async () => {
  const spans: OtlpSpan[] = [];
  const receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = await req.text();
    if (new URL(req.url).pathname === "/v1/traces") {
      const json = JSON.parse(body);
      for (const r of json.resourceSpans ?? []) {
        for (const s of r.scopeSpans ?? []) spans.push(...(s.spans ?? []));
      }
    }
    return Response.json({});
  });
  const { path, cleanup } = await tempKvPath();
  let task: StartedServer | undefined;
  try {
    task = await startServer({
      CHORUS_KV: path,
      CHORUS_AUTH: "off",
      CHORUS_LOG_LEVEL: "warn",
      DENO_JOBS: "1",
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.addr.port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_DENO_CONSOLE: "ignore",
      OTEL_SERVICE_NAME: "chorus-test",
    });
    const { base, child, output } = task;
    const res = await fetch(`${base}/api/v1/kv/traced`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: { hello: "otel" } }),
    });
    assert.equal(res.status, 200, await res.text());
    // Stopping flushes what is batched.
    child.kill("SIGTERM");
    assert.equal((await task.exited(30_000)).code, 0, (await output).join("\n"));

    const server = spans.find((s) =>
      s.kind === 2 && attribute(s, "url.path") === "/api/v1/kv/traced"
    );
    assert.ok(server, `the HTTP server span was exported: ${spans.map((s) => s.name)}`);
    const trace = spans.filter((s) => s.traceId === server.traceId);
    const named = (name: string) => trace.filter((s) => s.name === name);
    const mailbox = named("chorus.mailbox");
    assert.equal(mailbox.length, 1, trace.map((s) => s.name).join(", "));
    assert.equal(mailbox[0].parentSpanId, server.spanId);
    assert.equal(attribute(mailbox[0], "chorus.actor.kind"), "kv");
    assert.equal(attribute(mailbox[0], "chorus.actor.id"), "traced");
    const read = named("chorus.kv.read");
    assert.ok(read.length >= 1, "the actor's load is a KV read in the trace");
    assert.ok(read.every((s) => s.parentSpanId === server.spanId));
    const commit = named("chorus.commit");
    assert.equal(commit.length, 1);
    assert.equal(commit[0].parentSpanId, server.spanId);
    const kvCommit = named("chorus.kv.commit");
    assert.equal(kvCommit.length, 1);
    assert.equal(kvCommit[0].parentSpanId, commit[0].spanId, "the KV commit is the group's child");
  } finally {
    await task?.kill();
    await receiver.shutdown();
    await cleanup();
  }
});
