/**
 * Chorus in one process on a durable temp KV file, for HTTP benchmarks.
 * Usage: deno run -A bench/load/chorus_server.ts <port> <kv-path>
 */
import { Chorus } from "../../mod.ts";

const chorus = await Chorus.open({ path: Deno.args[1] });
Deno.serve({ hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => {} }, chorus.fetch);
