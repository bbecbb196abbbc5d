/**
 * Where a kv request's main-thread time goes, in process: the main thread's CPU time per
 * operation (its own `utime + stime` from `/proc/thread-self/stat`, so neither KV's SQLite thread
 * nor V8's helper threads nor another process count) for each layer of `PUT` and `GET
 * /api/v1/kv/:key`, with no network:
 *
 * - **request**: making the `Request` and reading its body, what every in-process call pays;
 * - **bare Hono**: `bare_hono.ts`'s app (the HTTP benchmarks' reference) answering it from a `Map`;
 * - **Chorus**: `chorus.fetch`, the whole HTTP path (middleware, validation, actor, group commit);
 * - **Chorus, auth on**: the same on a second instance with auth on, with a kv token in an
 *   `Authorization` header (what a deployment runs; its "auth" figure includes making that header;
 *   made in process, the request has no client address, so the failed-auth guard counts it under
 *   `unknown`);
 * - **embedded**: the call the route makes, `chorus.kv.put(key, value, { handOver: true })` or
 *   `chorus.kv.get(key)`, without HTTP.
 *
 * Chorus minus embedded is what Chorus's HTTP layer costs; bare Hono minus request is what a
 * minimal Hono route costs. Throughput on a shared machine moves with the neighbours; CPU per
 * operation of one thread moves much less, so this is the figure to compare changes of the HTTP
 * path by. 64 closed loops per phase over 1,000 keys (PUT) or one hot key (GET), on a durable
 * temp-dir KV file; phases take turns (`inTurns` in `_closed_loop.ts`, metered by the thread's CPU). Linux only.
 *
 * Run: `deno run -A bench/load/http_cpu.ts [--quick] [--warmup=<s>] [--seconds=<s>]`
 * @module
 */
import { Chorus } from "../../mod.ts";
import bare from "./bare_hono.ts";
import { durations, fmt, inTurns, type Phase, table } from "./_closed_loop.ts";

const STAT = "/proc/thread-self/stat";

/** The calling thread's CPU time so far, in clock ticks (1/100 s on Linux). */
function threadTicks(): number {
  // Fields after the command name (which may hold spaces) start at `state`; utime and stime are
  // the 14th and 15th fields of the whole line.
  const after = Deno.readTextFileSync(STAT).split(") ")[1].split(" ");
  return Number(after[11]) + Number(after[12]);
}

try {
  threadTicks();
} catch (e) {
  console.error(`Cannot read ${STAT} (${(e as Error).message}): this benchmark needs Linux.`);
  Deno.exit(1);
}

const d = durations();
const ROUNDS = d.quick ? 3 : 5;
const LOOPS = 64;
const KEYS = 1_000;

const dir = await Deno.makeTempDir({ prefix: "chorus-http-cpu-" });
const chorus = await Chorus.open({ path: `${dir}/kv.sqlite` });
const guarded = await Chorus.open({
  path: `${dir}/auth.sqlite`,
  config: { auth: true, adminToken: `sk_chorus_bench-${crypto.randomUUID()}` },
});
const { token } = await guarded.tokens.create({ scopes: ["kv:read", "kv:write"] });
const bearer = `Bearer ${token}`;
let counter = 0;
const keyOf = () => `k${Math.floor(Math.random() * KEYS)}`;
const putBody = () => `{"value":{"n":${++counter},"s":"hello"}}`;
const putRequest = (authorization?: string) => {
  const body = putBody();
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "content-length": String(body.length),
  };
  if (authorization) headers.authorization = authorization;
  return new Request(`http://127.0.0.1/api/v1/kv/${keyOf()}`, { method: "PUT", headers, body });
};
const getRequest = (authorization?: string) =>
  new Request("http://127.0.0.1/api/v1/kv/hot", {
    headers: authorization ? { authorization } : {},
  });

/** Checks the answer; its body (a string held in memory) is left unread, as no layer needs it. */
async function answered(res: Response | Promise<Response>): Promise<void> {
  const r = await res;
  if (r.status !== 200) throw new Error(`${r.status}: ${await r.text()}`);
}

const put: Phase[] = [
  { loops: LOOPS, name: "request", op: () => putRequest().text() },
  { loops: LOOPS, name: "bare Hono", op: () => answered(bare.fetch(putRequest())) },
  { loops: LOOPS, name: "Chorus", op: () => answered(chorus.fetch(putRequest())) },
  { loops: LOOPS, name: "Chorus, auth on", op: () => answered(guarded.fetch(putRequest(bearer))) },
  {
    loops: LOOPS,
    name: "embedded",
    op: () => chorus.kv.put(keyOf(), { n: ++counter, s: "hello" }, { handOver: true }),
  },
];
const get: Phase[] = [
  { loops: LOOPS, name: "request", op: () => Promise.resolve(getRequest()) },
  { loops: LOOPS, name: "bare Hono", op: () => answered(bare.fetch(getRequest())) },
  { loops: LOOPS, name: "Chorus", op: () => answered(chorus.fetch(getRequest())) },
  { loops: LOOPS, name: "Chorus, auth on", op: () => answered(guarded.fetch(getRequest(bearer))) },
  { loops: LOOPS, name: "embedded", op: () => chorus.kv.get("hot") },
];

// Every server holds the hot key before anything is measured.
for (
  const [app, headers] of [[chorus, {}], [guarded, { authorization: bearer }], [bare, {}]] as const
) {
  await answered(app.fetch(
    new Request("http://127.0.0.1/api/v1/kv/hot", {
      method: "PUT",
      headers: { ...headers, "content-type": "application/json" },
      body: '{"value":{"n":0,"s":"hello"}}',
    }),
  ));
}

const rows: string[][] = [];
for (const [method, layers] of [["PUT", put], ["GET", get]] as const) {
  const results = await inTurns(layers, d, ROUNDS, threadTicks);
  const us = results.map((r) => (r.used! * 10_000) / r.ops); // 1 tick = 10 ms = 10,000 µs
  const [request, bareHono, whole, withAuth, embedded] = us;
  results.forEach((r, i) => {
    const note = i === 1
      ? `Hono's own: ${(bareHono - request).toFixed(1)} µs`
      : i === 2
      ? `**${(whole / bareHono).toFixed(2)}× bare Hono**; HTTP layer (minus embedded): ${
        (whole - embedded).toFixed(1)
      } µs`
      : i === 3
      ? `${(withAuth / bareHono).toFixed(2)}× bare Hono; auth: ${(withAuth - whole).toFixed(1)} µs`
      : "";
    rows.push([
      method,
      layers[i].name,
      fmt(r.ops / r.secs),
      us[i].toFixed(1),
      note,
    ]);
  });
}
await chorus.close();
await guarded.close();
await Deno.remove(dir, { recursive: true });

console.log(
  `\n${LOOPS} closed loops in process, ${d.seconds} s per layer in ${ROUNDS} turns after ${d.warmup} s of warm-up, ${Deno.build.target}\n`,
);
table(
  ["method", "layer", "ops/s", "main-thread µs per op", "compared"],
  rows,
  [2, 3],
);
