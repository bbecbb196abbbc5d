/**
 * The users routes: report and read a user's presence, as JSON or
 * `application/x-protobuf` (`PresenceUpdate`) both ways.
 * See docs/http-api.md.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { PRESENCE_STATUSES, type PresenceInput, type UsersApi } from "../actors/user_api.ts";
import { decodePresenceUpdate, encodePresenceUpdate } from "../proto/codec.ts";
import { ConsistencyQuery, errorResponses, validationHook } from "./_common.ts";
import { jsonOrProtobuf, jsonOrProtobufBody, jsonOrProtobufInput, negotiate } from "./_protobuf.ts";
import { idParam } from "./_ids.ts";
import { actingUser, principalOf } from "../auth/middleware.ts";

/** Dependencies of {@linkcode userRoutes}. */
export interface UserRoutesDeps {
  users: UsersApi;
}

const IdParam = idParam("u_1");
const PresenceBody = z.object({
  status: z.enum(PRESENCE_STATUSES),
  current_reel: z.union([z.string(), z.number()]).optional(),
  activity: z.string().max(256).optional(),
}).openapi("PresenceInput");
const Presence = z.object({
  user_id: z.string(),
  status: z.enum(PRESENCE_STATUSES),
  current_reel: z.string().optional(),
  activity: z.string().optional(),
  last_seen: z.number().int(),
  sockets: z.number().int().optional(),
}).openapi("PresenceUpdate");
const presenceAnswer = (description: string) => jsonOrProtobuf(Presence, description);

const setRoute = createRoute({
  method: "post",
  path: "/users/{id}/presence",
  summary: "Report a user's presence (status, current reel, activity)",
  description: "With auth on, `id` must be the token's user unless it has the " +
    "`users:impersonate` scope (else 403 `forbidden`).",
  request: {
    params: IdParam,
    body: jsonOrProtobufBody(PresenceBody),
  },
  responses: {
    200: presenceAnswer("Recorded (protobuf: PresenceUpdate)"),
    ...errorResponses(400, 403, 415),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/users/{id}/presence",
  summary: "A user's presence: reported status within the TTL, live sockets, else offline",
  request: { params: IdParam, query: z.object({ consistency: ConsistencyQuery }) },
  responses: { 200: presenceAnswer("Presence (protobuf: PresenceUpdate)"), ...errorResponses(400) },
});

/** The `/users` routes, mounted under `/api/v1`. */
export function userRoutes(deps: UserRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const { users } = deps;

  app.openapi(setRoute, async (c) => {
    const { id } = c.req.valid("param");
    actingUser(principalOf(c), id);
    const input = await jsonOrProtobufInput(c, {
      json: () => c.req.valid("json"),
      decode: decodePresenceUpdate,
      what: "a PresenceUpdate",
      fromProto: (m): PresenceInput => {
        const input: PresenceInput = { status: m.status as PresenceInput["status"] };
        if (m.current_reel !== undefined) input.current_reel = m.current_reel;
        if (m.activity !== undefined) input.activity = m.activity;
        return input;
      },
    });
    return negotiate(c, await users.setPresence(id, input), 200, encodePresenceUpdate) as never;
  });

  app.openapi(getRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { consistency } = c.req.valid("query");
    const presence = await users.getPresence(id, { consistency });
    return negotiate(c, presence, 200, (p) => {
      const { sockets: _s, ...rest } = p;
      return encodePresenceUpdate(rest);
    }) as never;
  });
  return app;
}
