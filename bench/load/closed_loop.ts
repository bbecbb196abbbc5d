/**
 * Embedded kv, closed loops: N async loops, each awaiting its own operation before issuing the
 * next; ops/s are counted over a fixed time after a warm-up, a subject and its references taking
 * turns (3 turns each with `--quick`, 5 otherwise; see `inTurns`). Chorus and the raw references open
 * separate durable SQLite files in one temp dir (`Deno.makeTempDir`), removed at the end. Rows,
 * each with its reference measured in the same run:
 *
 * - put, 64 loops, keys cycling over 64 (`k0`…`k63`, one shared counter): `chorus.kv.put(key,
 *   value)` vs "the limit", one `raw.atomic().set(...)×64.commit()` after another (counted as 64
 *   puts per commit), and vs raw `kv.set` in 64 loops over the same 64 keys;
 * - put, one loop: `chorus.kv.put` vs raw `kv.set`;
 * - get, 64 loops over a hot set of 10,000 keys (written and each read once first, so every actor
 *   is loaded): `chorus.kv.get(key)` (the default, leader) vs `chorus.kv.get(key, { consistency:
 *   "eventual" })` of the same loaded actors.
 *
 * Prints one Markdown table: ops/s and the ratio subject / reference.
 *
 * Run: `deno run -A bench/load/closed_loop.ts [--quick] [--warmup=<s>] [--seconds=<s>]`
 * (also `BENCH_WARMUP`, `BENCH_SECONDS`; defaults 5 s + 10 s per phase, `--quick` 2 s + 3 s,
 * about 45 s in all). Part of `deno task bench:quick`.
 * @module
 */
import { Chorus } from "../../mod.ts";
import {
  durations,
  fmt,
  inTurns,
  type LoopResult,
  type Phase,
  ratio,
  table,
} from "./_closed_loop.ts";

const d = durations();
/** Turns each phase is measured in, alternating with its references. */
const ROUNDS = d.quick ? 3 : 5;
const HOT = 10_000;
const value = { user: "u-42", cart: [1, 2, 3], total: 99.5 };

const dir = await Deno.makeTempDir({ prefix: "chorus-closed-loop-" });
const chorus = await Chorus.open({ path: `${dir}/chorus.kv`, scheduler: "off" });
const raw = await Deno.openKv(`${dir}/raw.kv`);

const log = (what: string, r: LoopResult) =>
  console.error(`  ${what}: ${fmt(r.opsPerSec)} ops/s (${r.ops} in ${r.secs.toFixed(2)} s)`);

/** Measures the phases in turns (see `inTurns`) and logs each one's rate. */
async function measure(phases: Phase[]): Promise<LoopResult[]> {
  const results = await inTurns(phases, d, ROUNDS);
  phases.forEach((p, i) => log(p.name, results[i]));
  return results;
}

try {
  console.error(
    `closed loops: warm-up ${d.warmup} s, then ${d.seconds} s per phase measured in ${ROUNDS} ` +
      `turns alternating with its references, ${Deno.build.target}`,
  );

  // ---- put, 64 loops, 64 keys ----
  let n = 0;
  const commits0 = chorus.store.stats.commits;
  const keys64 = Array.from({ length: 64 }, (_, i) => ["k", i]);
  let m = 0;
  const [put64, limit, rawSet64] = await measure([
    { name: "chorus.kv.put ×64 loops", loops: 64, op: () => chorus.kv.put(`k${n++ % 64}`, value) },
    {
      name: "raw atomic 64 sets per commit",
      loops: 1,
      op: () => {
        const op = raw.atomic();
        for (const key of keys64) op.set(key, value);
        return op.commit();
      },
      opsPerCall: 64,
    },
    { name: "raw kv.set ×64 loops", loops: 64, op: () => raw.set(["k", m++ % 64], value) },
  ]);
  const putCommits = chorus.store.stats.commits - commits0;
  const putOps = n; // every put issued in this phase, warm-up included, all completed

  // ---- put, one loop ----
  n = 0;
  m = 0;
  const [put1, rawSet1] = await measure([
    { name: "chorus.kv.put ×1 loop", loops: 1, op: () => chorus.kv.put(`k${n++ % 64}`, value) },
    { name: "raw kv.set ×1 loop", loops: 1, op: () => raw.set(["k", m++ % 64], value) },
  ]);

  // ---- get, 64 loops over 10,000 loaded actors ----
  const hot = Array.from({ length: HOT }, (_, i) => `h${i}`);
  await Promise.all(Array.from({ length: 64 }, async (_, l) => {
    for (let i = l; i < HOT; i += 64) await chorus.kv.put(hot[i], { ...value, i });
  }));
  for (const key of hot) {
    if ((await chorus.kv.get(key))?.value === undefined) throw new Error(`${key} is missing`);
  }
  n = 0;
  m = 0;
  const [leader, eventual] = await measure([
    { name: "chorus.kv.get leader ×64", loops: 64, op: () => chorus.kv.get(hot[n++ % HOT]) },
    {
      name: "chorus.kv.get eventual ×64",
      loops: 64,
      op: () => chorus.kv.get(hot[m++ % HOT], { consistency: "eventual" }),
    },
  ]);

  console.log(
    `\nEmbedded closed loops (\`bench/load/closed_loop.ts\`), warm-up ${d.warmup} s, ` +
      `${d.seconds} s measured per phase in ${ROUNDS} turns alternating with its references, durable KV files in a temp dir, ${Deno.build.target}\n`,
  );
  const ops = (r: LoopResult) => fmt(r.opsPerSec);
  table(
    ["row", "subject", "ops/s", "reference (same run)", "ops/s", "ratio"],
    [
      [
        "put, 64 loops, 64 keys",
        "`chorus.kv.put`",
        ops(put64),
        "the limit: `raw.atomic().set()×64.commit()` back to back (64 puts per commit)",
        ops(limit),
        ratio(put64.opsPerSec, limit.opsPerSec),
      ],
      [
        "put, 64 loops, 64 keys",
        "`chorus.kv.put`",
        ops(put64),
        "raw `kv.set`, 64 loops",
        ops(rawSet64),
        ratio(put64.opsPerSec, rawSet64.opsPerSec),
      ],
      [
        "put, one loop",
        "`chorus.kv.put`",
        ops(put1),
        "raw `kv.set`, one loop",
        ops(rawSet1),
        ratio(put1.opsPerSec, rawSet1.opsPerSec),
      ],
      [
        "get, 64 loops, 10,000 hot keys",
        "`chorus.kv.get` (leader)",
        ops(leader),
        '`chorus.kv.get(key, { consistency: "eventual" })`',
        ops(eventual),
        ratio(leader.opsPerSec, eventual.opsPerSec),
      ],
    ],
    [2, 4, 5],
  );
  console.log(
    `\nChorus put ×64 loops: ${fmt(putOps / Math.max(1, putCommits))} puts per KV commit ` +
      `(${putCommits} commits for ${putOps} puts, warm-up included).`,
  );
} finally {
  raw.close();
  await chorus.close();
  await Deno.remove(dir, { recursive: true });
}
