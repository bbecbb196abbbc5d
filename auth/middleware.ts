/**
 * Authentication and authorization for `/api/v1`: reads `Authorization: Bearer`, resolves the
 * principal, checks the scope the route needs and, for tokens limited to a prefix, the key or id
 * in the path. Route handlers that take several keys (bulk, list) check the rest with
 * {@linkcode requirePrefix}.
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { ChorusError } from "../errors.ts";
import { hasScope, type Principal, type Scope, type TokenStore } from "./tokens.ts";
import type { AuthFailureGuard } from "./rate_limit.ts";

/** What a request needs: a scope (or just a valid token) and the resource id in its path. */
export interface Requirement {
  /** The scope required; undefined = any valid token. */
  scope?: Scope;
  /** The key or id named in the path, checked against a token's prefix. */
  resource?: string;
}

const ANONYMOUS: Principal = {
  id: "anonymous",
  scopes: new Set(["admin"]),
  userId: "anonymous",
};

/** Principals by request context (the context outlives a replaced `c.req.raw`). */
const principals = new WeakMap<Context, Principal>();

/** The principal of a request (anonymous with every scope when auth is off). */
export function principalOf(c: Context): Principal {
  return principals.get(c) ?? ANONYMOUS;
}

/**
 * The user a principal acts for when it names `requested` (or nobody): with auth on, its own
 * user (`Principal.userId`) when `requested` is absent or the same, another only with the
 * `users:impersonate` scope. With auth off (the anonymous principal) anyone, as named.
 * @throws {ChorusError} `forbidden`
 */
export function actingUser(
  principal: Principal,
  requested: string | undefined,
): string | undefined {
  if (principal === ANONYMOUS) return requested;
  if (requested === undefined || requested === principal.userId) return principal.userId;
  if (hasScope(principal, "users:impersonate")) return requested;
  throw new ChorusError(
    "forbidden",
    `Cannot act for user "${requested.slice(0, 128)}": this token acts for "${principal.userId}" ` +
      `and lacks the "users:impersonate" scope`,
  );
}

/**
 * Refuses ids outside the principal's prefix.
 * @throws {ChorusError} `forbidden`
 */
export function requirePrefix(principal: Principal, ids: Iterable<string>, what = "key"): void {
  const prefix = principal.prefix;
  if (prefix === undefined) return;
  for (const id of ids) {
    if (!id.startsWith(prefix)) {
      throw new ChorusError(
        "forbidden",
        `Cannot use ${what} "${id}": this token is limited to "${prefix}…"`,
      );
    }
  }
}

/**
 * Maps a request to what it requires, from the route that matched it (`route`, Hono's pattern
 * below `/api/v1`, e.g. `/kv/:key/incr`) rather than from a second reading of the path: `POST
 * /kv/bulk/incr` is the incr route of the key `bulk`, and is checked as such. The resource is the
 * path segment standing where the pattern has `:key` or `:id`. null = open (the OpenAPI document).
 * @param path the request's path below `/api/v1`, still percent-encoded
 */
export function requirementOf(method: string, route: string, path: string): Requirement | null {
  const pattern = route.split("/");
  const root = pattern[1];
  const reads = method === "GET" || method === "HEAD";
  const at = pattern.findIndex((p) => p === ":key" || p === ":id");
  const resource = at < 0 ? undefined : segment(path.split("/")[at]);
  switch (root) {
    case "health": // GET /api/v1/health: open, like GET /health
    case "openapi.json":
      return null;
    case "kv":
      return { scope: reads || route === "/kv/bulk/get" ? "kv:read" : "kv:write", resource };
    case "contexts":
      return { scope: reads ? "contexts:read" : "contexts:write", resource };
    case "reels":
    case "users":
      return { scope: reads ? "reels:read" : "reels:write", resource };
    case "tokens":
    case "admin":
      return { scope: "admin" };
    default:
      return {};
  }
}

function segment(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ChorusError("invalid_request", `Cannot read the path segment "${raw}"`);
  }
}

/** Options of {@linkcode authMiddleware}. */
export interface AuthOptions {
  /** Whether tokens are required (`CHORUS_AUTH`). */
  enabled: boolean;
  tokens: TokenStore;
  /**
   * The brute-force guard: each 401 counts against the client address, and an address with no
   * failures left gets 429 before its token is checked.
   */
  failures?: AuthFailureGuard | null;
  /** The client address of a request (for {@linkcode AuthOptions.failures}). */
  addressOf?: (c: Context) => string;
}

/** Extracts the bearer secret; a malformed `Authorization` header is a 401. */
export function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  if (!m) {
    throw new ChorusError(
      "unauthorized",
      "Cannot authenticate: the Authorization header must be `Bearer <token>`",
      { headers: { "WWW-Authenticate": 'Bearer realm="chorus"' } },
    );
  }
  return m[1];
}

/** Resolves a secret to a principal or throws 401. */
export async function authenticate(tokens: TokenStore, secret: string | undefined) {
  const challenge = { "WWW-Authenticate": 'Bearer realm="chorus"' };
  if (secret === undefined) {
    throw new ChorusError("unauthorized", "Cannot authenticate: a bearer token is required", {
      headers: challenge,
    });
  }
  const principal = await tokens.verify(secret);
  if (!principal) {
    throw new ChorusError(
      "unauthorized",
      "Cannot authenticate: the token is unknown, revoked or expired",
      { headers: { "WWW-Authenticate": 'Bearer realm="chorus", error="invalid_token"' } },
    );
  }
  return principal;
}

/** Routes that take `?ticket=` instead of a bearer header (a browser's `EventSource`). */
const TICKET_ROUTES = new Set(["/api/v1/kv/:key/watch"]);

/**
 * Redeems a stream ticket (`POST /api/v1/tickets`) or throws 401, as for a bad token.
 * @throws {ChorusError} `unauthorized`
 */
export async function redeemTicket(tokens: TokenStore, ticket: string): Promise<Principal> {
  const principal = await tokens.tickets.redeem(ticket);
  if (!principal) {
    throw new ChorusError(
      "unauthorized",
      "Cannot authenticate: the ticket is unknown, used or expired, or its token was revoked",
      { headers: { "WWW-Authenticate": 'Bearer realm="chorus", error="invalid_token"' } },
    );
  }
  return principal;
}

/** Checks a principal against a requirement. @throws {ChorusError} `forbidden` */
export function authorize(principal: Principal, need: Requirement): void {
  if (need.scope && !hasScope(principal, need.scope)) {
    throw new ChorusError("forbidden", `Cannot do this: the token lacks the "${need.scope}" scope`);
  }
  if (need.resource !== undefined) requirePrefix(principal, [need.resource]);
}

/** The middleware for `/api/v1/*`. */
export function authMiddleware(options: AuthOptions): MiddlewareHandler {
  return async (c, next) => {
    if (!options.enabled) return await next();
    // The route that will answer: the last one matched (middleware patterns end in `*`).
    const route = routePath(c, -1);
    const below = (text: string) => text.replace(/^\/api\/v1/, "");
    const need = route.endsWith("*")
      ? {} // no such route: a valid token, then 404
      : requirementOf(c.req.method, below(route), below(c.req.path));
    if (need === null) return await next();
    const failures = options.failures;
    const address = failures ? options.addressOf?.(c) ?? "unknown" : "";
    failures?.check(address);
    let principal: Principal;
    try {
      const header = c.req.header("authorization");
      const ticket = header === undefined && TICKET_ROUTES.has(route) && c.req.method === "GET"
        ? c.req.query("ticket")
        : undefined;
      principal = ticket !== undefined
        ? await redeemTicket(options.tokens, ticket)
        : await authenticate(options.tokens, bearerOf(header));
    } catch (e) {
      if (e instanceof ChorusError && e.code === "unauthorized") failures?.fail(address);
      throw e;
    }
    authorize(principal, need);
    principals.set(c, principal);
    await next();
  };
}
