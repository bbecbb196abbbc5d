/**
 * Socket authentication: the token comes from the `token` connect param or, with phoenix ≥ 1.8's
 * `authToken`, from the `Sec-WebSocket-Protocol` offer `base64url.bearer.phx.<base64 token>`; or
 * a single-use `ticket` param from `POST /api/v1/tickets` stands for the token.
 * Each join and push is then checked against the token's scopes and prefix, per topic, and counts
 * against the token's rate limit (the same budget as its HTTP requests). A refused connect counts
 * as a failed authentication of the client address.
 * @module
 */
import type { Authenticated } from "../realtime/server.ts";
import type { Requirement } from "./middleware.ts";
import { actingUser, authorize } from "./middleware.ts";
import type { TokenStore } from "./tokens.ts";
import { ChorusError } from "../errors.ts";
import { addressOf, type Limits, rateKey, socketRateLimit } from "./rate_limit.ts";

const PROTOCOL_PREFIX = "base64url.bearer.phx.";

/** The token a socket offered, from params or the subprotocol header. */
export function socketToken(
  params: Record<string, string>,
  request?: Request,
): string | undefined {
  if (params.token) return params.token;
  const offered = request?.headers.get("sec-websocket-protocol") ?? "";
  for (const part of offered.split(",").map((s) => s.trim())) {
    if (!part.startsWith(PROTOCOL_PREFIX)) continue;
    const b64 = part.slice(PROTOCOL_PREFIX.length).replaceAll("-", "+").replaceAll("_", "/");
    try {
      return atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** What reading (`write` false) or writing a topic requires. */
export function topicRequirement(topic: string, write: boolean): Requirement {
  const at = topic.indexOf(":");
  const prefix = at < 0 ? topic : topic.slice(0, at);
  const name = at < 0 ? undefined : topic.slice(at + 1);
  switch (prefix) {
    case "kv":
      return { scope: write ? "kv:write" : "kv:read", resource: name };
    case "context":
      return { scope: write ? "contexts:write" : "contexts:read", resource: name };
    case "reel":
    case "user":
      return { scope: write ? "reels:write" : "reels:read", resource: name };
    default:
      return {};
  }
}

/**
 * Builds the realtime server's `authenticate`: with auth off, everyone (keyed by `user_id`);
 * with auth on, a valid token or ticket is required (401 `unauthorized` otherwise, as over HTTP)
 * and sets the presence user. With
 * `limits`, joins and pushes take from the request limiter (per token, or per client address
 * with auth off), and refused connects count as failed authentications of the address: one with
 * none left is refused with 429 before its token is checked.
 * @throws {ChorusError} `rate_limited` for an address with no failed authentications left,
 *   `unauthorized` for a missing or bad token or ticket
 */
export function socketAuthenticator(
  tokens: TokenStore,
  enabled: boolean,
  limits: Limits = { requests: null, failures: null },
) {
  return async (params: Record<string, string>, request?: Request) => {
    const address = addressOf(request);
    const limitOf = (principalId: string | null) =>
      limits.requests ? socketRateLimit(limits.requests, rateKey(principalId, address)) : undefined;
    if (!enabled) {
      return { userId: params.user_id || null, limit: limitOf(null) } satisfies Authenticated;
    }
    limits.failures?.check(address);
    // A ticket (`POST /api/v1/tickets`) is redeemed once; the socket then stays valid while the
    // token it came from does. Otherwise the token itself, checked again on revalidation.
    const ticket = params.ticket;
    const secret = ticket ? "" : socketToken(params, request) ?? "";
    const principal = ticket
      ? await tokens.tickets.redeem(ticket)
      : secret
      ? await tokens.verify(secret)
      : null;
    if (!principal) {
      limits.failures?.fail(address);
      // The same status and code as HTTP's (401 `unauthorized`).
      throw new ChorusError(
        "unauthorized",
        ticket
          ? "Cannot open a socket: the ticket is unknown, used or expired, or its token was revoked"
          : secret
          ? "Cannot open a socket: the token is unknown, revoked or expired"
          : "Cannot open a socket: a token or ticket is required",
        { headers: { "WWW-Authenticate": 'Bearer realm="chorus"' } },
      );
    }
    return {
      userId: principal.userId,
      limit: limitOf(principal.id),
      access: {
        actAs(user: string) {
          try {
            actingUser(principal, user);
            return null;
          } catch (e) {
            if (e instanceof ChorusError) return "forbidden";
            throw e;
          }
        },
        check(topic: string, write: boolean) {
          try {
            authorize(principal, topicRequirement(topic, write));
            return null;
          } catch (e) {
            if (e instanceof ChorusError) return "unauthorized";
            throw e;
          }
        },
        valid: ticket
          ? () => tokens.tickets.live(principal)
          : async () => (await tokens.verify(secret)) !== null,
      },
    } satisfies Authenticated;
  };
}
