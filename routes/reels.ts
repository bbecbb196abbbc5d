/**
 * The reels routes: publish and list updates, read counters, apply interactions, list
 * comments, and who is on a reel. Bodies are JSON or `application/x-protobuf` (`ReelUpdate`,
 * `Interaction`); answers are protobuf when `Accept` asks for it and a message exists.
 * See docs/http-api.md.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  channelTopic,
  idText,
  INTERACTION_TYPES,
  type InteractionInput,
  PRIORITIES,
  type PublishInput,
  type ReelsApi,
} from "../actors/reel_api.ts";
import type { UsersApi } from "../actors/user_api.ts";
import {
  decodeInteraction,
  decodeReelUpdate,
  encodeInteraction,
  encodeReelState,
  encodeReelUpdate,
  encodeReelUpdateList,
} from "../proto/codec.ts";
import type { ReelUpdateJson } from "../actors/reel_types.ts";
import { ConsistencyQuery, errorResponses, jsonResponse, validationHook } from "./_common.ts";
import { jsonOrProtobuf, jsonOrProtobufBody, jsonOrProtobufInput, negotiate } from "./_protobuf.ts";
import { idParam } from "./_ids.ts";
import { actingUser, principalOf, requirePrefix } from "../auth/middleware.ts";
import type { Principal } from "../auth/tokens.ts";

/** Dependencies of {@linkcode reelRoutes}. */
export interface ReelRoutesDeps {
  reels: ReelsApi;
  users: UsersApi;
}

const IdParam = idParam("reel_42");
const Int = z.number().int();
/** A comments page cursor: the id (a ULID) of the last comment of the page before. */
const CommentCursor = z.string().regex(
  /^[0-9A-HJKMNP-TV-Z]{26}$/,
  "must be the cursor of an earlier page (a comment id)",
);
const UpdateBody = z.object({
  update_data: z.record(z.string(), z.unknown()),
  target_users: z.array(z.union([z.string(), z.number()])).max(50).optional(),
  target_channel: z.string().max(256).optional(),
  priority: z.enum(PRIORITIES).optional(),
}).openapi("ReelUpdateInput");
const ReelUpdate = z.object({
  id: z.string(),
  reel_id: z.string(),
  update_data: z.record(z.string(), z.unknown()),
  target_users: z.array(z.string()).optional(),
  target_channel: z.string().optional(),
  priority: z.enum(PRIORITIES),
  timestamp: Int,
  seq: Int,
}).openapi("ReelUpdate");
const ReelState = z.object({
  reel_id: z.string(),
  views: Int,
  likes: Int,
  comments: Int,
  shares: Int,
  updated_at: Int,
  seq: Int,
}).openapi("ReelState");
const InteractionBody = z.object({
  type: z.enum(INTERACTION_TYPES),
  user_id: z.union([z.string(), z.number()]).optional().openapi({
    description: "Who acts. With auth on: omitted means the token's user, and another user " +
      "needs the users:impersonate scope (else 403). With auth off: required.",
  }),
  text: z.string().optional(),
}).openapi("InteractionInput");
const InteractionResult = z.object({
  id: z.string(),
  reel_id: z.string(),
  type: z.string(),
  user_id: z.string(),
  text: z.string().optional(),
  timestamp: Int,
  counted: z.boolean(),
  batched: z.boolean().optional(),
  state: ReelState,
}).openapi("InteractionResult");

const publishRoute = createRoute({
  method: "post",
  path: "/reels/{id}/updates",
  summary: "Publish an update to a reel (JSON or protobuf ReelUpdate)",
  request: { params: IdParam, body: jsonOrProtobufBody(UpdateBody) },
  responses: {
    201: jsonOrProtobuf(
      z.object({ id: z.string(), reel_id: z.string(), seq: Int, timestamp: Int }),
      "Published (protobuf: a ReelUpdate)",
    ),
    ...errorResponses(400, 413, 415),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/reels/{id}/updates",
  summary: "The retained updates after `since`, in order",
  request: {
    params: IdParam,
    query: z.object({
      since: z.coerce.number().int().min(0).optional(),
      limit: z.coerce.number().int().min(1).max(1000).optional(),
      consistency: ConsistencyQuery,
    }),
  },
  responses: {
    200: jsonOrProtobuf(
      z.object({
        reel_id: z.string(),
        seq: Int,
        complete: z.boolean(),
        updates: z.array(ReelUpdate),
      }),
      "Updates (protobuf: ReelUpdateList)",
    ),
    ...errorResponses(400),
  },
});

const stateRoute = createRoute({
  method: "get",
  path: "/reels/{id}",
  summary: "A reel's counters (zeros for a reel nothing happened to)",
  request: { params: IdParam, query: z.object({ consistency: ConsistencyQuery }) },
  responses: {
    200: jsonOrProtobuf(ReelState, "Counters (protobuf: ReelState)"),
    ...errorResponses(400),
  },
});

const interactRoute = createRoute({
  method: "post",
  path: "/reels/{id}/interactions",
  summary: "Like, unlike, comment, share or view (likes idempotent per user; views batched)",
  description: "With auth on the acting user is the token's user; acting for another " +
    "(`user_id`) needs the `users:impersonate` scope, else 403 `forbidden`.",
  request: { params: IdParam, body: jsonOrProtobufBody(InteractionBody) },
  responses: {
    201: jsonOrProtobuf(InteractionResult, "Applied (protobuf: the Interaction)"),
    ...errorResponses(400, 403, 409, 415),
  },
});

const commentsRoute = createRoute({
  method: "get",
  path: "/reels/{id}/comments",
  summary: "A reel's comments, oldest first, paged by cursor",
  request: {
    params: IdParam,
    query: z.object({
      cursor: CommentCursor.optional(),
      limit: z.coerce.number().int().min(1).max(500).optional(),
    }),
  },
  responses: {
    200: jsonResponse(z.object({
      reel_id: z.string(),
      comments: z.array(z.object({
        id: z.string(),
        reel_id: z.string(),
        user_id: z.string(),
        text: z.string(),
        timestamp: Int,
      })),
      cursor: z.string().nullable(),
    })),
    ...errorResponses(400),
  },
});

const presenceRoute = createRoute({
  method: "get",
  path: "/reels/{id}/presence",
  summary: "Who is on the reel now (live sockets on reel:<id> and REST-reported viewers)",
  request: { params: IdParam },
  responses: {
    200: jsonResponse(z.object({
      reel_id: z.string(),
      count: Int,
      users: z.array(z.object({
        user_id: z.string(),
        status: z.string(),
        activity: z.string().optional(),
        sockets: Int,
        last_seen: Int,
      })),
    })),
    ...errorResponses(400),
  },
});

/** The `/reels` routes, mounted under `/api/v1`. */
export function reelRoutes(deps: ReelRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  const { reels, users } = deps;

  app.openapi(publishRoute, async (c) => {
    const { id } = c.req.valid("param");
    const input = await jsonOrProtobufInput(c, {
      json: () => c.req.valid("json"),
      decode: decodeReelUpdate,
      what: "a ReelUpdate",
      fromProto: fromProtoUpdate,
    });
    requireChannel(principalOf(c), input.target_channel);
    const r = await reels.publish(id, input);
    return negotiate(c, r, 201, (v) =>
      encodeReelUpdate({
        ...v,
        update_data: input.update_data,
        priority: input.priority ?? "normal",
      } as ReelUpdateJson)) as never;
  });

  app.openapi(listRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { since, limit, consistency } = c.req.valid("query");
    const list = await reels.updates(id, { since, limit, consistency });
    return negotiate(c, list, 200, encodeReelUpdateList) as never;
  });

  app.openapi(stateRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { consistency } = c.req.valid("query");
    return negotiate(c, await reels.get(id, { consistency }), 200, encodeReelState) as never;
  });

  app.openapi(interactRoute, async (c) => {
    const { id } = c.req.valid("param");
    let input = await jsonOrProtobufInput(c, {
      json: () => c.req.valid("json"),
      decode: decodeInteraction,
      what: "an Interaction",
      fromProto: (m): InteractionInput => ({
        type: m.type as InteractionInput["type"],
        user_id: m.user_id,
        text: m.text,
      }),
    });
    // With auth on, the token's user acts (an empty protobuf user_id is none named).
    const named = input.user_id === "" || input.user_id === undefined
      ? undefined
      : String(idText(input.user_id));
    const user = actingUser(principalOf(c), named);
    if (user !== undefined) input = { ...input, user_id: user };
    const r = await reels.interact(id, input);
    return negotiate(c, r, 201, (v) => {
      const { counted: _c, batched: _b, state: _s, ...interaction } = v;
      return encodeInteraction(interaction);
    }) as never;
  });

  app.openapi(commentsRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { cursor, limit } = c.req.valid("query");
    return c.json(await reels.comments(id, { cursor, limit }), 200);
  });

  app.openapi(presenceRoute, async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await users.reelPresence(id), 200);
  });
  return app;
}

/**
 * A `target_channel` naming a topic is written to: with auth on, its id must be inside the
 * token's prefix (the route already needs `reels:write`, which covers `reel:` and `user:`).
 * @throws {ChorusError} `forbidden`
 */
function requireChannel(principal: Principal, channel: unknown): void {
  const topic = typeof channel === "string" ? channelTopic(channel) : null;
  if (topic !== null) requirePrefix(principal, [topic.id], `target_channel ${topic.kind}`);
}

function fromProtoUpdate(m: ReelUpdateJson): PublishInput {
  const input: PublishInput = { update_data: m.update_data, priority: m.priority };
  if (m.target_users?.length) input.target_users = m.target_users;
  if (m.target_channel !== undefined) input.target_channel = m.target_channel;
  return input;
}
