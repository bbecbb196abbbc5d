/**
 * The servers of the socket benchmarks (`socket_fanout.ts`, `join_storm.ts`): Chorus
 * (`chorus_ws_server.ts`) or the bare reference (`bare_ws_server.ts`), each in its own process on
 * 127.0.0.1 with `--expose-gc`, and what the benchmarks read of them (a full GC, RSS, CPU time).
 * @module
 */
import { sleep } from "./_ws_pool.ts";

const here = new URL(".", import.meta.url).pathname;

/** A benchmark server process. */
export interface WsServer {
  pid: number;
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** The Phoenix socket URL (`vsn=2.0.0`). */
  url: string;
  child: Deno.ChildProcess;
}

/** What to start: the bare server (with or without presence frames) or Chorus on a KV file. */
export type WsServerKind =
  | { kind: "bare"; presence: boolean }
  | { kind: "chorus"; kvPath: string; presence: boolean };

/**
 * Starts a server and waits until it answers (its GC endpoint), at most `tries` × 50 ms.
 * @param options.writev run with `DENO_USE_WRITEV=1` (as `deno task start` runs Chorus)
 * @param options.inspect extra flags such as `--inspect=host:port`
 */
export async function spawnWsServer(
  what: WsServerKind,
  port: number,
  options: { writev: boolean; inspect?: string[]; tries?: number },
): Promise<WsServer> {
  const script = what.kind === "bare"
    ? [`${here}bare_ws_server.ts`, String(port), what.presence ? "presence" : ""]
    : [`${here}chorus_ws_server.ts`, String(port), what.kvPath, what.presence ? "" : "nopresence"];
  const child = new Deno.Command(Deno.execPath(), {
    env: { DENO_USE_WRITEV: options.writev ? "1" : "" },
    args: [
      "run",
      "-A",
      "--unstable-kv",
      "--v8-flags=--expose-gc",
      ...(options.inspect ?? []),
      ...script,
    ],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const server: WsServer = {
    pid: child.pid,
    base: `http://127.0.0.1:${port}`,
    url: `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`,
    child,
  };
  for (let i = 0; i < (options.tries ?? 200); i++) {
    try {
      await gcServer(server);
      return server;
    } catch {
      await sleep(50);
    }
  }
  await stopServer(server);
  throw new Error(`the ${what.kind} server on ${port} did not start`);
}

/** Stops a server by its PID: SIGTERM, then SIGKILL after 5 s. */
export async function stopServer(server: WsServer): Promise<void> {
  try {
    server.child.kill("SIGTERM");
  } catch {
    // already gone
  }
  const exited = await Promise.race([server.child.status.then(() => true), sleep(5000)]);
  if (!exited) {
    try {
      server.child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await Promise.race([server.child.status, sleep(5000)]);
  }
}

/** Full GC in the server (it runs with --expose-gc), bounded by 10 s; returns its stats. */
export async function gcServer(server: WsServer): Promise<unknown> {
  const r = await fetch(`${server.base}/__bench/gc`, { signal: AbortSignal.timeout(10_000) });
  return await r.json();
}

/** VmRSS of a process in KB. */
export function rssKb(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** CPU seconds (user + system) used by a process so far. */
export function cpuSeconds(pid: number | "self"): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100)
}
