/**
 * A hot reel: publishers send updates with view and like interactions embedded, in process (no
 * HTTP), on a KV file. Reports interactions/s, KV commits/s and interactions per commit, next to
 * raw KV `sum` commits/s (one `atomic().sum().commit()` per op, the same concurrency) in the same
 * run. Run: `deno run -A bench/load/reels_hot.ts [seconds=5] [publishers=32]`.
 * @module
 */
import { Chorus } from "../../mod.ts";

const seconds = Number(Deno.args[0] ?? 5);
const publishers = Number(Deno.args[1] ?? 32);
const dir = await Deno.makeTempDir({ prefix: "chorus-reels-bench-" });
const chorus = await Chorus.open({ path: `${dir}/chorus.kv`, scheduler: "off" });

async function hotReel(): Promise<Record<string, number>> {
  const start = performance.now();
  const end = start + seconds * 1000;
  const commits0 = chorus.store.stats.commits;
  let updates = 0, views = 0, likes = 0;
  await Promise.all(Array.from({ length: publishers }, async (_, p) => {
    for (let i = 0; performance.now() < end; i++) {
      // One update, then 8 views and one like: the interactions ride along with the update.
      await chorus.reels.publish("hot", { update_data: { p, i }, priority: "normal" });
      updates++;
      const batch: Promise<unknown>[] = [];
      for (let v = 0; v < 8; v++) {
        batch.push(chorus.reels.interact("hot", { type: "view", user_id: `p${p}` }));
      }
      batch.push(chorus.reels.interact("hot", { type: "like", user_id: `p${p}_${i}` }));
      await Promise.all(batch);
      views += 8;
      likes++;
    }
  }));
  await chorus.reels.flushViews();
  const secs = (performance.now() - start) / 1000;
  const commits = chorus.store.stats.commits - commits0;
  const state = await chorus.reels.get("hot", { consistency: "strong" });
  if (state.views !== views || state.likes !== likes) {
    throw new Error(`counts off: ${JSON.stringify(state)} vs views ${views} likes ${likes}`);
  }
  const interactions = views + likes;
  return {
    seconds: round(secs),
    updates_per_s: round(updates / secs),
    interactions_per_s: round(interactions / secs),
    kv_commits_per_s: round(commits / secs),
    interactions_per_commit: round(interactions / commits),
    view_commits: chorus.reels.stats().viewCommits,
  };
}

async function rawSums(): Promise<Record<string, number>> {
  const kv = chorus.store.kv; // baseline: KV directly, one commit per op
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: publishers }, async () => {
    while (performance.now() < end) {
      await kv.atomic().sum(["bench_raw_views"], 1n).commit();
      n++;
    }
  }));
  const secs = (performance.now() - start) / 1000;
  return { raw_sum_commits_per_s: round(n / secs) };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

try {
  const hot = await hotReel();
  const raw = await rawSums();
  console.log(JSON.stringify({ publishers, ...hot, ...raw }));
} finally {
  await chorus.close();
  await Deno.remove(dir, { recursive: true });
}
