/**
 * Chorus in one process on a durable temp KV file, for HTTP benchmarks. With `auth`, auth is on
 * and a kv token is created and printed as `token <secret>`. With `direct`, the server is the
 * floor of Chorus over HTTP rather than Chorus's app: a bare `Deno.serve` handler that calls the
 * embedded `kv.get` / `kv.put` for `GET|PUT /api/v1/kv/:key` and answers the same JSON and `ETag`,
 * with no router, middleware, validation or limits. What any HTTP layer in front of the same
 * actors and KV commits can reach, on this machine, in the same run.
 * Usage: deno run -A bench/load/chorus_server.ts <port> <kv-path> [auth|direct]
 */
import { Chorus } from "../../mod.ts";

const mode = Deno.args[2];
const chorus = await Chorus.open({ path: Deno.args[1], config: { auth: mode === "auth" } });
if (mode === "auth") {
  const { token } = await chorus.tokens.create({ scopes: ["kv:read", "kv:write"] });
  console.log(`token ${token}`);
}

const PREFIX = "/api/v1/kv/";

/** The floor: the embedded call behind each hot kv route, and nothing else. */
async function direct(req: Request): Promise<Response> {
  const path = new URL(req.url).pathname;
  if (!path.startsWith(PREFIX)) return new Response(null, { status: 404 });
  const key = decodeURIComponent(path.slice(PREFIX.length));
  if (req.method === "PUT") {
    const { value } = JSON.parse(await req.text());
    const result = await chorus.kv.put(key, value, { handOver: true });
    return answer(JSON.stringify(result), result.version);
  }
  const found = await chorus.kv.get(key);
  if (!found) return new Response(null, { status: 404 });
  return answer(
    JSON.stringify({ key, value: found.value, version: found.version }),
    found.version,
  );
}

function answer(body: string, version: number): Response {
  return new Response(body, {
    headers: { "content-type": "application/json", etag: `"${version}"` },
  });
}

Deno.serve(
  { hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => {} },
  mode === "direct" ? direct : chorus.fetch,
);
