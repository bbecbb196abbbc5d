/**
 * Token administration (scope `admin`): create (the secret is returned once), list, revoke.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { SCOPES, type TokenStore } from "../auth/tokens.ts";
import { ID_PATTERN } from "../actors/reel_api.ts";
import { errorResponses, validationHook } from "./_common.ts";
import { ChorusError } from "../errors.ts";

/** Dependencies of {@linkcode tokenRoutes}. */
export interface TokenRoutesDeps {
  tokens: TokenStore;
  /** The time, to turn `expires_at` into a TTL. */
  now: () => number;
}

const TokenInfo = z.object({
  id: z.string(),
  name: z.string().optional(),
  scopes: z.array(z.enum(SCOPES)),
  prefix: z.string().optional(),
  user_id: z.string().optional().openapi({
    description: "The user the token acts for (absent: the token id)",
  }),
  expires_at: z.number().int().optional().openapi({ description: "ms since epoch" }),
  created_at: z.number().int(),
  last_used_at: z.number().int().optional(),
}).openapi("TokenInfo");

const createTokenRoute = createRoute({
  method: "post",
  path: "/tokens",
  summary: "Create a token; the secret is in this response only",
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({
            scopes: z.array(z.enum(SCOPES)).min(1),
            prefix: z.string().min(1).max(1024).optional(),
            ttl: z.number().positive().optional().openapi({ description: "Seconds to live" }),
            expires_at: z.number().int().positive().optional().openapi({
              description: "Expiry, ms since epoch (instead of ttl)",
            }),
            name: z.string().max(200).optional(),
            user_id: z.string().regex(ID_PATTERN).refine((id) => id !== "." && id !== "..", {
              message: 'must not be "." or ".."',
            }).optional().openapi({
              example: "u_1",
              description: "The user the token acts for in interactions, comments and presence " +
                "(default: the token id); acting for others needs the users:impersonate scope",
            }),
          }),
        },
      },
    },
  },
  responses: {
    201: {
      description: "Created",
      content: {
        "application/json": {
          schema: TokenInfo.extend({ token: z.string().openapi({ example: "sk_chorus_…" }) }),
        },
      },
    },
    ...errorResponses(400, 401, 403),
  },
});

const listTokensRoute = createRoute({
  method: "get",
  path: "/tokens",
  summary: "List tokens (never their secrets)",
  responses: {
    200: {
      description: "Tokens",
      content: { "application/json": { schema: z.object({ tokens: z.array(TokenInfo) }) } },
    },
    ...errorResponses(401, 403),
  },
});

const revokeTokenRoute = createRoute({
  method: "delete",
  path: "/tokens/{id}",
  summary: "Revoke a token",
  request: { params: z.object({ id: z.string() }) },
  responses: {
    200: {
      description: "Revoked",
      content: {
        "application/json": { schema: z.object({ deleted: z.literal(true), id: z.string() }) },
      },
    },
    ...errorResponses(401, 403, 404),
  },
});

/** The token routes, mounted under `/api/v1`. */
export function tokenRoutes(deps: TokenRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(createTokenRoute, async (c) => {
    const body = c.req.valid("json");
    if (body.ttl !== undefined && body.expires_at !== undefined) {
      throw new ChorusError("invalid_request", "Cannot create a token: give ttl or expires_at");
    }
    const { token, info } = await deps.tokens.create({
      ...body,
      ttl: body.expires_at !== undefined ? (body.expires_at - deps.now()) / 1000 : body.ttl,
    });
    return c.json({ ...info, token }, 201);
  });
  app.openapi(listTokensRoute, async (c) => c.json({ tokens: await deps.tokens.list() }, 200));
  app.openapi(revokeTokenRoute, async (c) => {
    const { id } = c.req.valid("param");
    await deps.tokens.revoke(id);
    return c.json({ deleted: true as const, id }, 200);
  });
  return app;
}
