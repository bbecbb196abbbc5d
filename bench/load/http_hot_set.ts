/**
 * HTTP GET over a hot set of 10,000 keys (`--keys=N` for another size), closed loop: wrk with 64
 * connections (each sends its next request when the previous answer arrives) cycling over
 * `/api/v1/kv/h0`…`h9999`: a warm-up
 * run of each row, then the measured time split into turns taken in order (bare, leader,
 * eventual, bare, …) so that a stall of the shared machine falls on every row; rates are over all
 * turns, and the turn-by-turn ratios are printed under the table. Subject: Chorus served by `deno serve` on `main.ts` in its own process
 * (`CHORUS_AUTH=off`, a durable KV file in a temp dir). Reference, same run and same client: the
 * bare Hono app of `bare_hono.ts` (same route shape, answering from a `Map`). Also measured:
 * Chorus with `?consistency=eventual` (against the same bare figure). Every key is written with a
 * PUT and read once with a GET on both servers before measuring, so Chorus has every key's actor
 * loaded. wrk, both servers and this script share the machine's cores.
 *
 * Prints one Markdown table of requests/s, the ratio Chorus / bare Hono, and p99 latencies.
 *
 * Run: `deno run -A bench/load/http_hot_set.ts [--quick] [--warmup=<s>] [--seconds=<s>]
 * [--connections=64] [--turns=N] [--keys=10000]` (also `BENCH_WARMUP`, `BENCH_SECONDS`; defaults 5 s warm-up +
 * 10 s in 5 turns per row, `--quick` 2 s + 3 s in 3 turns, about 25 s in all). Needs wrk (`apt-get install -y wrk`). Part of
 * `deno task bench:quick`. `--profile` adds a CPU profile of Chorus during each measured Chorus
 * turn (top functions, on stderr; the attached inspector lowers the figures).
 * @module
 */
import { durations, fmt, ratio, table } from "./_closed_loop.ts";
import { CpuProfile } from "./_cpu_profile.ts";

const d = durations();
/** Measured turns per row: 3 with `--quick`, else 5 (`--turns=N` to choose). */
const TURNS = Number(
  Deno.args.find((a) => a.startsWith("--turns="))?.slice(8) ?? (d.quick ? 3 : 5),
);
const connections = Number(
  Deno.args.find((a) => a.startsWith("--connections="))?.slice(14) ?? 64,
);
/** Keys in the hot set (`--keys=N`); 10,000 by default, the router's memory of paths is as large. */
const HOT = Number(Deno.args.find((a) => a.startsWith("--keys="))?.slice(7) ?? 10_000);
if (!Number.isSafeInteger(HOT) || HOT < 1) throw new Error("--keys must be a positive integer");
/** With `--profile`, Chorus runs under `--inspect` and each measured Chorus run is profiled. */
const profile = Deno.args.includes("--profile");
const INSPECT = "127.0.0.1:9239";
const here = new URL(".", import.meta.url).pathname;
const root = new URL("../../", import.meta.url).pathname;
const value = { user: "u-42", cart: [1, 2, 3], total: 99.5 };

try {
  await new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" }).output();
} catch {
  console.error("wrk is not installed (apt-get install -y wrk)");
  Deno.exit(1);
}

interface Server {
  name: string;
  port: number;
  child: Deno.ChildProcess;
  output: () => string;
}

function spawn(name: string, port: number, args: string[], env: Record<string, string> = {}) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let printed = "";
  const decoder = new TextDecoder();
  for (const stream of [child.stdout, child.stderr]) {
    stream.pipeTo(
      new WritableStream({ write: (chunk) => void (printed += decoder.decode(chunk)) }),
    ).catch(() => {});
  }
  return { name, port, child, output: () => printed };
}

async function ready(s: Server) {
  for (let i = 0; i < 400; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${s.port}/api/v1/kv/warm`)).body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${s.name} on ${s.port} did not start:\n${s.output()}`);
}

/**
 * SIGTERM, then SIGKILL after 3 s: under `deno serve`, SIGTERM only stops the HTTP server, and
 * Chorus's timers (heartbeat, scheduler, watches) keep the process alive.
 */
async function stop(s: Server) {
  const kill = (signal: Deno.Signal) => {
    try {
      s.child.kill(signal);
    } catch {
      // already gone
    }
  };
  kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const exited = await Promise.race([
    s.child.status.then(() => true),
    new Promise<false>((r) => timer = setTimeout(() => r(false), 3000)),
  ]);
  clearTimeout(timer);
  if (!exited) {
    console.error(`  ${s.name} did not exit on SIGTERM within 3 s: SIGKILL`);
    kill("SIGKILL");
    await s.child.status;
  }
}

/** PUTs every hot key, then GETs each once, 64 at a time. */
async function preload(s: Server) {
  const base = `http://127.0.0.1:${s.port}/api/v1/kv/h`;
  const each = async (fn: (i: number) => Promise<void>) => {
    await Promise.all(Array.from({ length: 64 }, async (_, l) => {
      for (let i = l; i < HOT; i += 64) await fn(i);
    }));
  };
  await each(async (i) => {
    const res = await fetch(`${base}${i}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value: { ...value, i } }),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`${s.name}: PUT h${i} answered ${res.status}`);
  });
  await each(async (i) => {
    const res = await fetch(`${base}${i}`);
    const body = await res.json();
    if (!res.ok || body.value?.i !== i) {
      throw new Error(`${s.name}: GET h${i} answered ${res.status}`);
    }
  });
}

/** A wrk script: each thread cycles over the hot keys from its own offset. */
async function luaScript(query: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "chorus-hot-", suffix: ".lua" });
  await Deno.writeTextFile(
    path,
    `local threads = 0
setup = function(thread)
  thread:set("offset", threads * ${Math.floor(HOT / 2)})
  threads = threads + 1
end
local n = 0
init = function(args)
  n = offset or 0
end
request = function()
  n = (n + 1) % ${HOT}
  return wrk.format("GET", "/api/v1/kv/h" .. n .. "${query}")
end
`,
  );
  return path;
}

interface WrkResult {
  rps: number;
  /** Requests answered and the run's length in seconds, to sum turns. */
  requests: number;
  secs: number;
  p99: string;
  non2xx: number;
}

async function wrk(url: string, script: string, seconds: number): Promise<WrkResult> {
  const args = ["-t2", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", script, url];
  const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  const done = /(\d+) requests in ([\d.]+)(m?s)/.exec(text);
  const requests = Number(done?.[1] ?? 0);
  const secs = Number(done?.[2] ?? 0) / (done?.[3] === "ms" ? 1000 : 1);
  const p99 = /99%\s+([\d.]+\w+)/.exec(text)?.[1] ?? "?";
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(text)?.[1] ?? 0);
  if (!out.success || rps === 0) {
    throw new Error(`wrk failed on ${url}:\n${text}${new TextDecoder().decode(out.stderr)}`);
  }
  return { rps, requests, secs, p99, non2xx };
}

/** One measured row: a server and the script it is driven with. */
interface Row {
  name: string;
  server: Server;
  script: string;
  turns: WrkResult[];
}

/** One measured turn of a row (after its warm-up), profiled with `--profile` for Chorus. */
async function turn(row: Row, seconds: number): Promise<void> {
  const base = `http://127.0.0.1:${row.server.port}`;
  const profiled = profile && row.server.name === "Chorus";
  const cpu = profiled ? await CpuProfile.start(INSPECT) : undefined;
  const r = await wrk(base, row.script, seconds);
  if (cpu) console.error(`\nCPU profile of ${row.name}:\n${await cpu.stop(20)}\n`);
  if (r.non2xx > 0) throw new Error(`${row.name}: ${r.non2xx} answers were not 2xx`);
  console.error(`  ${row.name}: ${fmt(r.rps)} req/s, p99 ${r.p99}`);
  row.turns.push(r);
}

/** Requests/s over all of a row's turns. */
function rate(row: Row): number {
  const requests = row.turns.reduce((n, t) => n + t.requests, 0);
  const secs = row.turns.reduce((n, t) => n + t.secs, 0);
  return requests / secs;
}

/** The worst p99 of a row's turns. */
function worstP99(row: Row): string {
  const ms = (t: string) =>
    Number.parseFloat(t) * (/us$/.test(t) ? 0.001 : /ms$/.test(t) ? 1 : 1000);
  return row.turns.map((t) => t.p99).sort((a, b) => ms(b) - ms(a))[0];
}

const dir = await Deno.makeTempDir({ prefix: "chorus-http-hot-" });
const leaderScript = await luaScript("");
const eventualScript = await luaScript("?consistency=eventual");
const servers: Server[] = [];
try {
  const bare = spawn("bare Hono", 18111, ["run", "-A", `${here}bare_hono.ts`, "18111"]);
  servers.push(bare);
  const chorus = spawn(
    "Chorus",
    18112,
    [
      "serve",
      "-A",
      ...(profile ? [`--inspect=${INSPECT}`] : []),
      "--host",
      "127.0.0.1",
      "--port",
      "18112",
      `${root}main.ts`,
    ],
    {
      CHORUS_KV: `${dir}/chorus.kv`,
      CHORUS_BACKUP_DIR: `${dir}/backups`,
      CHORUS_AUTH: "off",
      CHORUS_LOG_LEVEL: "warn",
    },
  );
  servers.push(chorus);
  await Promise.all(servers.map(ready));
  for (const s of servers) await preload(s);
  console.error(
    `wrk -t2 -c${connections}, ${HOT} keys, warm-up ${d.warmup} s each, then ${TURNS} turns ` +
      `of ${d.seconds / TURNS} s each in order`,
  );
  const rows: Row[] = [
    { name: "bare Hono", server: bare, script: leaderScript, turns: [] },
    { name: "Chorus leader", server: chorus, script: leaderScript, turns: [] },
    { name: "Chorus eventual", server: chorus, script: eventualScript, turns: [] },
  ];
  for (const row of rows) {
    if (d.warmup > 0) await wrk(`http://127.0.0.1:${row.server.port}`, row.script, d.warmup);
  }
  // In turns (bare, leader, eventual, bare …): a stall of the shared machine falls on all three.
  for (let t = 0; t < TURNS; t++) for (const row of rows) await turn(row, d.seconds / TURNS);
  const [bareRow, leaderRow, eventualRow] = rows;
  const bareGet = { rps: rate(bareRow), p99: worstP99(bareRow) };
  const leader = { rps: rate(leaderRow), p99: worstP99(leaderRow) };
  const eventual = { rps: rate(eventualRow), p99: worstP99(eventualRow) };
  const perTurn = (row: Row) =>
    row.turns.map((r, i) => ratio(r.rps, bareRow.turns[i].rps)).join(", ");

  console.log(
    `\nHTTP GET over ${HOT.toLocaleString("en-US")} hot keys (\`bench/load/http_hot_set.ts\`), ` +
      `wrk -t2 -c${connections} closed loop, warm-up ${d.warmup} s each, then ${d.seconds} s ` +
      `measured in ${TURNS} turns (bare, leader, eventual, …), ` +
      `Chorus under \`deno serve main.ts\` (one process), servers on 127.0.0.1, ` +
      `${Deno.build.target}\n`,
  );
  table(
    [
      "row",
      "Chorus req/s",
      "bare Hono req/s (same run)",
      "ratio",
      "Chorus p99 (worst turn)",
      "bare p99 (worst turn)",
    ],
    [
      [
        "GET /api/v1/kv/:key (leader)",
        fmt(leader.rps),
        fmt(bareGet.rps),
        ratio(leader.rps, bareGet.rps),
        leader.p99,
        bareGet.p99,
      ],
      [
        "GET /api/v1/kv/:key?consistency=eventual",
        fmt(eventual.rps),
        fmt(bareGet.rps),
        ratio(eventual.rps, bareGet.rps),
        eventual.p99,
        bareGet.p99,
      ],
    ],
    [1, 2, 3, 4, 5],
  );
  console.log(
    `\nRatios turn by turn: leader ${perTurn(leaderRow)}; eventual ${perTurn(eventualRow)}.`,
  );
} finally {
  await Promise.all(servers.map(stop));
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(leaderScript);
  await Deno.remove(eventualScript);
}
