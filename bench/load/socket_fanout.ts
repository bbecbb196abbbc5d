/**
 * Socket fan-out load: Chorus's `/socket/websocket` (subscribers of `kv:bench`, published by
 * `PUT /api/v1/kv/bench`) vs a bare `Deno.serve` + `Deno.upgradeWebSocket` server
 * (`bare_ws_server.ts`, same HTTP-in → broadcast-out shape and frame size), in the same run.
 * Servers run in their own processes on 127.0.0.1; this process is the load client (raw
 * `WebSocket` subscribers speaking Phoenix V2 JSON, and the HTTP publisher) and shares the 2 cores.
 *
 * Measures, per subscriber count: delivered `change` frames/s and p50/p99 publish-to-receive
 * latency at a fixed publish rate and at the maximum rate (closed loop of `--concurrency` PUTs);
 * then RSS per idle joined socket (VmRSS before/after opening `--idle` sockets on a fresh server,
 * once they have been silent for 500 ms plus `--idle-wait`).
 * Prints Markdown tables.
 *
 * The fixed rate is `--rate` msg/s, lowered to `--budget / subscribers` where that is less (one
 * client process receives about 100,000–200,000 frames/s here, so 100 msg/s × 5,000 sockets would
 * measure the client). Each phase runs `--rounds` times; each server's best round is reported
 * (lowest p99 at the fixed rate, highest delivered/s at the maximum rate), since other work may
 * share the machine.
 *
 * Usage: deno run -A bench/load/socket_fanout.ts [subs=100,1000,5000] [seconds=2]
 *   [--rate=100] [--budget=100000] [--concurrency=16] [--rounds=2] [--idle=1000] [--no-presence]
 *   [--profile] [--memory-only] [--idle-wait=ms] [--writev=chorus|both|none]
 * `--profile` samples the Chorus server's CPU (through its inspector) during its fan-out phases
 * and prints the top self-time functions; figures from such a run are slowed by the profiler.
 */
import { percentile, Publisher, sleep, SubscriberPool, until } from "./_ws_pool.ts";
import { CpuProfile } from "./_cpu_profile.ts";
import {
  cpuSeconds,
  gcServer,
  rssKb,
  spawnWsServer,
  stopServer,
  type WsServer,
  type WsServerKind,
} from "./_ws_servers.ts";

const flags = new Map<string, string>();
const positional: string[] = [];
for (const arg of Deno.args) {
  const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
  if (m) flags.set(m[1], m[2] ?? "true");
  else positional.push(arg);
}
const SUBS = flags.has("memory-only")
  ? []
  : (positional[0] ?? "100,1000,5000").split(",").map(Number);
const SECONDS = Number(positional[1] ?? 2);
const RATE = Number(flags.get("rate") ?? 100);
const CONCURRENCY = Number(flags.get("concurrency") ?? 16);
const BUDGET = Number(flags.get("budget") ?? 100_000);
const ROUNDS = Number(flags.get("rounds") ?? 2);
const IDLE = Number(flags.get("idle") ?? 1000);
const IDLE_WAIT_MS = Number(flags.get("idle-wait") ?? 0);
const PRESENCE = !flags.has("no-presence");
const PROFILE = flags.has("profile");
/**
 * Which servers run with `DENO_USE_WRITEV=1` (Deno's WebSocket then writes a frame without
 * copying it into a per-socket buffer): `chorus` (default: Chorus and the presence-traffic
 * reference, as `deno task start` runs Chorus; bare with Deno's defaults), `both` or `none`.
 */
const WRITEV = flags.get("writev") ?? "chorus";
const KEY = "bench";
const TOPIC = `kv:${KEY}`;
const INSPECT = "127.0.0.1:9339";
const runStart = performance.now();

interface Server extends WsServer {
  name: "bare" | "Chorus" | "bare + presence traffic";
}

async function spawn(name: Server["name"], port: number, dir: string): Promise<Server> {
  const what: WsServerKind = name === "Chorus"
    ? { kind: "chorus", kvPath: `${dir}/chorus.kv`, presence: PRESENCE }
    : { kind: "bare", presence: name !== "bare" };
  const inspect = name === "Chorus" && PROFILE ? [`--inspect=${INSPECT}`] : [];
  const writev = WRITEV === "both" || (WRITEV === "chorus" && name !== "bare");
  return { name, ...await spawnWsServer(what, port, { writev, inspect }) };
}

const stop = stopServer;
const gc = gcServer;

/** Waits until no presence (or other) frames arrived for 500 ms, at most `ms`. */
async function settle(pool: SubscriberPool, ms = 20_000): Promise<void> {
  const since = performance.now();
  await until(() => performance.now() - Math.max(pool.lastOtherAt, since) > 500, ms);
}

/** Waits until `expected` changes arrived, or nothing arrived for 1.5 s, at most `ms`. */
async function drain(pool: SubscriberPool, expected: () => number, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  let seen = -1;
  let seenAt = performance.now();
  while (pool.changes < expected() && performance.now() < deadline) {
    if (pool.changes !== seen) {
      seen = pool.changes;
      seenAt = performance.now();
    } else if (performance.now() - seenAt > 1500) break;
    await sleep(50);
  }
}

interface Phase {
  publishes: number;
  publishRate: number;
  frames: number;
  expected: number;
  delivered: number;
  p50: number;
  p99: number;
  serverCpu: number;
  clientCpu: number;
}

interface Fanout {
  rateHz: number;
  joinMs: number;
  presenceFrames: number;
  closed: string;
  rate: Phase;
  max: Phase;
  rounds: string;
}

async function phase(
  server: Server,
  pool: SubscriberPool,
  n: number,
  run: (p: Publisher) => Promise<void>,
): Promise<Phase> {
  const publisher = new Publisher(server.base, KEY);
  const cpu0 = [cpuSeconds(server.pid), cpuSeconds("self")];
  pool.startPhase();
  const start = performance.now();
  await run(publisher);
  const published = performance.now();
  await drain(pool, () => publisher.ok * n);
  const latencies = pool.endPhase();
  const end = Math.max(pool.lastAt, published);
  const wall = (end - start) / 1000;
  if (publisher.failed) console.error(`${server.name}: ${publisher.failed} publishes failed`);
  return {
    publishes: publisher.ok,
    publishRate: publisher.ok / ((published - start) / 1000),
    frames: pool.changes,
    expected: publisher.ok * n,
    delivered: pool.changes / ((end - start) / 1000),
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    serverCpu: (cpuSeconds(server.pid) - cpu0[0]) / wall,
    clientCpu: (cpuSeconds("self") - cpu0[1]) / wall,
  };
}

async function fanout(server: Server, n: number): Promise<Fanout> {
  const pool = new SubscriberPool(server.url, TOPIC);
  const profiling = PROFILE && server.name === "Chorus";
  let profiler = profiling ? await CpuProfile.start(INSPECT) : null;
  try {
    const t0 = performance.now();
    await pool.open(n);
    const joinMs = performance.now() - t0;
    await settle(pool);
    const presenceFrames = pool.others;
    if (profiler) {
      profiles.push(`#### ${fmt(n)} subscribers: joining\n\n${await profiler.stop()}`);
      profiler = await CpuProfile.start(INSPECT);
    }
    // Warm-up: a few publishes, fully delivered, before anything is measured.
    await phase(server, pool, n, async (p) => {
      for (let i = 0; i < 5; i++) await p.put();
    });
    const rateHz = Math.min(RATE, BUDGET / n);
    const rates: Phase[] = [];
    const maxes: Phase[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      rates.push(await phase(server, pool, n, (p) => p.paced(rateHz, SECONDS)));
      maxes.push(await phase(server, pool, n, (p) => p.flat(SECONDS, CONCURRENCY)));
    }
    const rate = rates.reduce((a, b) => (b.p99 < a.p99 ? b : a));
    const max = maxes.reduce((a, b) => (b.delivered > a.delivered ? b : a));
    const rounds = `p99 ${rates.map((r) => fmt(r.p99, 1)).join("/")} ms; max ` +
      maxes.map((r) => fmt(r.delivered)).join("/");
    const closed = [...pool.closedBy].map(([code, count]) => `${count}×${code}`).join(" ") ||
      "none";
    return { rateHz, joinMs, presenceFrames, closed, rate, max, rounds };
  } finally {
    if (profiler) {
      profiles.push(
        `#### ${fmt(n)} subscribers: publishing (all rounds)\n\n${await profiler.stop()}`,
      );
    }
    await pool.close();
    await sleep(300);
  }
}

interface Memory {
  beforeKb: number;
  afterKb: number;
  perSocketKb: number;
  heapPerSocketKb: number;
  heapTotalPerSocketKb: number;
  /** V8 new space and old space growth, KB per socket. */
  newSpacePerSocketKb: number;
  oldSpacePerSocketKb: number;
}

async function memory(server: Server): Promise<Memory> {
  const warm = new SubscriberPool(server.url, TOPIC);
  await warm.open(20);
  await settle(warm);
  await warm.close();
  await sleep(500);
  const heap = async () => {
    const r = (await gc(server)) as {
      memory: { heapUsed: number; heapTotal: number };
      spaces: Record<string, number>;
    };
    return { ...r.memory, newSpace: r.spaces.new_space, oldSpace: r.spaces.old_space };
  };
  const heapBefore = await heap();
  await sleep(300);
  const beforeKb = rssKb(server.pid);
  const pool = new SubscriberPool(server.url, TOPIC);
  try {
    await pool.open(IDLE);
    await settle(pool);
    await sleep(IDLE_WAIT_MS);
    const heapAfter = await heap();
    await sleep(500);
    const afterKb = rssKb(server.pid);
    return {
      beforeKb,
      afterKb,
      perSocketKb: (afterKb - beforeKb) / IDLE,
      heapPerSocketKb: (heapAfter.heapUsed - heapBefore.heapUsed) / 1024 / IDLE,
      heapTotalPerSocketKb: (heapAfter.heapTotal - heapBefore.heapTotal) / 1024 / IDLE,
      newSpacePerSocketKb: (heapAfter.newSpace - heapBefore.newSpace) / 1024 / IDLE,
      oldSpacePerSocketKb: (heapAfter.oldSpace - heapBefore.oldSpace) / 1024 / IDLE,
    };
  } finally {
    await pool.close();
    await sleep(300);
  }
}

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "–";
const ms = (x: number) => `${fmt(x, x < 10 ? 2 : 1)} ms`;
const pct = (x: number) => `${fmt(100 * x)}%`;

const dir = await Deno.makeTempDir({ prefix: "chorus-ws-" });
const servers: Server[] = [];
const mem: Record<string, Memory> = {};
const results: Record<string, Fanout>[] = [];
const profiles: string[] = [];
try {
  servers.push(await spawn("bare", 18201, dir));
  servers.push(await spawn("Chorus", 18202, dir));
  const [bare, chorus] = servers;
  for (const s of servers) mem[s.name] = await memory(s);
  if (PRESENCE) {
    // The frames Phoenix Presence sends, from a bare server: what that traffic alone costs.
    const reference = await spawn("bare + presence traffic", 18203, dir);
    try {
      mem[reference.name] = await memory(reference);
    } finally {
      await stop(reference);
    }
  }
  for (const n of SUBS) {
    const row: Record<string, Fanout> = {};
    for (const s of [bare, chorus]) row[s.name] = await fanout(s, n);
    results.push(row);
  }
} finally {
  for (const s of servers) await stop(s);
  await Deno.remove(dir, { recursive: true });
}

const total = (performance.now() - runStart) / 1000;
console.log(
  `\n${Deno.build.target}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; ` +
    `servers on 127.0.0.1 in their own processes, load client in this one; topic ${TOPIC}; ` +
    `presence ${PRESENCE ? "on" : "off"}; DENO_USE_WRITEV=1 for ${WRITEV}; ` +
    `${SECONDS} s per phase, best of ${ROUNDS} rounds; ` +
    `run took ${fmt(total)} s\n`,
);
for (const mode of ["rate", "max"] as const) {
  console.log(
    mode === "rate"
      ? `### Fan-out at a fixed rate: ${RATE} msg/s or ${fmt(BUDGET)} frames/s ÷ subscribers ` +
        `(open loop)\n`
      : `### Fan-out at the maximum rate (${CONCURRENCY} PUTs in flight, closed loop)\n`,
  );
  console.log(
    "| subscribers | pub/s asked | bare pub/s | bare delivered/s | Chorus pub/s | " +
      "Chorus delivered/s | ratio | bare p50 | bare p99 | Chorus p50 | Chorus p99 | p99 ratio | " +
      "lost bare / Chorus | server CPU bare / Chorus | client CPU bare / Chorus |",
  );
  console.log(`|${" ---: |".repeat(15)}`);
  SUBS.forEach((n, i) => {
    const b = results[i].bare[mode];
    const c = results[i].Chorus[mode];
    const asked = mode === "rate" ? fmt(results[i].bare.rateHz) : "max";
    console.log(
      `| ${fmt(n)} | ${asked} | ${fmt(b.publishRate)} | ${fmt(b.delivered)} | ` +
        `${fmt(c.publishRate)} | ${fmt(c.delivered)} | ${pct(c.delivered / b.delivered)} | ` +
        `${ms(b.p50)} | ${ms(b.p99)} | ${ms(c.p50)} | ${ms(c.p99)} | ${fmt(c.p99 / b.p99, 2)}× | ` +
        `${fmt(b.expected - b.frames)} / ${fmt(c.expected - c.frames)} | ` +
        `${pct(b.serverCpu)} / ${pct(c.serverCpu)} | ${pct(b.clientCpu)} / ${pct(c.clientCpu)} |`,
    );
  });
  console.log();
}
console.log("### Joining, and every round\n");
console.log(
  "| subscribers | bare join all | Chorus join all | Chorus presence frames received | " +
    "closed by server bare / Chorus | rounds bare | rounds Chorus |",
);
console.log(`|${" ---: |".repeat(7)}`);
SUBS.forEach((n, i) => {
  const b = results[i].bare;
  const c = results[i].Chorus;
  console.log(
    `| ${fmt(n)} | ${ms(b.joinMs)} | ${ms(c.joinMs)} | ${fmt(c.presenceFrames)} | ` +
      `${b.closed} / ${c.closed} | ${b.rounds} | ${c.rounds} |`,
  );
});
console.log(
  `\n### Memory per idle socket (${fmt(IDLE)} sockets joined to ${TOPIC}, measured ` +
    `${fmt(IDLE_WAIT_MS + 500)} ms after the last join)\n`,
);
console.log(
  "| server | RSS before | RSS after | RSS KB per socket | V8 heap used KB per socket | " +
    "V8 heap total KB per socket | of which new space / old space |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [name, m] of Object.entries(mem)) {
  console.log(
    `| ${name} | ${fmt(m.beforeKb)} KB | ${fmt(m.afterKb)} KB | ${fmt(m.perSocketKb, 1)} | ` +
      `${fmt(m.heapPerSocketKb, 1)} | ${fmt(m.heapTotalPerSocketKb, 1)} | ` +
      `${fmt(m.newSpacePerSocketKb, 1)} / ${fmt(m.oldSpacePerSocketKb, 1)} |`,
  );
}
const memRatio = mem.Chorus.perSocketKb / mem.bare.perSocketKb;
console.log(`\nChorus / bare RSS per socket: ${fmt(memRatio, 2)}×`);
const traffic = mem["bare + presence traffic"];
if (traffic) {
  console.log(
    `Chorus / bare + presence traffic: ${fmt(mem.Chorus.perSocketKb / traffic.perSocketKb, 2)}×`,
  );
}
console.log();

console.log("### Targets\n");
const verdict = (ok: boolean) => (ok ? "met" : "NOT met");
for (const [i, n] of SUBS.entries()) {
  const r = results[i].Chorus.max.delivered / results[i].bare.max.delivered;
  console.log(
    `- ${fmt(n)} subscribers, max rate, delivered ≥ 80% of bare: ${pct(r)} — ${verdict(r >= 0.8)}`,
  );
}
const at1000 = SUBS.indexOf(1000);
if (at1000 >= 0) {
  const r = results[at1000].Chorus.rate.p99 / results[at1000].bare.rate.p99;
  const hz = fmt(results[at1000].bare.rateHz);
  console.log(
    `- 1,000 subscribers, ${hz} msg/s, p99 ≤ 1.5× bare: ${fmt(r, 2)}× — ${verdict(r <= 1.5)}`,
  );
}
console.log(
  `- RSS per idle joined socket ≤ 1.5× bare: ${fmt(memRatio, 2)}× — ${verdict(memRatio <= 1.5)}`,
);
if (profiles.length) {
  console.log(`\n### Chorus server CPU profile (self time)\n\n${profiles.join("\n\n")}`);
}
