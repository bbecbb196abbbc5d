/**
 * The live figures of one instance — sockets, topics, messages with per-second rates, actors,
 * KV commits and latency, reels, memory, value compression, uptime — built once here and served both by
 * `GET /api/v1/system/stats` and by the socket's `system` topic, so the two always agree.
 * @module
 */
import type { Store } from "../storage/store.ts";
import type { ResolvedConfig } from "../config.ts";
import type { Registry } from "../actors/registry.ts";
import type { ReelsApi } from "../actors/reel_api.ts";
import type { RealtimeServer } from "../realtime/server.ts";
import { compressionReport, compressionStatsOf } from "../storage/codec.ts";

/**
 * Where the figures come from: the live objects of one instance, read at the moment the figures
 * are asked for, so nothing is counted twice or kept just for them.
 */
export interface FigureSources {
  /** The KV store (commit, conflict and latency counters). */
  store: Store;
  /** Resolved configuration (region, compression settings). */
  config: ResolvedConfig;
  /** This instance's id. */
  instanceId: string;
  /** When the instance started (ms since epoch), for the uptime. */
  startedAt: number;
  /** The instance's clock (ms since epoch). */
  now: () => number;
  /** The socket endpoint (sockets, topics, message counters). */
  realtime?: RealtimeServer;
  /** Live actors. */
  registry?: Registry;
  /** The reels product (interaction and view-coalescing counters). */
  reels?: ReelsApi;
}

/** Rounds to two decimals. */
export function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Counter snapshots, to turn totals into per-second rates over the last minute. */
export class RateMeter {
  readonly #samples: { at: number; values: Record<string, number> }[] = [];

  /** Rates per second of each counter since the oldest sample of the last 60 s. */
  rates(now: number, values: Record<string, number>): Record<string, number> {
    const last = this.#samples.at(-1);
    if (!last || now - last.at >= 1000) this.#samples.push({ at: now, values });
    while (this.#samples.length > 1 && now - this.#samples[0].at > 60_000) this.#samples.shift();
    const base = this.#samples[0];
    const secs = (now - base.at) / 1000;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(values)) {
      out[`${k}_per_s`] = secs > 0 ? round((v - (base.values[k] ?? 0)) / secs) : 0;
    }
    return out;
  }
}

/** Builds the figure readers for one instance; `stats()` is the whole `system_stats` payload. */
export function systemFigures(deps: FigureSources) {
  const meter = new RateMeter();
  const uptime = () => deps.now() - deps.startedAt;
  const kv = () => {
    const s = deps.store.stats;
    return {
      commits: s.commits,
      intents: s.intents,
      conflicts: s.conflicts,
      reads: s.reads,
      commit_ms_avg: s.commits ? round(s.commitMs / s.commits) : 0,
      last_commit_ms: round(s.lastCommitMs),
      intents_per_commit: s.commits ? round(s.intents / s.commits) : 0,
      queued: deps.store.queued,
    };
  };
  const messages = () => {
    const r = deps.realtime?.stats();
    return { in: r?.messagesIn ?? 0, out: r?.messagesOut ?? 0, dropped: r?.messagesDropped ?? 0 };
  };
  const rates = () => {
    const m = messages();
    const s = deps.store.stats;
    const reels = deps.reels?.stats();
    return meter.rates(deps.now(), {
      messages_in: m.in,
      messages_out: m.out,
      messages_dropped: m.dropped,
      kv_commits: s.commits,
      interactions: reels?.interactions ?? 0,
    });
  };
  const actors = () => ({
    total: deps.registry?.size ?? 0,
    by_kind: deps.registry?.counts() ?? {},
    mailbox_depth: deps.registry?.mailboxDepth() ?? 0,
    evicted: deps.registry?.evicted ?? 0,
  });
  const connections = () => {
    const sessions = deps.realtime?.sessions() ?? [];
    const byFormat: Record<string, number> = { json: 0, protobuf: 0 };
    let channels = 0, queuedBytes = 0;
    for (const s of sessions) {
      byFormat[s.format] = (byFormat[s.format] ?? 0) + 1;
      channels += s.channels;
      queuedBytes += s.outbox.queuedBytes;
    }
    return {
      sockets: sessions.length,
      topics: deps.realtime?.stats().topics ?? 0,
      channels,
      by_format: byFormat,
      outbox_queued_bytes: queuedBytes,
      presence_tracked: deps.realtime?.presence?.tracked ?? 0,
    };
  };
  const memory = () => {
    const m = Deno.memoryUsage();
    return { rss: m.rss, heap_used: m.heapUsed, heap_total: m.heapTotal, external: m.external };
  };

  const compression = () => {
    const c = compressionReport(compressionStatsOf(deps.config));
    return {
      values: c.values,
      compressed: c.compressed,
      bytes_before: c.bytesBefore,
      bytes_after: c.bytesAfter,
      ratio: c.ratio,
      saved_bytes: c.savedBytes,
    };
  };

  const stats = () => ({
    instance: deps.instanceId,
    region: deps.config.region,
    uptime_ms: uptime(),
    ...connections(),
    messages: messages(),
    rates: rates(),
    actors: actors(),
    kv: kv(),
    reels: deps.reels?.stats() ?? null,
    memory: memory(),
    compression: compression(),
  });
  return { uptime, kv, messages, rates, actors, connections, memory, compression, stats };
}
