// deno-lint-ignore-file no-explicit-any
/**
 * Soak test (not in CI): Chorus under `deno serve` in its own process on 127.0.0.1, a durable KV
 * file in a temp dir, driven at a fixed rate (open loop) with mixed load for a set time —
 * kv (put with and without TTL, get, incr, delete, list, bulk), contexts (put, merge patch, sync),
 * reels (updates, likes, views, reads), user presence, short-lived SSE watches, and `phoenix`
 * sockets on kv/context/reel topics that are regularly dropped and reconnected.
 *
 * Every 10 s it samples the server, right after a full garbage collection (the server runs with
 * `--expose-gc`; `GET /soak/gc`), so memory figures are what it retains: RSS
 * (`/proc/<pid>/status`), open file descriptors (`/proc/<pid>/fd`), live actors and sockets/topics
 * (`GET /api/v1/system/stats`), open KV watch streams, the errors and latency of the interval, and
 * the operations still waiting more than 10 s past their end (named, so a stuck actor or route
 * shows itself). At the end it prints the curve as a Markdown table and a verdict: flat after
 * warm-up (RSS, fds, actors, watch streams), zero errors and nothing hanging. It stops by itself (the server by PID: SIGTERM, then SIGKILL).
 *
 * Open KV watch streams are not in any Chorus endpoint, so the server is this same file run by
 * `deno serve` (`CHORUS_SOAK_ROLE=server`): it opens Chorus as `main.ts` does (configuration from
 * the environment) on a `Deno.Kv` whose `watch()` streams are counted, and answers
 * `GET /soak/stats` with that count; every other request goes to Chorus.
 *
 * With `--parallel` the server runs as `deno task start` runs it: `deno serve --parallel`, two
 * workers on the KV file writing through one of them (storage/one_writer.ts). Samples then come
 * from whichever worker answers, so live actors and watch streams (per worker) are not judged.
 *
 * Run: `deno run -A bench/load/soak.ts [--minutes=10] [--rate=200] [--sockets=24]
 * [--sample=10] [--port=18131] [--warmup=<s>] [--parallel]` (warm-up default: a fifth of the run, at least
 * 30 s). Exit code 1 when the verdict fails.
 * @module
 */
import { Chorus } from "../../chorus.ts";
import { loadConfig } from "../../config.ts";
import { setLogLevel } from "../../log.ts";
import { openKv } from "../../storage/open.ts";
import { mulberry32 } from "../../prng.ts";

// ---------------------------------------------------------------------------------------------
// Server role: `deno serve` runs this file with CHORUS_SOAK_ROLE=server.

let handler: ((request: Request, info: Deno.ServeHandlerInfo) => Promise<Response>) | undefined;

/** Open `kv.watch` streams of the server process. */
const watchStreams = { open: 0, opened: 0 };

/** Counts a watch stream from its start until it ends or is cancelled. */
function counted<T>(stream: ReadableStream<T>): ReadableStream<T> {
  watchStreams.open++;
  watchStreams.opened++;
  let ended = false;
  const end = () => {
    if (!ended) {
      ended = true;
      watchStreams.open--;
    }
  };
  const reader = stream.getReader();
  return new ReadableStream<T>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          end();
          controller.close();
        } else controller.enqueue(value);
      } catch (e) {
        end();
        controller.error(e);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

async function startServer(): Promise<typeof handler> {
  const config = loadConfig(Deno.env.toObject());
  setLogLevel(config.logLevel);
  const real = await openKv(config.kvPath);
  // Methods of Deno.Kv use private state: call them on the real handle.
  const kv = new Proxy(real, {
    get(target, prop) {
      if (prop === "watch") {
        return (keys: Deno.KvKey[], options?: { raw?: boolean }) =>
          counted(target.watch(keys, options));
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  // With --parallel the workers write through one of them, as main.ts sets it up.
  const workersChannel = Deno.env.get("CHORUS_SOAK_PARALLEL") === "1"
    ? `chorus:workers:${config.kvPath}`
    : undefined;
  const chorus = await Chorus.open({ kv, config, scheduler: "timer", workersChannel });
  const stop = async () => {
    await chorus.close({ socketCode: 1001 }).catch(() => {});
    real.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  return async (request, info) => {
    const path = new URL(request.url).pathname;
    if (path === "/soak/stats") {
      return Response.json({ watch_streams: watchStreams.open, watch_opened: watchStreams.opened });
    }
    if (path === "/soak/gc") {
      // A full collection before each sample, so RSS and heap are what the server retains rather
      // than wherever V8's collection cycle happens to be (its heap runs up to ~2× before one).
      (globalThis as { gc?: () => void }).gc?.();
      return new Response(null, { status: 204 });
    }
    return await chorus.fetch(request, info);
  };
}

/** The fetch handler `deno serve` calls (server role only). */
export default {
  fetch(request: Request, info: Deno.ServeHandlerInfo): Promise<Response> {
    if (!handler) return Promise.resolve(new Response("starting", { status: 503 }));
    return handler(request, info);
  },
} satisfies Deno.ServeDefaultExport;

// ---------------------------------------------------------------------------------------------
// Driver role.

function arg(name: string, fallback: number): number {
  const raw = Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name}=${raw}: expected a number`);
    Deno.exit(2);
  }
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Sample {
  t: number;
  ops: number;
  errors: number;
  p99: number;
  rss: number;
  fds: number;
  actors: number;
  watch: number;
  sockets: number;
  topics: number;
  heap: number;
  inflight: number;
  /** Operations more than 10 s past their due end, by name. */
  hanging: Map<string, number>;
  received: number;
}

/** Errors of the run, by kind, with the first few messages. */
class Errors {
  total = 0;
  readonly byKind = new Map<string, number>();
  readonly examples: string[] = [];

  add(kind: string, detail: string): void {
    this.total++;
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    if (this.examples.length < 10) this.examples.push(`${kind}: ${detail}`);
  }
}

async function drive(): Promise<number> {
  const minutes = arg("minutes", 10);
  const rate = arg("rate", 200);
  const socketCount = arg("sockets", 24);
  const sampleSec = arg("sample", 10);
  const port = arg("port", 18131);
  const parallel = Deno.args.includes("--parallel");
  const durationMs = minutes * 60_000;
  const warmupMs = arg("warmup", Math.max(30, minutes * 60 / 5)) * 1000;
  const root = new URL("../../", import.meta.url).pathname;
  const base = `http://127.0.0.1:${port}`;
  const dir = await Deno.makeTempDir({ prefix: "chorus-soak-" });
  // Seeded, so runs draw the same mix.
  const random = mulberry32(0x50A4);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];

  console.error(
    `soak: ${minutes} min at ${rate} ops/s, ${socketCount} sockets, sample every ${sampleSec} s, ` +
      `warm-up ${warmupMs / 1000} s, server on 127.0.0.1:${port}, KV in ${dir}`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "serve",
      ...(parallel ? ["--parallel"] : []),
      "-A",
      "--v8-flags=--expose-gc",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      import.meta.filename!,
    ],
    cwd: root,
    env: {
      CHORUS_SOAK_ROLE: "server",
      ...(parallel ? { CHORUS_SOAK_PARALLEL: "1", DENO_JOBS: "2" } : {}),
      CHORUS_KV: `${dir}/chorus.kv`,
      CHORUS_BACKUP_DIR: `${dir}/backups`,
      CHORUS_AUTH: "off",
      CHORUS_LOG_LEVEL: "warn",
      DENO_USE_WRITEV: Deno.env.get("DENO_USE_WRITEV") ?? "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pid = child.pid;
  let serverLog = "";
  const decoder = new TextDecoder();
  for (const stream of [child.stdout, child.stderr]) {
    stream.pipeTo(
      new WritableStream({
        write: (chunk) => {
          serverLog += decoder.decode(chunk);
          if (serverLog.length > 200_000) serverLog = serverLog.slice(-100_000);
        },
      }),
    ).catch(() => {});
  }
  let exited = false;
  child.status.then(() => exited = true);
  // Whatever happens, the run ends: the whole script has a hard deadline.
  const hardStop = setTimeout(() => {
    console.error("soak: hard deadline passed, killing the server");
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    Deno.exit(3);
  }, durationMs + 180_000);

  const errors = new Errors();
  const sockets: any[] = [];
  let stopping = false;
  let code = 1;
  try {
    for (let i = 0;; i++) {
      try {
        const res = await fetch(`${base}/health`);
        await res.body?.cancel();
        if (res.ok) break;
      } catch {
        // not up yet
      }
      if (exited || i > 400) throw new Error(`the server did not start:\n${serverLog}`);
      await sleep(50);
    }

    // The working set: fixed, so memory and actors should level off.
    const KV_KEYS = 500, HOT_KEYS = 20, CONTEXTS = 50, REELS = 20, USERS = 60;
    const json = (method: string, path: string, body?: unknown, type = "application/json") =>
      fetch(`${base}${path}`, {
        method,
        headers: body === undefined ? {} : { "content-type": type },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    // Preload: every key of the working set written and read once, so its actors (and their
    // watches) exist before the curve starts and what follows measures steady state.
    const preload = async (what: string, n: number, fn: (i: number) => Promise<Response>) => {
      await Promise.all(Array.from({ length: 16 }, async (_, lane) => {
        for (let i = lane; i < n; i += 16) {
          const res = await fn(i);
          const text = await res.text();
          if (!res.ok) throw new Error(`preload ${what} ${i}: ${res.status} ${text}`);
        }
      }));
    };
    await preload(
      "context",
      CONTEXTS,
      (c) => json("PUT", `/api/v1/contexts/ctx-${c}`, { context: { n: 0, items: [] } }),
    );
    await preload("context sync", CONTEXTS, (c) => fetch(`${base}/api/v1/contexts/ctx-${c}/sync`));
    await preload("kv", KV_KEYS, (i) => json("PUT", `/api/v1/kv/k-${i}`, { value: i }));
    await preload("kv get", KV_KEYS, (i) => fetch(`${base}/api/v1/kv/k-${i}`));
    await preload("hot", HOT_KEYS, (i) => json("PUT", `/api/v1/kv/hot-${i}`, { value: i }));
    await preload("counter", 20, (i) => json("POST", `/api/v1/kv/n-${i}/incr`, {}));
    await preload("counter get", 20, (i) => fetch(`${base}/api/v1/kv/n-${i}`));
    await preload(
      "reel",
      REELS,
      (i) => json("POST", `/api/v1/reels/reel-${i}/updates`, { update_data: { caption: "first" } }),
    );
    await preload("reel get", REELS, (i) => fetch(`${base}/api/v1/reels/reel-${i}`));
    await preload(
      "presence",
      USERS,
      (i) => json("POST", `/api/v1/users/u-${i}/presence`, { status: "online" }),
    );

    let ops = 0, intervalOps = 0, inflight = 0;
    let latencies: number[] = [];
    // Every operation in flight (answer and body), with when it should have ended, so a sample
    // can name the ones that hang.
    const pending = new Map<number, { name: string; due: number }>();
    let pendingId = 0;
    const hanging = (lateMs: number): Map<string, number> => {
      const now = performance.now();
      const byName = new Map<string, number>();
      for (const { name, due } of pending.values()) {
        if (now - due > lateMs) byName.set(name, (byName.get(name) ?? 0) + 1);
      }
      return byName;
    };
    const ok = (status: number, allowed: number[]) => status < 300 || allowed.includes(status);
    const run = async (name: string, fn: () => Promise<Response>, allowed: number[] = []) => {
      inflight++;
      const started = performance.now();
      const id = pendingId++;
      pending.set(id, { name, due: started });
      try {
        const res = await fn();
        const text = await res.text();
        if (!ok(res.status, allowed)) errors.add(`${name} ${res.status}`, text.slice(0, 200));
      } catch (e) {
        if (!stopping) errors.add(`${name} threw`, String(e));
      } finally {
        pending.delete(id);
        inflight--;
        ops++;
        intervalOps++;
        latencies.push(performance.now() - started);
      }
    };

    /** A watch over SSE, read for a few seconds, then dropped (its stream must close). */
    const sse = async () => {
      const abort = new AbortController();
      inflight++;
      const id = pendingId++;
      pending.set(id, { name: "sse", due: performance.now() });
      try {
        const res = await fetch(`${base}/api/v1/kv/hot-${Math.floor(random() * HOT_KEYS)}/watch`, {
          signal: abort.signal,
        });
        if (!res.ok) {
          errors.add(`sse ${res.status}`, await res.text());
          return;
        }
        const reader = res.body!.getReader();
        const until = performance.now() + 1000 + random() * 3000;
        pending.set(id, { name: "sse", due: until });
        // Deno's fetch stops ending a body read on abort after a few minutes of this load (a
        // bare `Deno.serve` SSE route does the same, from ~200 s): the read then waits forever
        // and its connection stays open. Cancelling the reader ends it either way.
        const timer = setTimeout(() => {
          abort.abort();
          reader.cancel().catch(() => {});
        }, until - performance.now());
        try {
          while (true) {
            const { done } = await reader.read();
            if (done) break;
          }
        } catch {
          // aborted: the expected end
        } finally {
          clearTimeout(timer);
        }
      } catch (e) {
        if (!stopping && !(e instanceof DOMException && e.name === "AbortError")) {
          errors.add("sse threw", String(e));
        }
      } finally {
        pending.delete(id);
        inflight--;
        ops++;
        intervalOps++;
      }
    };

    const mix: [number, () => Promise<void>][] = [
      [16, () => {
        const key = `k-${Math.floor(random() * KV_KEYS)}`;
        const body: any = { value: { v: random(), pad: "p".repeat(Math.floor(random() * 400)) } };
        if (random() < 0.25) body.ttl = 5 + Math.floor(random() * 25);
        return run("kv put", () => json("PUT", `/api/v1/kv/${key}`, body));
      }],
      [8, () =>
        run(
          "kv put hot",
          () =>
            json("PUT", `/api/v1/kv/hot-${Math.floor(random() * HOT_KEYS)}`, { value: random() }),
        )],
      [18, () =>
        run(
          "kv get",
          () =>
            fetch(
              `${base}/api/v1/kv/k-${Math.floor(random() * KV_KEYS)}${
                pick(["", "?consistency=strong", "?consistency=eventual"])
              }`,
            ),
          [404],
        )],
      [5, () =>
        run(
          "kv incr",
          () => json("POST", `/api/v1/kv/n-${Math.floor(random() * 20)}/incr`, { by: 1 }),
        )],
      [3, () =>
        run(
          "kv delete",
          () =>
            fetch(`${base}/api/v1/kv/k-${Math.floor(random() * KV_KEYS)}`, { method: "DELETE" }),
          [404],
        )],
      [2, () => run("kv list", () => fetch(`${base}/api/v1/kv?prefix=k-1&limit=50&values=true`))],
      [2, () => {
        const start = Math.floor(random() * (KV_KEYS - 10));
        const items = Array.from({ length: 10 }, (_, i) => ({ key: `k-${start + i}`, value: i }));
        return run("kv bulk", () => json("POST", "/api/v1/kv/bulk", { items }));
      }],
      [6, () => {
        const id = `ctx-${Math.floor(random() * CONTEXTS)}`;
        const patch = {
          n: Math.floor(random() * 1000),
          [`f${Math.floor(random() * 8)}`]: random(),
        };
        return run(
          "context patch",
          () => json("PATCH", `/api/v1/contexts/${id}`, patch, "application/merge-patch+json"),
        );
      }],
      [2, () =>
        run(
          "context put",
          () =>
            json("PUT", `/api/v1/contexts/ctx-${Math.floor(random() * CONTEXTS)}`, {
              context: { n: 0, items: [random()] },
            }),
        )],
      [5, () =>
        run(
          "context sync",
          () =>
            fetch(
              `${base}/api/v1/contexts/ctx-${Math.floor(random() * CONTEXTS)}/sync?version=${
                Math.floor(random() * 20)
              }`,
            ),
        )],
      [5, () =>
        run(
          "reel update",
          () =>
            json("POST", `/api/v1/reels/reel-${Math.floor(random() * REELS)}/updates`, {
              update_data: { caption: "c", n: random() },
            }),
        )],
      [6, () =>
        run(
          "reel interaction",
          () =>
            json("POST", `/api/v1/reels/reel-${Math.floor(random() * REELS)}/interactions`, {
              type: pick(["like", "view", "view", "unlike", "share"]),
              user_id: `u-${Math.floor(random() * USERS)}`,
            }),
        )],
      [5, () =>
        run(
          "reel get",
          () => fetch(`${base}/api/v1/reels/reel-${Math.floor(random() * REELS)}`),
          [404],
        )],
      [5, () =>
        run(
          "user presence",
          () =>
            json("POST", `/api/v1/users/u-${Math.floor(random() * USERS)}/presence`, {
              status: pick(["online", "away", "online"]),
              current_reel: `reel-${Math.floor(random() * REELS)}`,
            }),
        )],
      [1, () => sse()],
    ];
    const weights = mix.map(([w]) => w);
    const totalWeight = weights.reduce((a, b) => a + b, 0);
    const nextOp = () => {
      let x = random() * totalWeight;
      for (const [w, op] of mix) {
        x -= w;
        if (x < 0) return op;
      }
      return mix[0][1];
    };

    // Sockets: phoenix clients on a hot kv key, a context and a reel each; some are dropped and
    // reconnected every interval.
    const { Socket } = await import("phoenix");
    let received = 0;
    const openSocket = (i: number) => {
      const socket = new Socket(`ws://127.0.0.1:${port}/socket`, {
        params: { user_id: `u-${i % USERS}` },
        reconnectAfterMs: () => 200,
        rejoinAfterMs: () => 500,
        heartbeatIntervalMs: 15_000,
      });
      socket.onError(() => {
        if (!stopping && !socket.soakClosing) errors.add("socket error", `socket ${i}`);
      });
      socket.connect();
      for (
        const topic of [
          `kv:hot-${i % HOT_KEYS}`,
          `context:ctx-${i % CONTEXTS}`,
          `reel:reel-${i % REELS}`,
        ]
      ) {
        const channel = socket.channel(topic, {});
        channel.onMessage = (event: string | null, payload: unknown) => {
          // A push that timed out is triggered with a null event.
          if (event !== null && !event.startsWith("phx_")) received++;
          return payload;
        };
        channel.join()
          .receive("error", (e: any) => errors.add("join error", `${topic} ${JSON.stringify(e)}`))
          .receive("timeout", () => errors.add("join timeout", topic));
      }
      return socket;
    };
    const closeSocket = (socket: any) =>
      new Promise<void>((resolve) => {
        socket.soakClosing = true;
        socket.disconnect(() => resolve(), 1000, "soak");
      });
    for (let i = 0; i < socketCount; i++) sockets.push(openSocket(i));

    // The load: `rate` ops per second, started on a 10 ms tick whether or not earlier ones ended.
    const started = performance.now();
    let due = 0;
    const ticker = setInterval(() => {
      if (stopping) return;
      due += rate / 100;
      for (; due >= 1; due--) nextOp()();
    }, 10);

    const samples: Sample[] = [];
    const sampleOnce = async (): Promise<Sample> => {
      await (await fetch(`${base}/soak/gc`)).body?.cancel();
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      let fds = 0;
      for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) fds++;
      const stats = await (await fetch(`${base}/api/v1/system/stats`)).json();
      const soak = await (await fetch(`${base}/soak/stats`)).json();
      const sorted = latencies.sort((a, b) => a - b);
      const p99 = sorted.length
        ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]
        : 0;
      latencies = [];
      const sample: Sample = {
        t: Math.round((performance.now() - started) / 1000),
        ops: intervalOps,
        errors: errors.total,
        p99,
        rss,
        fds,
        actors: stats.actors?.total ?? 0,
        watch: soak.watch_streams,
        sockets: stats.sockets ?? 0,
        topics: stats.topics ?? 0,
        heap: stats.memory?.heap_used ?? 0,
        inflight,
        hanging: hanging(10_000),
        received,
      };
      intervalOps = 0;
      return sample;
    };

    let churn = 0;
    while (performance.now() - started < durationMs) {
      await sleep(Math.min(sampleSec * 1000, durationMs - (performance.now() - started)));
      if (exited) throw new Error(`the server exited:\n${serverLog.slice(-4000)}`);
      const s = await sampleOnce();
      samples.push(s);
      console.error(
        `  t=${s.t}s ops=${s.ops} errors=${s.errors} rss=${mb(s.rss)} MB fds=${s.fds} ` +
          `actors=${s.actors} watch=${s.watch} sockets=${s.sockets} inflight=${s.inflight}` +
          (s.hanging.size ? ` hanging: ${describe(s.hanging)}` : ""),
      );
      // Churn: a quarter of the sockets reconnect (their channels, presence and watches go and
      // come back).
      for (let k = 0; k < Math.ceil(socketCount / 4); k++) {
        const i = churn++ % socketCount;
        await closeSocket(sockets[i]);
        sockets[i] = openSocket(i);
      }
    }

    stopping = true;
    clearInterval(ticker);
    const drainDeadline = performance.now() + 10_000;
    while (inflight > 0 && performance.now() < drainDeadline) await sleep(50);
    await Promise.all(sockets.splice(0).map(closeSocket));

    code = report(samples, errors, { minutes, rate, socketCount, warmupMs, received, parallel });
  } catch (e) {
    console.error(`soak failed: ${e instanceof Error ? e.stack : e}`);
    code = 1;
  } finally {
    stopping = true;
    await Promise.all(
      sockets.splice(0).map((s) =>
        new Promise<void>((r) => {
          s.soakClosing = true;
          s.disconnect(() => r(), 1000, "soak");
          setTimeout(r, 1000);
        })
      ),
    );
    await stopServer(child);
    clearTimeout(hardStop);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    const warnings = serverLog.split("\n").filter((l) => /"level":"(error|warn)"/.test(l));
    if (warnings.length) {
      console.error(`server logged ${warnings.length} warnings/errors, first:`);
      for (const l of warnings.slice(0, 5)) console.error(`  ${l.slice(0, 400)}`);
    }
  }
  return code;
}

/** Counts by name, largest first: `3× kv get, 1× sse`. */
function describe(counts: Map<string, number>): string {
  return [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${n}× ${name}`).join(", ");
}

function total(counts: Map<string, number>): number {
  let n = 0;
  for (const v of counts.values()) n += v;
  return n;
}

function mb(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

/** SIGTERM (the server closes Chorus and exits), then SIGKILL after 5 s. */
async function stopServer(child: Deno.ChildProcess): Promise<void> {
  const kill = (signal: Deno.Signal) => {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  };
  kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = await Promise.race([
    child.status.then(() => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), 5000)),
  ]);
  clearTimeout(timer);
  if (!done) {
    console.error("soak: the server did not exit on SIGTERM within 5 s: SIGKILL");
    kill("SIGKILL");
    await child.status;
  }
}

/** Prints the table and the verdict; returns the exit code. */
function report(
  samples: Sample[],
  errors: Errors,
  run: {
    minutes: number;
    rate: number;
    socketCount: number;
    warmupMs: number;
    received: number;
    parallel: boolean;
  },
): number {
  console.log(
    `\nSoak (\`bench/load/soak.ts\`): ${run.minutes} min at ${run.rate} ops/s (open loop), ` +
      `${run.socketCount} phoenix sockets × 3 topics (a quarter reconnecting every sample), ` +
      `Chorus under \`deno serve${run.parallel ? " --parallel" : ""}\` (one process${
        run.parallel ? ", two workers writing through one" : ""
      }, KV file), 127.0.0.1, ${Deno.build.target}\n`,
  );
  const rows = [
    [
      "t (s)",
      "ops",
      "errors (total)",
      "p99 ms",
      "RSS MB",
      "heap MB",
      "fds",
      "actors",
      "watch streams",
      "sockets",
      "topics",
      "in flight",
    ],
    ...samples.map((s) => [
      String(s.t),
      String(s.ops),
      String(s.errors),
      s.p99.toFixed(1),
      mb(s.rss),
      mb(s.heap),
      String(s.fds),
      String(s.actors),
      String(s.watch),
      String(s.sockets),
      String(s.topics),
      String(s.inflight),
    ]),
  ];
  console.log(`| ${rows[0].join(" | ")} |`);
  console.log(`|${rows[0].map((_, i) => i === 0 ? "---" : "---:").join("|")}|`);
  for (const r of rows.slice(1)) console.log(`| ${r.join(" | ")} |`);

  const warm = samples.filter((s) => s.t * 1000 > run.warmupMs);
  const verdicts: [string, boolean, string][] = [];
  verdicts.push([
    "errors",
    errors.total === 0,
    errors.total === 0
      ? "none"
      : `${errors.total} (${[...errors.byKind].map(([k, n]) => `${k}×${n}`).join(", ")})`,
  ]);
  if (warm.length < 2) {
    verdicts.push(["after warm-up", false, "too few samples after warm-up to judge"]);
  } else {
    const third = Math.max(1, Math.floor(warm.length / 3));
    const early = warm.slice(0, third), late = warm.slice(-third);
    const mean = (xs: Sample[], f: (s: Sample) => number) =>
      xs.reduce((a, s) => a + f(s), 0) / xs.length;
    const flat = (
      name: string,
      f: (s: Sample) => number,
      slack: (base: number) => number,
      show: (n: number) => string = (n) => n.toFixed(0),
    ) => {
      const a = mean(early, f), b = mean(late, f);
      const ok = b - a <= slack(a);
      verdicts.push([
        name,
        ok,
        `${show(a)} → ${show(b)} (early vs late mean after warm-up; allowed +${show(slack(a))})`,
      ]);
    };
    flat("RSS", (s) => s.rss, (a) => Math.max(24 * 1048576, a * 0.1), (n) => `${mb(n)} MB`);
    // Client connections (sockets reconnecting, SSE watches, fetch's pool) make fds noisy.
    flat("open fds", (s) => s.fds, (a) => Math.max(16, a * 0.15));
    if (run.parallel) {
      // Each sample is answered by whichever worker takes it: per-worker figures are not a curve.
      verdicts.push([
        "live actors, watch streams",
        true,
        "per worker under --parallel: not judged",
      ]);
    } else {
      flat("live actors", (s) => s.actors, (a) => Math.max(20, a * 0.1));
      flat("watch streams", (s) => s.watch, (a) => Math.max(4, a * 0.1));
    }
    const inflight = Math.max(...warm.map((s) => s.inflight));
    const worst = warm.reduce((a, s) => total(s.hanging) > total(a.hanging) ? s : a);
    verdicts.push([
      "nothing hangs",
      total(worst.hanging) === 0,
      total(worst.hanging) === 0
        ? "no operation more than 10 s past its end at any sample"
        : `at ${worst.t} s: ${describe(worst.hanging)} more than 10 s past their end`,
    ]);
    verdicts.push([
      "keeping up",
      inflight < run.rate,
      `at most ${inflight} requests in flight at a sample`,
    ]);
  }
  verdicts.push(["socket messages received", run.received > 0, String(run.received)]);
  const pass = verdicts.every(([, ok]) => ok);
  console.log(`\nVerdict: **${pass ? "PASS" : "FAIL"}** (warm-up ${run.warmupMs / 1000} s)\n`);
  for (const [name, ok, detail] of verdicts) {
    console.log(`- ${ok ? "ok" : "FAIL"} — ${name}: ${detail}`);
  }
  if (errors.examples.length) {
    console.log(`\nFirst errors:\n${errors.examples.map((e) => `- ${e}`).join("\n")}`);
  }
  return pass ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Which role this process plays (last, so every declaration above is initialised).

if (Deno.env.get("CHORUS_SOAK_ROLE") === "server") {
  handler = await startServer();
} else {
  Deno.exit(await drive());
}
