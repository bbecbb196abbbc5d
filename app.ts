/**
 * Builds the Hono app: middleware order, the routes of every product under `/api/v1`, the OpenAPI
 * document and Swagger UI, and the one place where errors become HTTP responses.
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { describeApi } from "./web/openapi.ts";
import { webRoutes } from "./web/routes.ts";
import { HTTPException } from "hono/http-exception";
import type { Context } from "hono";
import { ChorusError, type ErrorCode, toErrorBody } from "./errors.ts";
import { log } from "./log.ts";
import type { ResolvedConfig } from "./config.ts";
import type { KvApi } from "./actors/kv_api.ts";
import type { ContextsApi } from "./actors/context_api.ts";
import type { Store } from "./storage/store.ts";
import { kvRoutes } from "./routes/kv.ts";
import { contextRoutes } from "./routes/contexts.ts";
import { adminRoutes } from "./routes/admin.ts";
import { healthRoutes, systemRoutes } from "./routes/system.ts";
import { reelRoutes } from "./routes/reels.ts";
import { userRoutes } from "./routes/users.ts";
import type { ReelsApi } from "./actors/reel_api.ts";
import type { UsersApi } from "./actors/user_api.ts";
import type { Registry } from "./actors/registry.ts";
import type { Members } from "./storage/members.ts";
import { socketRoutes } from "./routes/socket.ts";
import type { RealtimeServer } from "./realtime/server.ts";
import { clientAddress, isJsonMediaType, readJsonBody, validationHook } from "./routes/_common.ts";
import { RememberingRouter } from "./routes/_router.ts";
import { cors } from "hono/cors";
import { isCompleteAnswer, setSecurityHeaders } from "./auth/security_headers.ts";
import { requestIdOf } from "./observability/request_id.ts";
import type { TokenStore } from "./auth/tokens.ts";
import { timingSafeEqual } from "./auth/tokens.ts";
import { authMiddleware, bearerOf, principalOf } from "./auth/middleware.ts";
import {
  createLimits,
  type Limits,
  noteAddress,
  rateKey,
  rateLimitMiddleware,
} from "./auth/rate_limit.ts";
import { tokenRoutes } from "./routes/tokens.ts";
import { ticketRoutes } from "./routes/tickets.ts";
import { backupRoutes, MAX_RESTORE_BYTES, RESTORE_TIMEOUT_MS } from "./routes/backup.ts";
import { bodyFailureOf, guardBody, hasBody } from "./auth/body_guard.ts";
import type { StreamCaps } from "./auth/stream_caps.ts";
import { type Metrics, routeLabel } from "./observability/metrics.ts";
import type { systemFigures } from "./observability/system_stats.ts";
import type { MiddlewareHandler } from "hono";
import { Deadlines } from "./deadlines.ts";
import type { Clock } from "./clock.ts";

/** What the routes need. */
export interface AppDeps {
  config: ResolvedConfig;
  store: Store;
  kv: KvApi;
  /** The contexts product; absent: no `/contexts` or `/admin/cleanup` routes. */
  contexts?: ContextsApi;
  /** The WebSocket endpoint (`GET /socket/websocket`); absent: no socket route. */
  realtime?: RealtimeServer;
  /** The reels product; absent (or without `users`): no `/reels` routes. */
  reels?: ReelsApi;
  /** The users product; absent: no `/users` routes. */
  users?: UsersApi;
  /** Live actors, for `/system/*` and `/status`. */
  registry?: Registry;
  /** Membership, for `/status`. */
  members?: Members;
  /** `sqlite`, `memory`, `kv-connect`, `deno-deploy` or `handle`, for `/status`. */
  kvBackend?: string;
  /** API tokens; required (with auth on) for `/api/v1` and the token routes. */
  tokens?: TokenStore;
  /** Metrics for `GET /metrics` and the HTTP duration histogram. */
  metrics?: Metrics;
  /** Live figures shared by `/api/v1/system/stats` and the socket's `system` topic. */
  figures?: ReturnType<typeof systemFigures>;
  instanceId: string;
  startedAt: number;
  now: () => number;
  /** Timers (the write deadline); default the system clock. */
  clock?: Clock;
  /**
   * The rate limiters, shared with the socket (`Chorus` passes the instance's); absent: built
   * from the config.
   */
  limits?: Limits;
  /** Caps the SSE streams (with sockets) one client address holds open; absent: no cap. */
  streams?: StreamCaps;
}

const HTTP_CODES: Record<number, ErrorCode> = {
  400: "invalid_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  429: "rate_limited",
  503: "unavailable",
  504: "timeout",
};

/**
 * What every response gets, in one middleware (each layer costs on the hot path): security
 * headers, the echoed `X-Request-Id`, and the request's duration in the metrics.
 */
export function edgeMiddleware(metrics?: Metrics): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const id = requestIdOf(c.req.header("x-request-id"));
    await next();
    const res = c.res;
    if (!isCompleteAnswer(res)) setSecurityHeaders(res.headers);
    if (id) res.headers.set("X-Request-Id", id);
    metrics?.observe(
      c.req.method,
      routeLabel(c.req.routePath),
      res.status,
      (performance.now() - started) / 1000,
    );
  };
}

/** Whether an error is the connection of a client that went away (a body read cut off). */
function clientGone(e: unknown): boolean {
  return e instanceof Deno.errors.BadResource || e instanceof Deno.errors.Interrupted ||
    e instanceof Deno.errors.ConnectionReset || e instanceof Deno.errors.BrokenPipe ||
    e instanceof Deno.errors.UnexpectedEof;
}

/** Maps anything thrown to the error response; unknown errors are logged, never sent. */
export function errorResponse(error: unknown, c: Context): Response {
  // A body cut off (too large, too slow) may surface as a parse error: report the real cause.
  let e = bodyFailureOf(c) ?? error;
  if (e instanceof HTTPException) {
    const code = HTTP_CODES[e.status] ?? "invalid_request";
    const message = e.status === 400 && /json/i.test(e.message)
      ? "Cannot parse the request body: malformed JSON"
      : e.status === 415
      ? "Cannot accept the request body: send Content-Type: application/json"
      : e.message || code;
    e = new ChorusError(code, message);
  } else if (e instanceof SyntaxError) {
    e = new ChorusError("invalid_request", "Cannot parse the request body: malformed JSON");
  }
  if (!(e instanceof ChorusError)) {
    if (c.req.raw.signal.aborted || clientGone(e)) {
      // The client went away mid-request (e.g. while sending its body): not a server fault, and
      // nobody reads the answer. 499 is the usual "client closed request" status in logs.
      log.debug("client closed the request", { method: c.req.method, path: c.req.path });
      return new Response(null, { status: 499 });
    }
    log.error("unhandled error", { error: e, method: c.req.method, path: c.req.path });
  }
  const { status, body } = toErrorBody(e);
  const headers: Record<string, string> = { ...(e instanceof ChorusError ? e.headers : {}) };
  // KV unreachable or not ready: tell clients when to try again.
  if (status === 503) headers["Retry-After"] ??= "1";
  return c.json(body, status as 400, headers);
}

/** Creates the app for the given dependencies. */
export function createApp(deps: AppDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook, router: new RememberingRouter() });
  app.use("*", edgeMiddleware(deps.metrics));
  if (deps.config.corsOrigins.length) {
    app.use(
      "*",
      cors({
        origin: deps.config.corsOrigins,
        credentials: false,
        allowMethods: ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"],
        allowHeaders: [
          "Authorization",
          "Content-Type",
          "Accept",
          "If-Match",
          "If-None-Match",
          "Last-Event-ID",
          "X-Request-Id",
        ],
        exposeHeaders: [
          "ETag",
          "Retry-After",
          "RateLimit-Limit",
          "RateLimit-Remaining",
          "RateLimit-Reset",
          "X-Request-Id",
        ],
        maxAge: 600,
      }),
    );
  }
  // One request budget per token (or address) for HTTP and the socket; with auth on, failed
  // authentications are limited per address before any token is checked.
  const limits = deps.limits ?? createLimits(deps.config, { now: deps.now }, deps.store);
  if (deps.realtime) {
    // The socket's upgrade sees only the request: note its client address for the limits.
    app.use("/socket/*", async (c, next) => {
      noteAddress(c.req.raw, clientAddress(c));
      await next();
    });
  }
  // With auth off nothing is checked here: the middleware is left out rather than run to do nothing.
  if (deps.tokens && deps.config.auth) {
    app.use(
      "/api/v1/*",
      authMiddleware({
        enabled: deps.config.auth,
        tokens: deps.tokens,
        failures: deps.config.auth ? limits.failures : null,
        addressOf: clientAddress,
      }),
    );
  }
  if (limits.requests) {
    app.use(
      "/api/v1/*",
      rateLimitMiddleware(limits.requests, (c) => rateKey(principalOf(c).id, clientAddress(c))),
    );
  }
  // Bodies are looked at only now, after authentication and rate limiting: a refused request
  // never has a byte of its body read. Writes get a deadline: past it the client gets 504
  // `timeout` (the write may still land; its version tells) and an unfinished body is cancelled.
  // Reads are served from memory or one KV read and are not timed.
  const expired = (ms: number) => () =>
    new ChorusError("timeout", `Cannot finish the request: no answer within ${ms} ms`);
  const ms = deps.config.requestTimeoutMs;
  const deadlines = new Deadlines(ms, expired(ms), { clock: deps.clock });
  const restoreDeadlines = new Deadlines(RESTORE_TIMEOUT_MS, expired(RESTORE_TIMEOUT_MS), {
    clock: deps.clock,
  });
  // Only the methods that carry a body go through this (reads are the hot path).
  app.on(["POST", "PUT", "PATCH"], "/api/*", async (c, next) => {
    const withBody = hasBody(c);
    const mime = withBody
      ? (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase()
      : "";
    const restore = c.req.path === "/api/v1/admin/restore";
    if (restore) {
      // A backup file: gzip bytes, bounded by its own limits rather than CHORUS_MAX_BODY.
      if (withBody && mime !== "application/gzip" && mime !== "application/octet-stream") {
        throw new ChorusError(
          "unsupported_media_type",
          `Cannot accept a backup of type "${mime || "(none)"}": send application/gzip`,
        );
      }
    } else if (withBody) {
      // Bodies must be JSON (or protobuf where a route takes it): 415 before parsing.
      const allowed = mime === "application/json" || mime.endsWith("+json") ||
        mime === "application/x-protobuf";
      if (!allowed) {
        throw new ChorusError(
          "unsupported_media_type",
          `Cannot accept a body of type "${mime || "(none)"}": send application/json`,
        );
      }
    }
    const cancelBody = guardBody(c, restore ? MAX_RESTORE_BYTES : deps.config.maxBody);
    // (A request built in process may carry a body without either header.) A backup is never
    // JSON, whatever an empty request's content type says: the restore route reads its bytes.
    const json = !restore && (withBody || c.req.raw.body !== null) &&
      isJsonMediaType(withBody ? mime : (c.req.header("content-type") ?? "").split(";")[0].trim());
    try {
      return await (restore ? restoreDeadlines : deadlines).run(async () => {
        // JSON is read here, once, for every route (strict UTF-8, cached for the validators).
        if (json) await readJsonBody(c);
        return await next();
      });
    } catch (e) {
      if (e instanceof ChorusError && e.code === "timeout") cancelBody(e);
      throw e;
    }
  });

  if (deps.metrics) {
    const metrics = deps.metrics;
    app.get("/metrics", async (c) => {
      const token = deps.config.metricsToken;
      if (token !== undefined) {
        let given = "";
        try {
          given = bearerOf(c.req.header("authorization")) ?? "";
        } catch {
          // a malformed header is just not the token
        }
        if (!timingSafeEqual(given, token)) {
          throw new ChorusError(
            "unauthorized",
            "Cannot read metrics: a valid bearer token is required",
          );
        }
      }
      return c.body(await metrics.render(), 200, { "Content-Type": metrics.contentType });
    });
  }

  app.route("/", healthRoutes(deps));
  if (deps.realtime) app.route("/", socketRoutes({ realtime: deps.realtime }));
  app.route("/api/v1", kvRoutes({ kv: deps.kv, streams: deps.streams, addressOf: clientAddress }));
  if (deps.tokens) {
    app.route("/api/v1", tokenRoutes({ tokens: deps.tokens, now: deps.now }));
    app.route("/api/v1", ticketRoutes({ tokens: deps.tokens }));
  }
  app.route("/api/v1", backupRoutes({ store: deps.store, instanceId: deps.instanceId }));
  if (deps.contexts) {
    app.route("/api/v1", contextRoutes({ contexts: deps.contexts }));
    app.route("/api/v1", adminRoutes({ contexts: deps.contexts }));
  }
  if (deps.reels && deps.users) {
    app.route("/api/v1", reelRoutes({ reels: deps.reels, users: deps.users }));
  }
  if (deps.users) app.route("/api/v1", userRoutes({ users: deps.users }));
  app.route("/api/v1", systemRoutes(deps));

  // The document is built once, on first request, and completed with what the middleware
  // decides (security, middleware errors, tags, operation ids, servers): web/openapi.ts.
  let document: unknown;
  app.get("/api/v1/openapi.json", (c) => {
    document ??= describeApi(app.getOpenAPI31Document({
      openapi: "3.1.0",
      info: {
        title: "Chorus",
        version: "1.0.0",
        description: "Contexts, kv and reels on Deno KV, with real-time sync. The socket " +
          "(Phoenix Channels v2 at `/socket/websocket`) is described in [socket.md](/api/docs/socket.md).",
      },
    }));
    return c.json(document as Record<string, unknown>, 200);
  });
  // Swagger UI and the console at `/`, from embedded assets (web/).
  app.route("/", webRoutes());

  app.notFound((c) =>
    errorResponse(
      new ChorusError("not_found", `Cannot ${c.req.method} "${c.req.path}": no such route`),
      c,
    )
  );
  app.onError(errorResponse);
  return app;
}
