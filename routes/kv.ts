/**
 * The kv routes: single keys with CAS and TTL, counters, bulk, list and watch (SSE).
 * Each handler validates, calls `KvApi`, and shapes the JSON.
 * See docs/http-api.md.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import type { Context } from "hono";
import type { StreamCaps } from "../auth/stream_caps.ts";
import { ChorusError } from "../errors.ts";
import type { KvApi } from "../actors/kv_api.ts";
import { MAX_BULK_ITEMS, MAX_LIST_LIMIT, MAX_TTL_SECONDS, validateKey } from "../actors/kv_api.ts";
import { principalOf, requirePrefix } from "../auth/middleware.ts";
import { jsonAnswer } from "../auth/security_headers.ts";
import { jsonText } from "../storage/codec.ts";
import {
  ConsistencyQuery,
  errorResponses,
  etag,
  jsonBody,
  jsonBodyOf,
  jsonResponse,
  parseIfMatch,
  validationHook,
} from "./_common.ts";

/** Dependencies of {@linkcode kvRoutes}. */
export interface KvRoutesDeps {
  kv: KvApi;
  /** Caps the SSE streams (with sockets) one client address holds open; absent: no cap. */
  streams?: StreamCaps;
  /** The client address of a request, for {@linkcode streams}. */
  addressOf?: (c: Context) => string;
}

const KeyParam = z.object({
  key: z.string().openapi({ param: { name: "key", in: "path" }, example: "user:42:session" }),
});
const Ttl = z.number().positive().max(MAX_TTL_SECONDS).openapi({
  description: "Seconds to live",
  example: 60,
});
const JsonValue = z.unknown().refine((v) => v !== undefined, "value is required").openapi({
  description: "Any JSON value",
});
const WriteResult = z.object({
  key: z.string(),
  version: z.number().int(),
  expires_at: z.number().int().optional().openapi({ description: "Expiry, ms since epoch" }),
}).openapi("KvWriteResult");
const ValueResult = z.object({
  key: z.string(),
  value: z.unknown(),
  version: z.number().int(),
  ttl: z.number().nullable().optional().openapi({ description: "Seconds left; with with_ttl" }),
}).openapi("KvValue");

const putRoute = createRoute({
  method: "put",
  path: "/kv/{key}",
  summary: "Write a value (CAS with If-Match, create-only with If-None-Match: *)",
  request: {
    params: KeyParam,
    headers: z.object({
      "if-match": z.string().optional(),
      "if-none-match": z.string().optional(),
    }),
    body: jsonBody(
      z.object({ value: JsonValue, ttl: Ttl.optional(), compress: z.boolean().optional() }),
    ),
  },
  responses: { 200: jsonResponse(WriteResult), ...errorResponses(400, 409, 413, 415) },
});

const getRoute = createRoute({
  method: "get",
  path: "/kv/{key}",
  summary: "Read a value",
  request: {
    params: KeyParam,
    query: z.object({
      consistency: ConsistencyQuery,
      with_ttl: z.enum(["true", "false"]).optional(),
    }),
  },
  responses: {
    200: jsonResponse(ValueResult),
    304: { description: "Not modified (If-None-Match)" },
    ...errorResponses(400, 404),
  },
});

const deleteRoute = createRoute({
  method: "delete",
  path: "/kv/{key}",
  summary: "Delete a key (honours If-Match)",
  request: { params: KeyParam, headers: z.object({ "if-match": z.string().optional() }) },
  responses: {
    200: jsonResponse(z.object({ deleted: z.literal(true) })),
    ...errorResponses(400, 404, 409),
  },
});

const touchRoute = createRoute({
  method: "post",
  path: "/kv/{key}/touch",
  summary: "Set a new TTL; the version is kept",
  request: { params: KeyParam, body: jsonBody(z.object({ ttl: Ttl })) },
  responses: { 200: jsonResponse(WriteResult), ...errorResponses(400, 404) },
});

const ttlRoute = createRoute({
  method: "get",
  path: "/kv/{key}/ttl",
  summary: "Seconds left to live (null: no expiry)",
  request: { params: KeyParam, query: z.object({ consistency: ConsistencyQuery }) },
  responses: {
    200: jsonResponse(z.object({ ttl: z.number().nullable() })),
    ...errorResponses(400, 404),
  },
});

const incrRoute = createRoute({
  method: "post",
  path: "/kv/{key}/incr",
  summary: "Add to an integer atomically; ttl applies when the key is created",
  request: {
    params: KeyParam,
    body: {
      content: {
        "application/json": {
          schema: z.object({ by: z.number().int().optional(), ttl: Ttl.optional() }),
        },
      },
    },
  },
  responses: {
    200: jsonResponse(
      z.object({ key: z.string(), value: z.number().int(), version: z.number().int() }),
    ),
    ...errorResponses(400, 409),
  },
});

const BulkKeys = z.array(z.string()).min(1).max(MAX_BULK_ITEMS);
const bulkPutRoute = createRoute({
  method: "post",
  path: "/kv/bulk",
  summary: "Write up to 500 items, all or nothing",
  request: {
    body: jsonBody(z.object({
      items: z.array(z.object({
        key: z.string(),
        value: JsonValue,
        ttl: Ttl.optional(),
        compress: z.boolean().optional(),
      })).min(1).max(MAX_BULK_ITEMS),
    })),
  },
  responses: {
    200: jsonResponse(z.object({ items: z.array(WriteResult) })),
    ...errorResponses(400, 413),
  },
});

const bulkGetRoute = createRoute({
  method: "post",
  path: "/kv/bulk/get",
  summary: "Read up to 500 keys",
  request: {
    query: z.object({ consistency: ConsistencyQuery }),
    body: jsonBody(z.object({ keys: BulkKeys })),
  },
  responses: {
    200: jsonResponse(z.object({
      items: z.array(z.object({
        key: z.string(),
        found: z.boolean(),
        value: z.unknown().optional(),
        version: z.number().int().optional(),
        ttl: z.number().nullable().optional(),
      })),
    })),
    ...errorResponses(400),
  },
});

const bulkDeleteRoute = createRoute({
  method: "post",
  path: "/kv/bulk/delete",
  summary: "Delete up to 500 keys, all or nothing; absent keys are skipped",
  request: { body: jsonBody(z.object({ keys: BulkKeys })) },
  responses: {
    200: jsonResponse(z.object({ deleted: z.number().int(), keys: z.array(z.string()) })),
    ...errorResponses(400),
  },
});

const bulkTouchRoute = createRoute({
  method: "post",
  path: "/kv/bulk/touch",
  summary: "Set TTLs on up to 500 keys, all or nothing; absent keys are skipped",
  request: {
    body: jsonBody(
      z.object({
        items: z.array(z.object({ key: z.string(), ttl: Ttl })).min(1).max(MAX_BULK_ITEMS),
      }),
    ),
  },
  responses: {
    200: jsonResponse(z.object({ touched: z.number().int(), items: z.array(WriteResult) })),
    ...errorResponses(400),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/kv",
  summary: "List keys by prefix, in key order",
  request: {
    query: z.object({
      prefix: z.string().optional(),
      limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).optional(),
      cursor: z.string().optional(),
      values: z.enum(["true", "false"]).optional(),
      consistency: ConsistencyQuery,
    }),
  },
  responses: {
    200: jsonResponse(z.object({
      items: z.array(z.object({
        key: z.string(),
        version: z.number().int(),
        ttl: z.number().nullable(),
        value: z.unknown().optional(),
      })),
      cursor: z.string().nullable(),
    })),
    ...errorResponses(400),
  },
});

const watchRoute = createRoute({
  method: "get",
  path: "/kv/{key}/watch",
  summary: "Server-Sent Events: one `change` event per write, delete or expiry",
  request: {
    params: KeyParam,
    query: z.object({
      since: z.coerce.number().int().min(0).optional(),
      ticket: z.string().optional().openapi({
        description: "A single-use ticket from `POST /api/v1/tickets`, instead of the " +
          "Authorization header (for a browser's EventSource)",
      }),
    }),
  },
  responses: {
    200: {
      description: "An event stream",
      content: { "text/event-stream": { schema: z.string() } },
    },
    ...errorResponses(400),
  },
});

/**
 * The prefix a list may use: a token limited to a prefix lists only inside it. A broader request
 * is narrowed to the token's prefix; a request elsewhere is refused.
 */
function listPrefix(limit: string | undefined, requested: string | undefined): string | undefined {
  if (limit === undefined) return requested;
  const asked = requested ?? "";
  if (asked.startsWith(limit)) return asked;
  if (limit.startsWith(asked)) return limit;
  throw new ChorusError(
    "forbidden",
    `Cannot list prefix "${asked}": this token is limited to "${limit}…"`,
  );
}

/** Events an SSE client may fall behind by before it is disconnected (it resumes by id). */
const MAX_SSE_BACKLOG = 10_000;

function noMatchAll(header: string | undefined): boolean {
  if (header === undefined) return false;
  if (header.trim() === "*") return true;
  throw new ChorusError(
    "invalid_request",
    `Cannot use If-None-Match ${JSON.stringify(header)} on a write: only * is supported`,
  );
}

/** The kv routes, mounted under `/api/v1`. */
export function kvRoutes(deps: KvRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const { kv } = deps;

  app.openapi(bulkPutRoute, async (c) => {
    const { items } = c.req.valid("json");
    requirePrefix(principalOf(c), items.map((i) => i.key));
    return c.json(await kv.putMany(items), 200);
  });
  app.openapi(bulkGetRoute, async (c) => {
    const { keys } = c.req.valid("json");
    requirePrefix(principalOf(c), keys);
    const { consistency } = c.req.valid("query");
    return c.json(await kv.getMany(keys, { consistency }), 200);
  });
  app.openapi(bulkDeleteRoute, async (c) => {
    const { keys } = c.req.valid("json");
    requirePrefix(principalOf(c), keys);
    return c.json(await kv.deleteMany(keys), 200);
  });
  app.openapi(bulkTouchRoute, async (c) => {
    const { items } = c.req.valid("json");
    requirePrefix(principalOf(c), items.map((i) => i.key));
    return c.json(await kv.touchMany(items), 200);
  });

  // The hottest routes: declared for the OpenAPI document like every other, but validated here
  // with the same schemas synchronously, which costs a fraction of the validator middleware.
  app.openAPIRegistry.registerPath(putRoute);
  const putBody = putRoute.request.body.content["application/json"].schema;
  app.put("/kv/:key", async (c) => {
    const key = validateKey(c.req.param("key"));
    const parsed = putBody.safeParse(await jsonBodyOf(c));
    if (!parsed.success) validationHook({ ...parsed, target: "json" } as never, c as never);
    const body = parsed.data!;
    const ifMatch = parseIfMatch(c.req.header("if-match"));
    const result = await kv.put(key, body.value, {
      handOver: true, // parsed from this request's body: nothing else holds it
      ttl: body.ttl,
      compress: body.compress,
      ifMatch: typeof ifMatch === "number" ? ifMatch : undefined,
      ifExists: ifMatch === "*",
      ifNoneMatch: noMatchAll(c.req.header("if-none-match")),
    });
    return jsonAnswer(JSON.stringify(result), { etag: etag(result.version) });
  });

  app.openAPIRegistry.registerPath(getRoute);
  const getQuery = getRoute.request.query;
  // A read parses a query only when the URL has one. Both routes make their answer once, with
  // every header it carries, rather than through Hono's context and the headers set afterwards.
  app.get("/kv/:key", async (c) => {
    let query: z.infer<typeof getQuery> = {};
    if (c.req.url.includes("?")) {
      const parsed = getQuery.safeParse(c.req.query());
      if (!parsed.success) validationHook({ ...parsed, target: "query" } as never, c as never);
      query = parsed.data!;
    }
    const key = validateKey(c.req.param("key"));
    const found = await kv.get(key, { consistency: query.consistency });
    if (!found) throw new ChorusError("not_found", `Cannot get "${key}": no such key`);
    const inm = c.req.header("if-none-match");
    if (inm && inm.split(",").some((t) => parseIfMatch(t) === found.version)) {
      return c.body(null, 304, { ETag: etag(found.version) });
    }
    // What JSON.stringify({key, value, version[, ttl]}) gives, with the value's text kept
    // per version (jsonText): a hot key's value is not stringified on every read.
    const value = found.value === undefined ? "" : `,"value":${jsonText(found.value)}`;
    const ttl = query.with_ttl === "true" ? `,"ttl":${JSON.stringify(found.ttl)}` : "";
    const body = `{"key":${JSON.stringify(key)}${value},"version":${found.version}${ttl}}`;
    return jsonAnswer(body, { etag: etag(found.version) });
  });

  app.openapi(deleteRoute, async (c) => {
    const key = validateKey(c.req.valid("param").key);
    const ifMatch = parseIfMatch(c.req.valid("header")["if-match"]);
    return c.json(
      await kv.delete(key, { ifMatch: typeof ifMatch === "number" ? ifMatch : undefined }),
      200,
    );
  });

  app.openapi(touchRoute, async (c) => {
    const key = validateKey(c.req.valid("param").key);
    return c.json(await kv.touch(key, c.req.valid("json").ttl), 200);
  });

  app.openapi(ttlRoute, async (c) => {
    const key = validateKey(c.req.valid("param").key);
    return c.json({ ttl: await kv.ttl(key, c.req.valid("query")) }, 200);
  });

  app.openapi(incrRoute, async (c) => {
    const key = validateKey(c.req.valid("param").key);
    const body = c.req.valid("json") ?? {};
    return c.json(await kv.incr(key, { by: body.by, ttl: body.ttl }), 200);
  });

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await kv.list({
      prefix: listPrefix(principalOf(c).prefix, q.prefix),
      limit: q.limit,
      cursor: q.cursor,
      values: q.values === "true",
      consistency: q.consistency,
    });
    return c.json(page, 200);
  });

  app.openapi(watchRoute, async (c) => {
    const key = validateKey(c.req.valid("param").key);
    const lastId = c.req.header("last-event-id");
    const since = c.req.valid("query").since ??
      (lastId && /^\d+$/.test(lastId) ? Number(lastId) : undefined);
    const release = deps.streams?.acquire(deps.addressOf?.(c) ?? "unknown") ?? (() => {});
    // Subscribe before answering, so a bad key or an unreachable KV is an ordinary error.
    const queue: { id: string; data: string }[] = [];
    let wake: (() => void) | undefined;
    let overflow = false;
    const unsubscribe = await kv.watch(key, (change) => {
      // A client that reads slower than the key changes is let go once far behind: its
      // EventSource reconnects with Last-Event-ID and replays from the change log.
      if (queue.length >= MAX_SSE_BACKLOG) overflow = true;
      else queue.push({ id: String(change.version), data: JSON.stringify(change) });
      wake?.();
    }, { since }).catch((e) => {
      release();
      throw e;
    });
    return streamSSE(c, async (stream) => {
      let open = true;
      const close = () => {
        open = false;
        wake?.();
      };
      stream.onAbort(close);
      // The request's signal fires as soon as the client goes away, so its place (see
      // `streams`) is given back at once rather than at the next keep-alive write.
      c.req.raw.signal.addEventListener("abort", close, { once: true });
      await stream.writeSSE({ event: "ready", data: JSON.stringify({ key }) });
      while (open && !overflow) {
        while (queue.length && !overflow) {
          const { id, data } = queue.shift()!;
          await stream.writeSSE({ event: "change", data, id });
        }
        if (overflow) break;
        const timer = setTimeout(() => wake?.(), 15_000);
        await new Promise<void>((resolve) => wake = resolve);
        clearTimeout(timer);
        wake = undefined;
        if (open && !queue.length && !overflow) await stream.write(": keep-alive\n\n");
      }
      unsubscribe();
      release();
    });
  });

  return app;
}
