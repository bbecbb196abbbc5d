/**
 * Shared pieces of the closed-loop benchmarks: durations from flags or the environment, a
 * closed-loop driver (N loops, each awaiting its own operation before issuing the next) and number
 * formatting.
 * @module
 */

/** Warm-up and measuring time in seconds, and whether `--quick` was given. */
export interface Durations {
  warmup: number;
  seconds: number;
  quick: boolean;
}

/**
 * Reads `--quick`, `--warmup=<s>` and `--seconds=<s>` from `args`, then `BENCH_WARMUP` and
 * `BENCH_SECONDS` from the environment. Defaults: quick 2 s + 3 s, full 5 s + 10 s.
 */
export function durations(args: string[] = Deno.args): Durations {
  const quick = args.includes("--quick") || Deno.env.get("BENCH_QUICK") === "1";
  const flag = (name: string) => {
    const found = args.find((a) => a.startsWith(`--${name}=`));
    return found === undefined ? undefined : found.slice(name.length + 3);
  };
  const pick = (name: string, env: string, fallback: number) => {
    const text = flag(name) ?? Deno.env.get(env);
    const n = text === undefined ? fallback : Number(text);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} / ${env} must be seconds >= 0`);
    return n;
  };
  return {
    quick,
    warmup: pick("warmup", "BENCH_WARMUP", quick ? 2 : 5),
    seconds: pick("seconds", "BENCH_SECONDS", quick ? 3 : 10),
  };
}

/** The outcome of one closed-loop phase. */
export interface LoopResult {
  /** Operations completed per second inside the measuring window. */
  opsPerSec: number;
  /** Operations completed inside the measuring window. */
  ops: number;
  /** The window's real length in seconds. */
  secs: number;
  /** How far the `meter` given advanced over the window (e.g. a thread's CPU ticks). */
  used?: number;
}

/**
 * Runs `loops` closed loops of `op` for `warmup` seconds, then counts the operations completed
 * over the next `seconds`; each loop stops with its first operation to complete after that.
 * `op(loop, i)` gets the loop's index and its own iteration count; each call counts as
 * `opsPerCall` operations (e.g. 64 for one atomic commit of 64 sets). With `meter`, it is read
 * when the first operation is counted and again when the loops have stopped, and the difference
 * is returned as `used` (CPU time spent in the window, say).
 */
export async function closedLoop(
  loops: number,
  d: Pick<Durations, "warmup" | "seconds">,
  op: (loop: number, i: number) => Promise<unknown>,
  opsPerCall = 1,
  meter?: () => number,
): Promise<LoopResult> {
  // The clock is read after every operation rather than left to timers: an operation that settles
  // in microtasks alone (a cached read) never lets a timer fire.
  const t0 = performance.now() + d.warmup * 1000;
  const t1 = t0 + d.seconds * 1000;
  let counted = 0;
  let opened: number | undefined;
  await Promise.all(Array.from({ length: loops }, async (_, loop) => {
    for (let i = 0;; i++) {
      await op(loop, i);
      const now = performance.now();
      if (now >= t1) return;
      if (now >= t0) {
        if (meter && opened === undefined) opened = meter();
        counted += opsPerCall;
      }
    }
  }));
  const used = meter && opened !== undefined ? meter() - opened : undefined;
  return { opsPerSec: counted / d.seconds, ops: counted, secs: d.seconds, used };
}

/** A closed-loop phase for {@linkcode inTurns}: `loops` loops of `op`. */
export interface Phase {
  /** What the phase runs, for the log. */
  name: string;
  loops: number;
  op: (loop: number, i: number) => Promise<unknown>;
  /** Operations one call counts as (default 1). */
  opsPerCall?: number;
}

/**
 * Measures a subject and its references in turns: each warms up once, then they take `rounds`
 * turns of `seconds / rounds` each (A, B, A, B …), each turn after a short settle of its own that
 * is not counted. On a shared machine a disk stall or a busy neighbour then falls on all of them
 * alike instead of on whichever phase happened to run at that moment, so their ratio is steadier
 * than with one long phase after another. With `meter`, each result's `used` sums what it
 * advanced over the phase's counted windows (see {@linkcode closedLoop}).
 * @returns one result per phase, its counts summed over its turns
 */
export async function inTurns(
  phases: Phase[],
  d: Pick<Durations, "warmup" | "seconds">,
  rounds: number,
  meter?: () => number,
): Promise<LoopResult[]> {
  const settle = Math.min(0.2, d.warmup);
  for (const p of phases) await closedLoop(p.loops, { warmup: d.warmup, seconds: 0 }, p.op);
  const totals = phases.map(() => ({ ops: 0, secs: 0, used: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, p] of phases.entries()) {
      const turn = await closedLoop(
        p.loops,
        { warmup: settle, seconds: d.seconds / rounds },
        p.op,
        p.opsPerCall,
        meter,
      );
      totals[i].ops += turn.ops;
      totals[i].secs += turn.secs;
      totals[i].used += turn.used ?? 0;
    }
  }
  return totals.map((t) => ({
    opsPerSec: t.ops / t.secs,
    ops: t.ops,
    secs: t.secs,
    used: meter ? t.used : undefined,
  }));
}

/** `12,345` for counts and rates; two decimals under 100. */
export function fmt(n: number): string {
  return n < 100 ? n.toFixed(2) : Math.round(n).toLocaleString("en-US");
}

/** A ratio subject / reference as `1.23×`. */
export function ratio(subject: number, reference: number): string {
  if (!(reference > 0)) return "—";
  const r = subject / reference;
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/** Prints a Markdown table. */
export function table(head: string[], rows: string[][], right: number[] = []): void {
  const align = head.map((_, i) => (right.includes(i) ? "---:" : "---"));
  console.log(`| ${head.join(" | ")} |`);
  console.log(`| ${align.join(" | ")} |`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
}
