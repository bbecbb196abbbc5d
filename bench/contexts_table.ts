/**
 * Chord's context scenarios as one Markdown table: runs `deno bench --json -A
 * bench/contexts_bench.ts` (1 context × 50 participants and 100 contexts × 50, stateless and
 * stateful, embedded on a durable temp-dir KV file; see that file for what one iteration is) and
 * prints iterations/s (1 / mean) and p99 next to three references: the JSON-work-only baseline
 * measured in the same run, the floor of an iteration that commits once (that baseline plus one
 * durable `kv.set` on the same file, same run), and Chord's published figures (151 iterations/s
 * for 1 × 50, 3.5 for 100 × 50; not re-measured here, and in memory: Chord's ETS commits nothing
 * to disk). The large-context rows (one writer, each update awaited) are set beside one durable
 * commit, a raw `kv.set` on the same file.
 *
 * Run: `deno run -A bench/contexts_table.ts` (~25 s). Part of `deno task bench:quick`.
 * @module
 */

/** Chord's published iterations/s per scenario size. */
const CHORD: Record<string, number> = { "1x50": 151, "100x50": 3.5 };

interface BenchResult {
  group?: string;
  name: string;
  baseline: boolean;
  results: { ok?: { n: number; avg: number; p99: number }; failed?: unknown }[];
}

const file = new URL("./contexts_bench.ts", import.meta.url).pathname;
const out = await new Deno.Command(Deno.execPath(), {
  args: ["bench", "--json", "-A", file],
  stdout: "piped",
  stderr: "inherit",
}).output();
if (!out.success) {
  console.error("deno bench failed");
  Deno.exit(1);
}
const report = JSON.parse(new TextDecoder().decode(out.stdout)) as { benches: BenchResult[] };

const perSec = (ns: number) => 1e9 / ns;
const fmt = (n: number) => n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
const ms = (ns: number) => `${(ns / 1e6).toFixed(2)} ms`;

// The floor of an iteration that commits once: its JSON work plus one durable commit.
const commit = report.benches.find((x) => x.group === "commit")?.results[0]?.ok;
const rows: string[][] = [];
for (const b of report.benches) {
  const ok = b.results[0]?.ok;
  if (b.group === "commit") continue;
  if (b.baseline || !ok) {
    if (!ok) rows.push([b.name, "failed", "", "", "", "", "", "", ""]);
    continue;
  }
  const baseBench = report.benches.find((x) => x.group === b.group && x.baseline);
  const base = baseBench?.results[0]?.ok;
  // Where the baseline is itself one durable commit, there is no JSON-work floor to add it to.
  const floor = base && commit && !baseBench!.name.startsWith("one durable commit")
    ? base.avg + commit.avg
    : undefined;
  const chord = CHORD[(b.group ?? "").split(" ")[0]];
  const its = perSec(ok.avg);
  rows.push([
    b.name,
    fmt(its),
    ms(ok.p99),
    base ? fmt(perSec(base.avg)) : "—",
    base ? `${(its / perSec(base.avg)).toFixed(2)}×` : "—",
    floor ? fmt(perSec(floor)) : "—",
    floor ? `${(its / perSec(floor)).toFixed(2)}×` : "—",
    chord === undefined ? "—" : String(chord),
    chord === undefined ? "—" : `${(its / chord).toFixed(1)}×`,
  ]);
}

console.log(
  `\nContexts (\`deno bench -A bench/contexts_bench.ts\` via \`bench/contexts_table.ts\`), ` +
    `iterations/s = 1 / mean, durable KV file in a temp dir, ${Deno.build.target}\n`,
);
console.log(
  "| scenario | iter/s | p99 | baseline iter/s (same run) | ratio | floor: baseline + one commit, iter/s | ratio | Chord published iter/s | ratio |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
if (commit) {
  console.log(
    `\nOne durable commit (raw \`kv.set\` on the same file, same run): ${ms(commit.avg)} mean. ` +
      "An iteration that commits once cannot run faster than its JSON work plus that commit.",
  );
}
