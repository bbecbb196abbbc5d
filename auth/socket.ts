/**
 * Socket authentication: the token comes from the `token` connect param or, with phoenix ≥ 1.8's
 * `authToken`, from the `Sec-WebSocket-Protocol` offer `base64url.bearer.phx.<base64 token>`.
 * Each join and push is then checked against the token's scopes and prefix, per topic.
 * @module
 */
import type { Authenticated } from "../realtime/server.ts";
import type { Requirement } from "./middleware.ts";
import { authorize } from "./middleware.ts";
import type { TokenStore } from "./tokens.ts";
import { ChorusError } from "../errors.ts";

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
 * with auth on, a valid token is required (403 otherwise) and sets the presence user.
 */
export function socketAuthenticator(tokens: TokenStore, enabled: boolean) {
  return async (params: Record<string, string>, request?: Request) => {
    if (!enabled) return { userId: params.user_id || null } satisfies Authenticated;
    const secret = socketToken(params, request);
    if (!secret) return null;
    const principal = await tokens.verify(secret);
    if (!principal) return null;
    return {
      userId: principal.userId,
      access: {
        check(topic: string, write: boolean) {
          try {
            authorize(principal, topicRequirement(topic, write));
            return null;
          } catch (e) {
            if (e instanceof ChorusError) return "unauthorized";
            throw e;
          }
        },
        valid: async () => (await tokens.verify(secret)) !== null,
      },
    } satisfies Authenticated;
  };
}
