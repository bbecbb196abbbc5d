/**
 * Admin routes for contexts cleanup: run it now (`POST /admin/cleanup`), and read or change the
 * schedule every instance follows (`GET|PUT /admin/cleanup/schedule`).
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { ContextsApi } from "../actors/context_api.ts";
import { errorResponses, jsonResponse, validationHook } from "./_common.ts";

/** Dependencies of {@linkcode adminRoutes}. */
export interface AdminRoutesDeps {
  contexts: ContextsApi;
}

const Schedule = z.object({
  interval_ms: z.number().int().openapi({ example: 3_600_000 }),
  limit: z.number().int().openapi({ example: 1000 }),
  enabled: z.boolean(),
}).openapi("CleanupSchedule");
const Counts = z.object({
  contexts: z.number().int(),
  deltas: z.number().int(),
  scanned: z.number().int(),
}).openapi("CleanupResult");

const cleanupRoute = createRoute({
  method: "post",
  path: "/admin/cleanup",
  summary: "Remove expired contexts (with auto-delete) and dead deltas now",
  request: {
    body: {
      content: {
        "application/json": {
          schema: z.object({ limit: z.number().int().min(1).max(100_000).optional() }),
        },
      },
    },
  },
  responses: { 200: jsonResponse(Counts), ...errorResponses(400) },
});

const getScheduleRoute = createRoute({
  method: "get",
  path: "/admin/cleanup/schedule",
  summary: "The cleanup schedule",
  responses: { 200: jsonResponse(Schedule) },
});

const putScheduleRoute = createRoute({
  method: "put",
  path: "/admin/cleanup/schedule",
  summary: "Change the cleanup schedule at run time (any subset of the fields)",
  request: {
    body: {
      content: { "application/json": { schema: Schedule.partial().strict() } },
      required: true,
    },
  },
  responses: { 200: jsonResponse(Schedule), ...errorResponses(400) },
});

/** The `/admin/cleanup` routes, mounted under `/api/v1`. */
export function adminRoutes(deps: AdminRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const { contexts } = deps;
  app.openapi(cleanupRoute, async (c) => {
    const body = c.req.valid("json") ?? {};
    return c.json(await contexts.cleanup({ limit: body.limit }), 200);
  });
  app.openapi(getScheduleRoute, async (c) => c.json(await contexts.scheduler.schedule(), 200));
  app.openapi(putScheduleRoute, async (c) => {
    return c.json(await contexts.scheduler.setSchedule(c.req.valid("json")), 200);
  });
  return app;
}
