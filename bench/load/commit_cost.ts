/**
 * What one atomic commit costs the calling thread, by size: raw Deno KV on a durable temp-dir
 * file, one commit after another of N sets (40-byte values, keys `["kv", "k<i>"]`), for N = 1, 8,
 * 32, 64 and 128. Prints, per N, the wall time of a commit, the part of it spent inside the
 * `commit()` call itself (the main thread is blocked for that long: this is not time it can spend
 * preparing the next batch or answering the last one), and sets/s.
 *
 * Why it matters: Chorus's group commit overlaps its JavaScript work with KV's, and this is the
 * part of KV's work that cannot overlap. Its fixed share per commit is why the store puts as much
 * as it can into each commit, and why two commits in flight, not more, measured best.
 *
 * Usage: deno run -A bench/load/commit_cost.ts [ms-per-size=1500]
 * @module
 */
const msPerSize = Number(Deno.args[0] ?? 1500);
if (!Number.isFinite(msPerSize) || msPerSize < 100) {
  console.error("usage: deno run -A bench/load/commit_cost.ts [ms-per-size ≥ 100, default 1500]");
  Deno.exit(2);
}
const dir = await Deno.makeTempDir({ prefix: "chorus-bench-commit-" });
const kv = await Deno.openKv(`${dir}/commit.kv`);
const value = new Uint8Array(40);

const rows: string[] = [];
try {
  for (const size of [1, 8, 32, 64, 128]) {
    const keys = Array.from({ length: size }, (_, i) => ["kv", `k${i}`]);
    let inCall = 0;
    let commits = 0;
    const started = performance.now();
    while (performance.now() - started < msPerSize) {
      const op = kv.atomic();
      for (const key of keys) op.set(key, value);
      const before = performance.now();
      const done = op.commit();
      inCall += performance.now() - before;
      const result = await done;
      if (!result.ok) throw new Error("a commit without checks failed");
      commits++;
    }
    const wall = performance.now() - started;
    const wallUs = (wall * 1000 / commits).toFixed(0);
    const inCallUs = (inCall * 1000 / commits).toFixed(1);
    const share = `${(inCall / wall * 100).toFixed(0)}%`;
    const setsPerSecond = Math.round(size * commits / wall * 1000);
    rows.push(`| ${size} | ${wallUs} | ${inCallUs} | ${share} | ${setsPerSecond} |`);
  }
} finally {
  kv.close();
  await Deno.remove(dir, { recursive: true });
}

console.log(
  `Raw Deno KV commits one after another (\`bench/load/commit_cost.ts\`), ${msPerSize} ms per ` +
    `size, durable temp-dir file, ${Deno.build.target}\n`,
);
console.log("| sets per commit | µs per commit (wall) | µs inside `commit()` | share | sets/s |");
console.log("| ---: | ---: | ---: | ---: | ---: |");
for (const row of rows) console.log(row);
