/**
 * `deno task start` and `deno task dev`: validates the configuration, then runs `deno serve` on
 * `CHORUS_PORT` — one worker per core (`--parallel`) sharing the KV file, or a single worker for
 * `:memory:` (which cannot be shared) and for `--dev` (with `--watch`, auth off by default).
 * @module
 */
import { ConfigError, loadConfig } from "./config.ts";
import { ensureKvDir } from "./storage/open.ts";

const dev = Deno.args.includes("--dev");
let config;
try {
  config = loadConfig(Deno.env.toObject(), { dev });
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(`chorus: ${e.message}`);
    Deno.exit(2);
  }
  throw e;
}
await ensureKvDir(config.kvPath);
const parallel = !dev && config.kvPath !== ":memory:";
const args = [
  "serve",
  "--unstable-kv",
  "--unstable-cron",
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-write",
  "--allow-sys",
  "--port",
  String(config.port),
  "--host",
  config.host,
  ...(parallel ? ["--parallel"] : []),
  ...(dev ? ["--watch"] : []),
  new URL("./main.ts", import.meta.url).pathname,
];
const child = new Deno.Command(Deno.execPath(), {
  args,
  env: {
    // Deno's WebSocket then writes each frame with writev instead of first copying it into a
    // per-socket buffer that keeps the size of the largest frame ever sent: with presence, every
    // joiner gets the whole list, so that buffer cost each socket of a 1,000-member topic ~100 KB
    // (idle RSS per socket 4.2× a bare server's; 2.3× with it). Set it empty to turn it off.
    DENO_USE_WRITEV: Deno.env.get("DENO_USE_WRITEV") ?? "1",
    ...(dev ? { CHORUS_DEV: "1" } : {}),
  },
  stdin: "null",
}).spawn();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => child.kill(signal));
}
Deno.exit((await child.status).code);
