/**
 * Test helpers: a Chorus on `:memory:` or a temp-dir KV with a manual clock, and a JSON request
 * helper over `app.request()`.
 * @module
 */
import { Chorus, type ChorusOptions } from "../mod.ts";
import { ManualClock } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";

/** A Chorus on a private in-memory KV with a manual clock. */
export async function openTest(
  options: { config?: Partial<ResolvedConfig>; path?: string; kv?: Deno.Kv } = {},
): Promise<{ chorus: Chorus; clock: ManualClock }> {
  const clock = new ManualClock();
  const open: ChorusOptions = {
    path: options.path ?? ":memory:",
    kv: options.kv,
    clock,
    config: options.config,
  };
  return { chorus: await Chorus.open(open), clock };
}

/** A fresh temp directory's KV file path, removed by the returned cleanup. */
export async function tempKvPath(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "chorus-test-" });
  return {
    path: `${dir}/chorus.kv`,
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/**
 * Resolves when `check()` is true, polling every 5 ms; rejects after `ms` (for what runs on its
 * own: KV watch streams, sockets, other instances).
 */
export async function until(check: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Response of {@linkcode call}. */
export interface Called {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Sends a JSON request to an app and parses the JSON answer. */
export async function call(
  app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Called> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const res = await app.request(path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/**
 * A request as `Deno.serve` hands it over for a raw path such as `/a/../b`: `Deno.serve` leaves
 * the path as sent (`curl --path-as-is`), while `new Request` would resolve the dot segments.
 */
export function rawPathRequest(method: string, path: string): Request {
  const request = new Request("http://localhost/", { method });
  Object.defineProperty(request, "url", { value: `http://localhost${path}` });
  return request;
}

/** A server process started by a test (see {@linkcode spawnServer}). */
export interface ServerProcess {
  child: Deno.ChildProcess;
  /** Its stdout and stderr, read to the end (resolves once it has exited). */
  output: Promise<[string, string]>;
  /** Kills it (SIGKILL) if it is still running and waits for it and its output. */
  kill(): Promise<void>;
}

/** Runs `deno run -A <args>` with `env`, its output piped, for tests of the real process. */
export function spawnServer(args: string[], env: Record<string, string>): ServerProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]) as Promise<[string, string]>;
  return {
    child,
    output,
    async kill() {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await child.status;
      await output;
    },
  };
}

/** Resolves once `GET /health` on 127.0.0.1:`port` answers 200; throws after ~30 s. */
export async function waitHealthy(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server never answered /health");
}
