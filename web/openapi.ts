/**
 * Completes the generated OpenAPI document with what the middleware decides rather than the
 * routes: the bearer security scheme and `security` per operation (from the same
 * {@linkcode requirementOf} the auth middleware uses, so the two cannot disagree), the error
 * statuses the middleware answers (401/403 auth, 429 rate limits, 413/415 bodies, 504 write
 * deadline), a tag per product and an `operationId` on every operation, and `servers`.
 * @module
 */
import { requirementOf } from "../auth/middleware.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];

const TAGS: { name: string; description: string }[] = [
  { name: "kv", description: "Key-value store: CAS, TTL, bulk, list, SSE watch" },
  { name: "contexts", description: "Versioned JSON contexts kept in sync with deltas" },
  { name: "reels", description: "Reels: live updates, interactions, comments, viewers" },
  { name: "users", description: "User presence and feeds" },
  { name: "system", description: "Health, readiness, figures and status" },
  { name: "tokens", description: "API tokens and stream tickets" },
  { name: "admin", description: "Cleanup, backup and restore (scope admin)" },
];

/** The product tag of a path. */
export function tagOf(path: string): string {
  const below = path.startsWith("/api/v1/") ? path.slice("/api/v1".length) : null;
  if (below === null) return "system";
  const root = below.split("/")[1];
  switch (root) {
    case "kv":
    case "contexts":
    case "reels":
    case "users":
    case "admin":
    case "tokens":
      return root;
    case "tickets":
      return "tokens";
    default:
      return "system";
  }
}

/** A stable operation id from the method and the path: `get /kv/{key}/ttl` → `getKvByKeyTtl`. */
export function operationIdOf(method: string, path: string): string {
  const words = path.replace(/^\/api\/v1/, "").split(/[/._-]+/).filter(Boolean).map((w) => {
    const param = /^\{(.+)\}$/.exec(w);
    const word = param ? `by_${param[1]}` : w;
    return word.split("_").map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
  });
  return method + words.join("");
}

const errorRef = (description: string) => ({
  description,
  content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
});

const ERRORS: Record<number, string> = {
  401: "No token, a malformed Authorization header, or an unknown, revoked or expired token",
  403: "The token lacks the scope, or the id is outside its prefix",
  413: "The body is over CHORUS_MAX_BODY, or a value is over what may be stored",
  415: "The body is not JSON (or protobuf where accepted)",
  429: "Over the rate limit, or too many failed authentications (Retry-After)",
  504: "The write was not answered within CHORUS_REQUEST_TIMEOUT; it may still land",
};

/** Completes `doc` in place (see the module doc) and returns it. */
export function describeApi(doc: Json): Json {
  doc.servers = [{ url: "/", description: "This server" }];
  doc.tags = TAGS;
  doc.components ??= {};
  doc.components.securitySchemes = {
    bearer: {
      type: "http",
      scheme: "bearer",
      description: "An API token `sk_chorus_…` (with CHORUS_AUTH on). Create tokens with " +
        "`POST /api/v1/tokens` (scope admin).",
    },
  };
  const used = new Set<string>();
  for (const [path, item] of Object.entries<Json>(doc.paths ?? {})) {
    const api = path.startsWith("/api/v1/") || path === "/api/v1";
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      if (!op.operationId) {
        const id = operationIdOf(method, path);
        // `/health` and `/api/v1/health` would share one: the API's gets `Api` in its id.
        op.operationId = used.has(id)
          ? operationIdOf(method, path.replace(/^\/api\/v1/, "/api"))
          : id;
      }
      used.add(op.operationId);
      op.tags = [tagOf(path)];
      const route = path.replace(/\{([^}]+)\}/g, ":$1").replace(/^\/api\/v1/, "");
      const need = api ? requirementOf(method.toUpperCase(), route, route) : null;
      const responses = op.responses ??= {};
      const add = (status: number) => responses[status] ??= errorRef(ERRORS[status]);
      if (need === null) {
        op.security = [];
      } else {
        op.security = [{ bearer: [] }];
        add(401);
        if (need.scope !== undefined || need.resource !== undefined) add(403);
      }
      if (!api) continue;
      add(429);
      if (method === "post" || method === "put" || method === "patch") {
        add(413);
        add(415);
        add(504);
      }
    }
  }
  return doc;
}
