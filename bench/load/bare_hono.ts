/**
 * The reference for HTTP benchmarks: a bare Hono app answering the same JSON as
 * `GET|PUT /api/v1/kv/:key` from a Map, with no actors, KV or validation.
 * Usage: deno run -A bench/load/bare_hono.ts <port>, or
 * `deno serve --parallel -A --port <port> bench/load/bare_hono.ts` (each worker its own `Map`).
 */
import { Hono } from "hono";

const map = new Map<string, { value: unknown; version: number }>();
const app = new Hono();
app.get("/api/v1/kv/:key", (c) => {
  const key = c.req.param("key");
  const found = map.get(key);
  if (!found) return c.json({ error: { code: "not_found", message: "no such key" } }, 404);
  return c.json({ key, value: found.value, version: found.version });
});
app.put("/api/v1/kv/:key", async (c) => {
  const key = c.req.param("key");
  const body = await c.req.json();
  const version = (map.get(key)?.version ?? 0) + 1;
  map.set(key, { value: body.value, version });
  return c.json({ key, version });
});
if (import.meta.main && Deno.args[0]) {
  Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => {} }, app.fetch);
}

/** The app for `deno serve`. */
export default { fetch: app.fetch };
