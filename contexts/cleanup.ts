/**
 * Context cleanup: removes expired contexts (when `contextAutoDelete` is on) and the delta-log
 * entries nobody can use any more (older than `deltaTtlMs`, trimmed, or left by a deleted or
 * expired generation) that KV has not removed yet. Every removal is an atomic commit that checks
 * the context's head versionstamp, so a context written meanwhile on any instance is left alone.
 * @module
 */
import type { Clock } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";
import type { Mutation, Store } from "../storage/store.ts";
import { CTX_DELTA_PREFIX, CTX_HEAD_PREFIX, ctxDeltaPrefix, ctxHeadKey } from "../storage/keys.ts";
import {
  type ContextRecord,
  type DeltaPage,
  dropValue,
  headExpireIn,
  tombstone,
} from "./layout.ts";
import { telemetry } from "../observability/telemetry.ts";

/** Counts of one cleanup run. */
export interface CleanupResult {
  /** Expired contexts removed (left as tombstones that remember the version). */
  contexts: number;
  /** Delta-log entries removed. */
  deltas: number;
  /** KV entries examined. */
  scanned: number;
}

/** Dependencies of {@linkcode cleanupContexts}. */
export interface CleanupDeps {
  store: Store;
  config: ResolvedConfig;
  clock: Clock;
}

/** Default and largest `limit` of one run. */
export const DEFAULT_CLEANUP_LIMIT = 1000;
/** Largest `limit` accepted. */
export const MAX_CLEANUP_LIMIT = 100_000;
const PAGE = 500;
const MUTATIONS_PER_COMMIT = 500;

/**
 * Runs one cleanup pass.
 * @param options.limit most items removed, exactly: each expired context counts one and each of
 *   the deltas removed counts one (an expired context's own deltas included); default 1000
 */
export async function cleanupContexts(
  deps: CleanupDeps,
  options: { limit?: number } = {},
): Promise<CleanupResult> {
  const result: CleanupResult = { contexts: 0, deltas: 0, scanned: 0 };
  const run: Run = {
    ...deps,
    limit: options.limit ?? DEFAULT_CLEANUP_LIMIT,
    now: deps.clock.now(),
    result,
  };
  const started = performance.now();
  if (deps.config.contextAutoDelete) await removeExpiredContexts(run);
  if (result.contexts + result.deltas < run.limit) await removeDeadDeltas(run);
  if (telemetry.cleanup.hasSubscribers) {
    const durationMs = performance.now() - started;
    telemetry.cleanup.publish({ ...result, limit: run.limit, durationMs });
  }
  return result;
}

/** One run's settings and running counts. */
interface Run extends CleanupDeps {
  limit: number;
  now: number;
  result: CleanupResult;
}

async function removeExpiredContexts(run: Run): Promise<void> {
  const { store, config, now, limit, result } = run;
  for await (
    const entry of store.list<ContextRecord>({ prefix: [...CTX_HEAD_PREFIX] }, { batchSize: PAGE })
  ) {
    result.scanned++;
    const rec = entry.value;
    if (rec.x || rec.u + config.contextTtlMs > now) continue;
    const id = entry.key[1] as string;
    // The limit is exact: the context counts one, each delta one. Delta pages that do not fit
    // what is left stay behind as dead deltas (the tombstone hides them) for a later pass.
    let budget = limit - result.contexts - result.deltas - 1;
    const deltaKeys: Deno.KvKey[] = [];
    let deltaCount = 0;
    for await (
      const d of store.list<DeltaPage>({ prefix: ctxDeltaPrefix(id) }, {
        limit: MUTATIONS_PER_COMMIT,
      })
    ) {
      if (d.value.n > budget) continue;
      budget -= d.value.n;
      deltaKeys.push(d.key);
      deltaCount += d.value.n;
    }
    const gone = tombstone(rec, now);
    const mutations: Mutation[] = [
      ...dropValue(id, rec),
      ...deltaKeys.map((key) => ({ type: "delete" as const, key })),
      { type: "set", key: ctxHeadKey(id), value: gone, expireIn: headExpireIn(gone, config) },
    ];
    const done = await store.commit({
      checks: [{ key: entry.key, versionstamp: entry.versionstamp }],
      mutations,
      bytes: 256 * mutations.length,
    });
    if (!done.ok) continue; // written meanwhile: no longer expired
    result.contexts++;
    result.deltas += deltaCount;
    if (result.contexts + result.deltas >= limit) return;
  }
}

async function removeDeadDeltas(run: Run): Promise<void> {
  const { store, config, now, limit, result } = run;
  let id: string | undefined;
  let dead: { key: Deno.KvKey; n: number }[] = [];
  let head: Deno.KvEntryMaybe<ContextRecord> | undefined;
  const flush = async () => {
    if (!dead.length || !head) return;
    const pages = dead;
    dead = [];
    const done = await store.commit({
      checks: [{ key: head.key, versionstamp: head.versionstamp }],
      mutations: pages.map(({ key }) => ({ type: "delete", key })),
      bytes: 128 * pages.length,
    });
    if (done.ok) result.deltas += pages.reduce((n, p) => n + p.n, 0);
  };
  const selector = { prefix: [...CTX_DELTA_PREFIX] };
  for await (const entry of store.list<DeltaPage>(selector, { batchSize: PAGE })) {
    result.scanned++;
    const entryId = entry.key[1] as string;
    if (entryId !== id || dead.length >= MUTATIONS_PER_COMMIT) {
      await flush();
      if (result.contexts + result.deltas >= limit) return;
      if (entryId !== id) head = await store.get<ContextRecord>(ctxHeadKey(entryId));
      id = entryId;
    }
    const page = entry.value;
    const rec = head!.value;
    const useless = page.at + config.deltaTtlMs <= now || !rec || rec.x || rec.g !== page.g ||
      page.v + page.n - 1 <= rec.b || page.v > rec.v;
    if (useless && result.contexts + result.deltas + page.n <= limit) {
      dead.push({ key: entry.key, n: page.n });
    }
  }
  await flush();
}
