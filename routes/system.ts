/**
 * Liveness and readiness: `GET /health` (and `GET /api/v1/health`, open like it) answers while the
 * process runs; `GET /ready` only when KV answers a read, so load balancers stop sending traffic to
 * an instance that lost its store. Also
 * the schema at `GET /proto/chorus.proto`, and the figures of `/api/v1/system/*`,
 * `/api/v1/connections/stats` and `/api/v1/status`: real counters of this instance (sockets,
 * topics, messages and their rates, actors, KV commit latency, memory, uptime, live members).
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { errorResponses, validationHook } from "./_common.ts";
import { ChorusError } from "../errors.ts";
import type { Members } from "../storage/members.ts";
import { CHORUS_PROTO } from "../proto/codec.ts";
import { type FigureSources, round, systemFigures } from "../observability/system_stats.ts";

/**
 * Dependencies of {@linkcode healthRoutes}: the few figure sources liveness and readiness read
 * (the store for readiness, the instance and its clock for liveness).
 */
export type HealthDeps = Pick<FigureSources, "store" | "instanceId" | "startedAt" | "now">;

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

/** The liveness answer of `GET /health` and `GET /api/v1/health`. */
function liveness(deps: HealthDeps) {
  return {
    status: "ok" as const,
    instance: deps.instanceId,
    uptime_ms: deps.now() - deps.startedAt,
  };
}

/** `/health`, `/ready` and `/proto/chorus.proto`, mounted at the root. */
export function healthRoutes(deps: HealthDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(healthRoute, (c) => c.json(liveness(deps), 200));
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

/**
 * Dependencies of {@linkcode systemRoutes}: the sources of the figures (the same ones the socket's
 * `system` topic reads, so the two cannot drift apart), plus what only these routes show.
 */
export interface SystemDeps extends FigureSources {
  /** The instance's figures, shared with the socket's `system` topic (built here if absent). */
  figures?: ReturnType<typeof systemFigures>;
  /** Instance membership (`status` lists the live members). */
  members?: Members;
  /** `sqlite`, `memory`, `kv-connect` or `deno-deploy`. */
  kvBackend?: string;
}

const Figures = z.record(z.string(), z.unknown());
const figures = (description: string) => ({
  description,
  content: { "application/json": { schema: Figures } },
});

const statsRoute = createRoute({
  method: "get",
  path: "/system/stats",
  summary:
    "Sockets, topics, messages in/out/dropped (totals and per second), actors, KV, memory, compression",
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
  const { uptime, kv, messages, rates, actors, connections, memory, stats } = deps.figures ??
    systemFigures(deps);
  // `GET /api/v1/health`: the same answer as `GET /health`, open without a token.
  app.openapi(healthRoute, (c) => c.json(liveness(deps), 200));
  app.openapi(statsRoute, (c) => c.json(stats(), 200));

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
