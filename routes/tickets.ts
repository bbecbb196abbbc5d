/**
 * `POST /tickets`: trades the caller's bearer token for a short-lived, single-use ticket that a
 * browser passes where it cannot send a header: `GET /kv/:key/watch?ticket=` (`EventSource`) and
 * the socket's `ticket` connect param. See auth/tickets.ts.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { TokenStore } from "../auth/tokens.ts";
import { principalOf } from "../auth/middleware.ts";
import { errorResponses, validationHook } from "./_common.ts";

/** Dependencies of {@linkcode ticketRoutes}. */
export interface TicketRoutesDeps {
  tokens: TokenStore;
}

const createTicketRoute = createRoute({
  method: "post",
  path: "/tickets",
  operationId: "createTicket",
  tags: ["tokens"],
  summary: "Create a single-use stream ticket (30 s) for EventSource and the socket",
  description: "The ticket carries the token's scopes, prefix and user. Pass it as `?ticket=` " +
    "to `GET /api/v1/kv/{key}/watch` or as the socket's `ticket` connect param. It works once, " +
    "on any instance, and stops working when its token is revoked.",
  responses: {
    201: {
      description: "Created",
      content: {
        "application/json": {
          schema: z.object({
            ticket: z.string().openapi({ example: "tk_chorus_…" }),
            expires_at: z.number().int().openapi({ description: "ms since epoch" }),
          }).openapi("Ticket"),
        },
      },
    },
    ...errorResponses(401),
  },
});

/** The ticket route, mounted under `/api/v1`. */
export function ticketRoutes(deps: TicketRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(
    createTicketRoute,
    async (c) => c.json(await deps.tokens.tickets.issue(principalOf(c)), 201),
  );
  return app;
}
