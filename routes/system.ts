/**
 * Liveness and readiness: `GET /health` answers while the process runs; `GET /ready` only when KV
 * answers a read, so load balancers stop sending traffic to an instance that lost its store. Also
 * the schema at `GET /proto/chorus.proto`, and the figures of `/api/v1/system/*`,
 * `/api/v1/connections/stats` and `/api/v1/status`: real counters of this instance (sockets,
 * topics, messages and their rates, actors, KV commit latency, memory, uptime, live members).
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Store } from "../storage/store.ts";
import { errorResponses, validationHook } from "./_common.ts";
import { ChorusError } from "../errors.ts";
import type { ResolvedConfig } from "../config.ts";
import type { Registry } from "../actors/registry.ts";
import type { ReelsApi } from "../actors/reel_api.ts";
import type { Members } from "../storage/members.ts";
import type { RealtimeServer } from "../realtime/server.ts";
import { CHORUS_PROTO } from "../proto/codec.ts";

/** Dependencies of {@linkcode healthRoutes}. */
export interface HealthDeps {
  store: Store;
  instanceId: string;
  startedAt: number;
  now: () => number;
}

const healthRoute = createRoute({
  method: "get",
  path: "/health",
  summary: "Liveness",
  responses: {
    200: {
      description: "The process is up",
      content: {
        "application/json": {
          schema: z.object({
            status: z.literal("ok"),
            instance: z.string(),
            uptime_ms: z.number(),
          }),
        },
      },
    },
  },
});

const readyRoute = createRoute({
  method: "get",
  path: "/ready",
  summary: "Readiness: KV is reachable",
  responses: {
    200: {
      description: "KV answers",
      content: {
        "application/json": {
          schema: z.object({ status: z.literal("ready"), kv_ms: z.number() }),
        },
      },
    },
    ...errorResponses(503),
  },
});

const protoRoute = createRoute({
  method: "get",
  path: "/proto/chorus.proto",
  summary: "The protobuf schema of the wire messages (ReelUpdate, Interaction, Envelope, …)",
  responses: {
    200: { description: "proto3 source", content: { "text/plain": { schema: z.string() } } },
  },
});

/** `/health`, `/ready` and `/proto/chorus.proto`, mounted at the root. */
export function healthRoutes(deps: HealthDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(healthRoute, (c) =>
    c.json({
      status: "ok" as const,
      instance: deps.instanceId,
      uptime_ms: deps.now() - deps.startedAt,
    }, 200));
  app.openapi(readyRoute, async (c) => {
    const started = performance.now();
    try {
      await deps.store.get(["ready"], "eventual");
    } catch (cause) {
      throw new ChorusError("unavailable", "Cannot serve: KV is not reachable", { cause });
    }
    return c.json({ status: "ready" as const, kv_ms: performance.now() - started }, 200);
  });
  app.openapi(
    protoRoute,
    (c) => c.text(CHORUS_PROTO, 200, { "content-type": "text/plain; charset=utf-8" }),
  );
  return app;
}

/** Dependencies of {@linkcode systemRoutes}: everything the figures are read from. */
export interface SystemDeps {
  store: Store;
  config: ResolvedConfig;
  instanceId: string;
  startedAt: number;
  now: () => number;
  /** The socket endpoint (sockets, topics, message counters). */
  realtime?: RealtimeServer;
  /** Live actors. */
  registry?: Registry;
  /** Instance membership (`status` lists the live members). */
  members?: Members;
  /** The reels product (interaction and view-coalescing counters). */
  reels?: ReelsApi;
  /** `sqlite`, `memory`, `kv-connect` or `deno-deploy`. */
  kvBackend?: string;
}

/** Counter snapshots, to turn totals into per-second rates over the last minute. */
class RateMeter {
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

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

const Figures = z.record(z.string(), z.unknown());
const figures = (description: string) => ({
  description,
  content: { "application/json": { schema: Figures } },
});

const statsRoute = createRoute({
  method: "get",
  path: "/system/stats",
  summary: "Sockets, topics, messages in/out/dropped (totals and per second), actors, KV, memory",
  responses: { 200: figures("Live figures of this instance") },
});
const systemHealthRoute = createRoute({
  method: "get",
  path: "/system/health",
  summary: "Component health: KV read latency, sockets, actors, mailbox depth",
  responses: { 200: figures("Healthy"), ...errorResponses(503) },
});
const performanceRoute = createRoute({
  method: "get",
  path: "/system/performance",
  summary: "KV commit latency and rates, group-commit ratio, view coalescing, message rates",
  responses: { 200: figures("Performance figures") },
});
const connectionsRoute = createRoute({
  method: "get",
  path: "/connections/stats",
  summary: "Open sockets by format, channels, outbound buffers, messages",
  responses: { 200: figures("Connection figures") },
});
const statusRoute = createRoute({
  method: "get",
  path: "/status",
  summary: "Instance, region, KV backend, live members, actors, connections",
  responses: { 200: figures("Status"), ...errorResponses(503) },
});

/** `/system/*`, `/connections/stats` and `/status`, mounted under `/api/v1`. */
export function systemRoutes(deps: SystemDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
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

  app.openapi(statsRoute, (c) =>
    c.json({
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
    }, 200));

  app.openapi(systemHealthRoute, async (c) => {
    const started = performance.now();
    try {
      await deps.store.get(["ready"], "strong");
    } catch (cause) {
      throw new ChorusError("unavailable", "Cannot serve: KV is not reachable", { cause });
    }
    return c.json({
      status: "ok",
      instance: deps.instanceId,
      uptime_ms: uptime(),
      checks: {
        kv: { ok: true, read_ms: round(performance.now() - started) },
        sockets: { ok: true, open: deps.realtime?.stats().sockets ?? 0 },
        actors: { ok: true, live: deps.registry?.size ?? 0 },
        mailbox: { ok: true, depth: deps.registry?.mailboxDepth() ?? 0 },
      },
    }, 200);
  });

  app.openapi(performanceRoute, (c) => {
    const reels = deps.reels?.stats();
    return c.json({
      instance: deps.instanceId,
      uptime_ms: uptime(),
      kv: kv(),
      rates: rates(),
      views: reels
        ? {
          views: reels.views,
          commits: reels.viewCommits,
          views_per_commit: reels.viewCommits ? round(reels.views / reels.viewCommits) : 0,
          pending: reels.pendingViews,
        }
        : null,
      memory: memory(),
    }, 200);
  });

  app.openapi(
    connectionsRoute,
    (c) => c.json({ ...connections(), messages: messages(), rates: rates() }, 200),
  );

  app.openapi(statusRoute, async (c) => {
    const members = deps.members ? await deps.members.list() : [];
    return c.json({
      instance: deps.instanceId,
      region: deps.config.region,
      kv_backend: deps.kvBackend ?? "unknown",
      started_at: deps.startedAt,
      uptime_ms: uptime(),
      members,
      actors: actors(),
      connections: connections(),
    }, 200);
  });
  return app;
}
