/**
 * The contexts routes: replace, patch (merge patch or JSON Patch by content type), read,
 * delete, sync (full / delta / no change in three formats), the retained deltas, and
 * export/restore. Each handler validates, calls `ContextsApi`, and shapes the JSON. Sync and the
 * deltas list also answer `Accept: application/x-protobuf` with a `ContextDelta` and a
 * `ContextDeltaList` (proto/chorus.proto) that decode to the same values as the JSON.
 * See docs/http-api.md.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ChorusError } from "../errors.ts";
import type { ContextsApi, PatchType } from "../actors/context_api.ts";
import { encodeContextDelta, encodeContextDeltaList } from "../proto/codec.ts";
import {
  ConsistencyQuery,
  errorResponses,
  jsonResponse,
  pathId,
  validationHook,
} from "./_common.ts";
import { jsonOrProtobuf, negotiate } from "./_protobuf.ts";

/** Dependencies of {@linkcode contextRoutes}. */
export interface ContextRoutesDeps {
  contexts: ContextsApi;
}

const IdParam = z.object({ id: pathId("room-42") });
const JsonObject = z.unknown().openapi({
  type: "object",
  description: "A JSON object",
  example: { title: "Hello", items: [1, 2] },
});
const ContextResult = z.object({
  id: z.string(),
  version: z.number().int(),
  context: JsonObject,
}).openapi("Context");
const SyncResult = z.union([
  z.object({
    type: z.literal("full_context"),
    version: z.number().int(),
    context: JsonObject,
  }),
  z.object({
    type: z.literal("delta"),
    from_version: z.number().int(),
    version: z.number().int(),
    delta: z.unknown().openapi({ description: "In the requested format" }),
  }),
  z.object({ type: z.literal("no_change"), version: z.number().int() }),
]).openapi("SyncResult");
/** A non-negative integer in a query string (`version`, `since`). */
const VersionQuery = z.string().regex(/^\d{1,15}$/, "must be a non-negative integer")
  .transform(Number).optional();

const putRoute = createRoute({
  method: "put",
  path: "/contexts/{id}",
  summary: "Replace a context (creating it); an identical context keeps the version",
  request: {
    params: IdParam,
    body: {
      content: {
        "application/json": {
          // Required (the server refuses a PUT without it): declared so, for the document.
          schema: z.object({
            context: JsonObject.refine((v) => v !== undefined, "context is required"),
          }),
        },
      },
      required: true,
    },
  },
  responses: { 200: jsonResponse(ContextResult), ...errorResponses(400, 413, 415) },
});

const patchRoute = createRoute({
  method: "patch",
  path: "/contexts/{id}",
  summary: "Partial update: RFC 7386 merge patch or RFC 6902 JSON Patch",
  description: "`application/json` is read as a JSON Patch when the body is an array, else as a " +
    "merge patch. A JSON Patch op that does not apply is a 409 with `details.op_index`.",
  request: {
    params: IdParam,
    body: {
      content: {
        "application/merge-patch+json": { schema: z.unknown().openapi({ type: "object" }) },
        "application/json-patch+json": {
          schema: z.unknown().openapi({ type: "array", items: { type: "object" } }),
        },
        "application/json": { schema: z.unknown() },
      },
      required: true,
    },
  },
  responses: { 200: jsonResponse(ContextResult), ...errorResponses(400, 404, 409, 413, 415) },
});

const getRoute = createRoute({
  method: "get",
  path: "/contexts/{id}",
  summary: "Read a context",
  request: { params: IdParam, query: z.object({ consistency: ConsistencyQuery }) },
  responses: { 200: jsonResponse(ContextResult), ...errorResponses(400, 404) },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/contexts/{id}",
  summary: "Delete a context (its version is remembered)",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(z.object({ deleted: z.literal(true), version: z.number().int() })),
    ...errorResponses(400, 404),
  },
});

const syncRoute = createRoute({
  method: "get",
  path: "/contexts/{id}/sync",
  summary: "What a client at `version` needs: full_context, one merged delta, or no_change",
  request: {
    params: IdParam,
    query: z.object({
      version: VersionQuery.openapi({ description: "The client's version; none = full" }),
      format: z.string().optional().openapi({
        description: "chord (default), json-patch or merge-patch",
      }),
      consistency: ConsistencyQuery,
    }),
  },
  responses: {
    200: jsonOrProtobuf(SyncResult, "OK (protobuf: one ContextDelta)"),
    ...errorResponses(400, 404),
  },
});

const deltasRoute = createRoute({
  method: "get",
  path: "/contexts/{id}/deltas",
  summary: "The retained chord deltas after `since`",
  request: {
    params: IdParam,
    query: z.object({ since: VersionQuery, consistency: ConsistencyQuery }),
  },
  responses: {
    200: jsonOrProtobuf(
      z.object({
        id: z.string(),
        version: z.number().int(),
        deltas: z.array(z.object({
          from_version: z.number().int(),
          version: z.number().int(),
          delta: z.unknown(),
          at: z.number().int(),
        })),
      }),
      "OK (protobuf: one ContextDeltaList)",
    ),
    ...errorResponses(400, 404),
  },
});

const exportRoute = createRoute({
  method: "post",
  path: "/contexts/{id}/export",
  summary: "Save the context with the export provider (kv, http or the embedder's)",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(z.object({
      id: z.string(),
      version: z.number().int(),
      exported_at: z.number().int(),
      provider: z.string(),
    })),
    ...errorResponses(400, 404, 503),
  },
});

const restoreRoute = createRoute({
  method: "post",
  path: "/contexts/{id}/restore",
  summary: "Write the last exported snapshot back as a new version",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(ContextResult.extend({ restored_version: z.number().int() })),
    ...errorResponses(400, 404, 503),
  },
});

const PATCH_TYPES: Record<string, PatchType | undefined> = {
  "application/merge-patch+json": "merge-patch",
  "application/json-patch+json": "json-patch",
  "application/json": undefined,
};

/** The `/contexts` routes, mounted under `/api/v1`. */
export function contextRoutes(deps: ContextRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const { contexts } = deps;

  app.openapi(putRoute, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await contexts.set(id, c.req.valid("json").context), 200);
  });

  app.openapi(patchRoute, async (c) => {
    const { id } = c.req.valid("param");
    const mime = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (!(mime in PATCH_TYPES)) {
      throw new ChorusError(
        "unsupported_media_type",
        `Cannot patch "${id}" with "${mime}": send application/merge-patch+json or application/json-patch+json`,
      );
    }
    const body = c.req.valid("json");
    return c.json(await contexts.update(id, body, { type: PATCH_TYPES[mime] }), 200);
  });

  app.openapi(getRoute, async (c) => {
    const { id } = c.req.valid("param");
    const found = await contexts.get(id, c.req.valid("query"));
    if (!found) throw new ChorusError("not_found", `Cannot get context "${id}": no such context`);
    return c.json(found, 200);
  });

  app.openapi(deleteRoute, async (c) => {
    return c.json(await contexts.delete(c.req.valid("param").id), 200);
  });

  app.openapi(syncRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { version, format, consistency } = c.req.valid("query");
    const result = await contexts.sync(id, version, { format, consistency });
    return negotiate(c, result, 200, encodeContextDelta) as never;
  });

  app.openapi(deltasRoute, async (c) => {
    const { id } = c.req.valid("param");
    const list = await contexts.deltas(id, c.req.valid("query"));
    return negotiate(c, list, 200, encodeContextDeltaList) as never;
  });

  app.openapi(exportRoute, async (c) => {
    return c.json(await contexts.export(c.req.valid("param").id), 200);
  });

  app.openapi(restoreRoute, async (c) => {
    return c.json(await contexts.restore(c.req.valid("param").id), 200);
  });

  return app;
}
