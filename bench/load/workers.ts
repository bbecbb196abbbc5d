/**
 * Two instances on one KV file, as the workers of `deno serve --parallel` are, in one process:
 * 64 closed loops (each awaiting its own write), half writing through each instance, over ids both
 * write. Three setups, measured in turns (see `inTurns`) on separate durable files in one temp dir:
 *
 * - **one writer**: both instances on one writers' channel (`workersChannel`), as `main.ts` opens
 *   them: the second hands its writes to the first (storage/one_writer.ts);
 * - **each writes**: both instances without the channel (`CHORUS_ONE_WRITER=off`): each writes
 *   itself, and finds the other's writes in its cache;
 * - **reference, one instance**: all 64 loops through a single instance on its own file.
 *
 * Rows: `kv.put` over 1,000 keys, `contexts.update` (a one-field merge patch) over 100 contexts and
 * `reels.interact` (a share) over 100 reels, ids drawn at random; a write refused with `409 conflict` ("too many concurrent writers") is
 * retried, as a client would, and counted once it lands. Both instances share this process's main thread, so the one-writer row
 * pays its channel hops here without the second core a `deno serve --parallel` worker has; the
 * HTTP measure of that is `http_kv.ts --parallel` with and without `CHORUS_ONE_WRITER`.
 *
 * Run: `deno run -A bench/load/workers.ts [--quick] [--warmup=<s>] [--seconds=<s>]` (defaults as
 * `closed_loop.ts`). Part of `deno task bench`.
 * @module
 */
import { Chorus } from "../../mod.ts";
import { durations, fmt, inTurns, type Phase, ratio, table } from "./_closed_loop.ts";

const d = durations();
const ROUNDS = d.quick ? 3 : 5;
const KEYS = 1_000;
const CONTEXTS = 100;
const REELS = 100;
const value = { user: "u-42", cart: [1, 2, 3], total: 99.5 };

const dir = await Deno.makeTempDir({ prefix: "chorus-workers-" });
const open = (file: string, workersChannel?: string) =>
  Chorus.open({ path: `${dir}/${file}`, scheduler: "off", workersChannel });
const channel = `chorus:workers:bench:${crypto.randomUUID()}`;
const shared = [await open("shared.kv", channel), await open("shared.kv", channel)];
const apart = [await open("apart.kv"), await open("apart.kv")];
const alone = await open("alone.kv");
const all = [...shared, ...apart, alone];

try {
  while (shared.some((c) => (c.workers?.peers ?? 0) < 1)) {
    await new Promise((r) => setTimeout(r, 10));
  }
  for (const c of [shared[0], apart[0], alone]) {
    for (let i = 0; i < CONTEXTS; i++) await c.contexts.set(`c${i}`, { n: 0 });
  }
  const pick = (n: number) => Math.floor(Math.random() * n);
  /** 64 loops, even ones through the first instance, odd ones through the second. */
  const phase = (name: string, pair: Chorus[], op: (c: Chorus, i: number) => Promise<unknown>) =>
    ({ name, loops: 64, op: (loop, i) => op(pair[loop % pair.length], i) }) satisfies Phase;
  /** Refusals with `409 conflict` ("too many concurrent writers"), retried as a client would. */
  let refused = 0;
  const retried = async (write: () => Promise<unknown>) => {
    for (;;) {
      try {
        return await write();
      } catch (e) {
        if ((e as { code?: string }).code !== "conflict") throw e;
        refused++;
      }
    }
  };
  const put = (c: Chorus) => retried(() => c.kv.put(`k${pick(KEYS)}`, value));
  const update = (c: Chorus, i: number) =>
    retried(() => c.contexts.update(`c${pick(CONTEXTS)}`, { n: i }));
  const share = (c: Chorus, i: number) =>
    retried(() => c.reels.interact(`r${pick(REELS)}`, { type: "share", user_id: `u${i % 1000}` }));

  console.error(`workers: warm-up ${d.warmup} s, then ${d.seconds} s per setup in ${ROUNDS} turns`);
  const rows: string[][] = [];
  for (
    const [row, op] of [
      [`kv.put, ${fmt(KEYS)} keys`, put],
      [`contexts.update, ${CONTEXTS} contexts`, update],
      [`reels.interact (share), ${REELS} reels`, share],
    ] as const
  ) {
    const [one, each, single] = await inTurns(
      [
        phase("one writer", shared, op),
        phase("each writes", apart, op),
        phase("one instance", [alone], op),
      ],
      d,
      ROUNDS,
    );
    rows.push([
      row,
      fmt(one.opsPerSec),
      fmt(each.opsPerSec),
      fmt(single.opsPerSec),
      ratio(one.opsPerSec, single.opsPerSec),
      ratio(each.opsPerSec, single.opsPerSec),
    ]);
  }
  const conflicts = (pair: Chorus[]) => pair.reduce((n, c) => n + c.store.stats.conflicts, 0);
  console.log(
    `\nTwo instances on one KV file in one process (\`bench/load/workers.ts\`), 64 closed loops, ` +
      `ids at random; warm-up ${d.warmup} s, ${d.seconds} s per setup in ${ROUNDS} turns, ` +
      `${Deno.build.target}\n`,
  );
  table(
    [
      "row",
      "one writer ops/s",
      "each writes ops/s",
      "reference: one instance ops/s",
      "one writer / reference",
      "each writes / reference",
    ],
    rows,
  );
  console.log(
    `\nConflicts (a commit that met a stale cache): one writer ${fmt(conflicts(shared))}, each ` +
      `writes ${fmt(conflicts(apart))}; writes refused with 409 and retried: ${fmt(refused)}; ` +
      `writes handed over ${fmt(shared[1].workers!.handedOver)}.`,
  );
} finally {
  for (const c of all) await c.close();
  await Deno.remove(dir, { recursive: true });
}
