/**
 * Liveness and readiness: `GET /health` answers while the process runs; `GET /ready` only when KV
 * answers a read, so load balancers stop sending traffic to an instance that lost its store.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Store } from "../storage/store.ts";
import { errorResponses, validationHook } from "./_common.ts";
import { ChorusError } from "../errors.ts";

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

/** `/health` and `/ready`, mounted at the root. */
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
  return app;
}
