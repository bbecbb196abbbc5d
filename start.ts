/**
 * `deno task start` and `deno task dev`: validates the configuration, checks that the port is free
 * and the KV file can be opened, then runs `deno serve` on `CHORUS_PORT` — one worker per core
 * (`--parallel`) sharing the KV file, or a single worker for `:memory:` (which cannot be shared)
 * and for `--dev` (with `--watch`, auth off by default). A start that cannot work exits non-zero
 * with one line, before a worker has opened the store (so no one-time admin token is printed and
 * lost), and once the server answers, one line says where it listens and how it is set up.
 * @module
 */
import { ConfigError, isKvConnect, loadConfig, type ResolvedConfig } from "./config.ts";
import { openKv } from "./storage/open.ts";

/** Ends the start with one readable line and a non-zero code. */
function fail(message: string, code = 1): never {
  console.error(`chorus: ${message}`);
  Deno.exit(code);
}

/** Refuses a port in use (or not allowed) and a KV file that cannot be opened. */
async function preflight(config: ResolvedConfig): Promise<void> {
  try {
    Deno.listen({ hostname: config.host, port: config.port }).close();
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse
      ? "the address is already in use (another server on that port?)"
      : (e as Error).message;
    fail(`cannot listen on ${config.host}:${config.port}: ${why}`);
  }
  const path = config.kvPath;
  if (path && path !== ":memory:" && !isKvConnect(path)) {
    try {
      (await openKv(path)).close();
    } catch (e) {
      fail(`cannot open the KV file ${path} (CHORUS_KV): ${(e as Error).message}`);
    }
  }
}

/** Logs where the server answers, once it does. */
async function announce(config: ResolvedConfig): Promise<void> {
  const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  const url = `http://${host}:${config.port}`;
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${config.port}/health`);
      await res.body?.cancel();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (i === 299) return; // never answered: the server's own output says why
    await new Promise((r) => setTimeout(r, 100));
  }
  const cors = config.corsOrigins.length ? config.corsOrigins.join(", ") : "none";
  console.error(
    `chorus: listening on ${url} (auth ${config.auth ? "on" : "off"}, CORS origins: ${cors}, ` +
      `KV: ${config.kvPath ?? "default"}); API docs at ${url}/api/docs`,
  );
}

const dev = Deno.args.includes("--dev");
let config: ResolvedConfig;
try {
  config = loadConfig(Deno.env.toObject(), { dev });
} catch (e) {
  if (e instanceof ConfigError) fail(e.message, 2);
  throw e;
}
await preflight(config);
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
// A signal reaches only the workers listening when it comes, and a worker listens only once it
// serves (`deno serve` to stop its HTTP server, main.ts to close Chorus): one still starting would
// miss it and keep the server up. So the signal is passed on again every second until it stops.
let passing: ReturnType<typeof setInterval> | undefined;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    const pass = () => {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
    };
    pass();
    clearInterval(passing);
    passing = setInterval(pass, 1_000);
  });
}
announce(config);
Deno.exit((await child.status).code);
