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
  env: dev ? { CHORUS_DEV: "1" } : {},
  stdin: "null",
}).spawn();
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => child.kill(signal));
}
Deno.exit((await child.status).code);
