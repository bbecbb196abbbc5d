/**
 * Chorus in one process on a durable temp KV file, for HTTP benchmarks. With `auth`, auth is on
 * and a kv token is created and printed as `token <secret>`.
 * Usage: deno run -A bench/load/chorus_server.ts <port> <kv-path> [auth]
 */
import { Chorus } from "../../mod.ts";

const auth = Deno.args[2] === "auth";
const chorus = await Chorus.open({ path: Deno.args[1], config: { auth } });
if (auth) {
  const { token } = await chorus.tokens.create({ scopes: ["kv:read", "kv:write"] });
  console.log(`token ${token}`);
}
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => {} }, chorus.fetch);
