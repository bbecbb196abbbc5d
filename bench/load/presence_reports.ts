/**
 * Presence reports from joins, for returning users: every viewer who joins a reel records the
 * user's presence (`users.setPresence(id, …, { fromSocket: true })`, at most
 * `SOCKET_REPORTS_AT_ONCE` at a time, as `reportFromSocket` runs them), and at a live event most
 * viewers are regulars whose user actor is not in memory but whose feed in KV already holds their
 * earlier reports. Measured against the same reports for users never seen (the reference, same
 * run, same instance): reports/s, process CPU per report (`process.cpuUsage`, KV's thread
 * included) and KV reads per report.
 *
 * Set-up: one instance writes `--history` reports (default 10) for each of 2 × N regulars
 * (default N = 5,000) and closes; a second instance on the same durable temp-dir file, its actors
 * all cold, then takes turns: N regulars report (a different N each turn, so every one is loaded
 * from KV), then N new users. Two turns each.
 *
 * Run: `deno run -A bench/load/presence_reports.ts [--users=5000] [--history=10]`
 * @module
 */
import process from "node:process";
import { Chorus } from "../../mod.ts";
import { SOCKET_REPORTS_AT_ONCE } from "../../actors/user_api.ts";
import { fmt, ratio, table } from "./_closed_loop.ts";

const flag = (name: string, fallback: number) => {
  const found = Deno.args.find((a) => a.startsWith(`--${name}=`));
  const n = found === undefined ? fallback : Number(found.slice(name.length + 3));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1`);
  return n;
};
const N = flag("users", 5_000);
const HISTORY = flag("history", 10);
const TURNS = 2;

const dir = await Deno.makeTempDir({ prefix: "chorus-presence-reports-" });
const path = `${dir}/kv.sqlite`;
const regular = (turn: number, i: number) => `regular-${turn}-${i}`;
const newcomer = (turn: number, i: number) => `new-${turn}-${i}`;

/** Reports for every id, `SOCKET_REPORTS_AT_ONCE` at a time, as a reel's joins make them. */
async function report(chorus: Chorus, ids: string[], activity: string): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: SOCKET_REPORTS_AT_ONCE }, async () => {
    while (next < ids.length) {
      const id = ids[next++];
      await chorus.users.setPresence(id, { status: "online", current_reel: "show", activity }, {
        fromSocket: true,
      });
    }
  }));
}

const history = await Chorus.open({ path });
for (let h = 1; h <= HISTORY; h++) {
  for (let turn = 0; turn < TURNS; turn++) {
    await report(history, Array.from({ length: N }, (_, i) => regular(turn, i)), `visit ${h}`);
  }
}
await history.close();

const chorus = await Chorus.open({ path });
const totals = { regulars: { ms: 0, cpu: 0, reads: 0 }, newcomers: { ms: 0, cpu: 0, reads: 0 } };
for (let turn = 0; turn < TURNS; turn++) {
  for (const who of ["regulars", "newcomers"] as const) {
    const ids = Array.from(
      { length: N },
      (_, i) => (who === "regulars" ? regular : newcomer)(turn, i),
    );
    const reads = chorus.store.stats.reads;
    const cpu = process.cpuUsage();
    const started = performance.now();
    await report(chorus, ids, "live");
    const used = process.cpuUsage(cpu);
    totals[who].ms += performance.now() - started;
    totals[who].cpu += used.user + used.system;
    totals[who].reads += chorus.store.stats.reads - reads;
  }
}
await chorus.close();
await Deno.remove(dir, { recursive: true });

const count = N * TURNS;
const rate = (t: { ms: number }) => count / (t.ms / 1000);
const cpuPer = (t: { cpu: number }) => t.cpu / count;
console.log(
  `\n${
    fmt(N)
  } reports per turn, ${TURNS} turns, ${SOCKET_REPORTS_AT_ONCE} at a time; regulars have ${HISTORY} earlier reports each; ${Deno.build.target}\n`,
);
table(
  ["users", "reports/s", "CPU µs per report", "KV reads per report", "CPU vs new users"],
  [
    [
      "returning (cold actors)",
      fmt(rate(totals.regulars)),
      cpuPer(totals.regulars).toFixed(0),
      (totals.regulars.reads / count).toFixed(2),
      ratio(cpuPer(totals.regulars), cpuPer(totals.newcomers)),
    ],
    [
      "new (the reference)",
      fmt(rate(totals.newcomers)),
      cpuPer(totals.newcomers).toFixed(0),
      (totals.newcomers.reads / count).toFixed(2),
      "1.00×",
    ],
  ],
  [1, 2, 3],
);
