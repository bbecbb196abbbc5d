/**
 * What one atomic commit costs the calling thread, by size: raw Deno KV on a durable temp-dir
 * file, one commit after another of N sets (40-byte values, keys `["kv", "k<i>"]`), for N = 1, 8,
 * 32, 64 and 128, each set alone and (up to 64, KV's limit being 100 checks) each set with a check of its key's versionstamp (the shape
 * of a Chorus put: one check and one set per intent). Prints, per N, the wall time of a commit,
 * the part of it spent inside the `commit()` call itself (the main thread is blocked for that
 * long: this is not time it can spend preparing the next batch or answering the last one), the
 * process CPU spent inside that call (`process.cpuUsage`; KV's own thread is idle then, the commits
 * going one after another), and sets/s.
 *
 * Why it matters: Chorus's group commit overlaps its JavaScript work with KV's, and this is the
 * part of KV's work that cannot overlap. Its fixed share per commit is why the store puts as much
 * as it can into each commit, and why two commits in flight, not more, measured best.
 *
 * Usage: deno run -A bench/load/commit_cost.ts [ms-per-size=1500]
 * @module
 */
import process from "node:process";

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
  for (const checked of [false, true]) {
    // KV takes at most 100 checks per commit.
    for (const size of checked ? [1, 8, 32, 64] : [1, 8, 32, 64, 128]) {
      const keys = Array.from({ length: size }, (_, i) => ["kv", `k${i}`]);
      // The versionstamp each key has now (the last commit's), so every check holds.
      let versionstamp: string | null = null;
      if (checked) {
        const op = kv.atomic();
        for (const key of keys) op.set(key, value);
        const first = await op.commit();
        if (!first.ok) throw new Error("a commit without checks failed");
        versionstamp = first.versionstamp;
      }
      let inCall = 0;
      let inCallCpu = 0;
      let commits = 0;
      const started = performance.now();
      while (performance.now() - started < msPerSize) {
        const op = kv.atomic();
        for (const key of keys) {
          if (checked) op.check({ key, versionstamp });
          op.set(key, value);
        }
        const cpu = process.cpuUsage();
        const before = performance.now();
        const done = op.commit();
        inCall += performance.now() - before;
        const used = process.cpuUsage(cpu);
        inCallCpu += used.user + used.system;
        const result = await done;
        if (!result.ok) throw new Error(`a commit ${checked ? "whose checks held" : ""} failed`);
        versionstamp = result.versionstamp;
        commits++;
      }
      const wall = performance.now() - started;
      const wallUs = (wall * 1000 / commits).toFixed(0);
      const inCallUs = (inCall * 1000 / commits).toFixed(1);
      const inCallCpuUs = (inCallCpu / commits).toFixed(1);
      const share = `${(inCall / wall * 100).toFixed(0)}%`;
      const setsPerSecond = Math.round(size * commits / wall * 1000);
      rows.push(
        `| ${size} | ${
          checked ? "yes" : "no"
        } | ${wallUs} | ${inCallUs} | ${inCallCpuUs} | ${share} | ${setsPerSecond} |`,
      );
    }
  }
} finally {
  kv.close();
  await Deno.remove(dir, { recursive: true });
}

console.log(
  `Raw Deno KV commits one after another (\`bench/load/commit_cost.ts\`), ${msPerSize} ms per ` +
    `size, durable temp-dir file, ${Deno.build.target}\n`,
);
console.log(
  "| sets per commit | each checked | µs per commit (wall) | µs inside `commit()` | CPU µs inside `commit()` | share | sets/s |",
);
console.log("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
for (const row of rows) console.log(row);
