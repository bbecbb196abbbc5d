/**
 * What telemetry costs on the kv path: `chorus.kv.get` (strong: one KV read) and `chorus.kv.put`
 * (one group commit) with no `node:diagnostics_channel` subscriber (the baseline, what every
 * deployment pays) and with a subscriber on every Chorus channel (each event built and
 * delivered); and the same two over HTTP (`PUT /api/v1/kv/:key` through `chorus.app`, in process).
 * Spans are Deno's OpenTelemetry, on for the whole process or not at all: run the file a second time
 * with `OTEL_DENO=true` (and an `OTEL_EXPORTER_OTLP_ENDPOINT`) to see their cost.
 * Run: deno bench -A bench/telemetry_bench.ts
 */
import diagnostics from "node:diagnostics_channel";
import { Chorus, TELEMETRY_CHANNELS } from "../mod.ts";

// In memory: the figures are then Chorus's own work, not the disk's.
const chorus = await Chorus.open({ path: ":memory:" });
const value = { user: "u-42", cart: [1, 2, 3], total: 99.5 };
await chorus.kv.put("hot", value);

let received = 0;
const count = () => received++;
function subscribe(): void {
  for (const name of Object.values(TELEMETRY_CHANNELS)) diagnostics.subscribe(name, count);
}
function unsubscribe(): void {
  for (const name of Object.values(TELEMETRY_CHANNELS)) diagnostics.unsubscribe(name, count);
}

Deno.bench("kv.get strong, no subscriber", { group: "get", baseline: true }, async () => {
  await chorus.kv.get("hot", { consistency: "strong" });
});
Deno.bench("kv.get strong, subscribed to every channel", { group: "get" }, async (b) => {
  subscribe();
  b.start();
  await chorus.kv.get("hot", { consistency: "strong" });
  b.end();
  unsubscribe();
});

let n = 0;
Deno.bench("kv.put, no subscriber", { group: "put", baseline: true }, async () => {
  await chorus.kv.put("hot", { ...value, n: n++ });
});
Deno.bench("kv.put, subscribed to every channel", { group: "put" }, async (b) => {
  subscribe();
  b.start();
  await chorus.kv.put("hot", { ...value, n: n++ });
  b.end();
  unsubscribe();
});

const body = () => JSON.stringify({ value: { ...value, n: n++ } });
const put = () =>
  chorus.app.request("/api/v1/kv/hot", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: body(),
  });
Deno.bench("HTTP PUT, no subscriber", { group: "http put", baseline: true }, async () => {
  await (await put()).arrayBuffer();
});
Deno.bench("HTTP PUT, subscribed to every channel", { group: "http put" }, async (b) => {
  subscribe();
  b.start();
  await (await put()).arrayBuffer();
  b.end();
  unsubscribe();
});

globalThis.addEventListener("unload", () => {
  if (received === 0) console.error("no telemetry event was received: the bench measured nothing");
  chorus.close();
});
