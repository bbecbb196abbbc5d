/**
 * The `reel:<id>` topic: `reel_update` and `interaction` events in the reel's order on
 * every instance, presence by user (the generic tracker), and recovery: a join with
 * `{"last_seq": n}` replays the retained updates after n before live ones, or answers
 * `recovered: false` when they are gone. Updates with `target_users` are not sent here (they go to
 * the targets' `user:<id>` topics). An update's `priority` is its outbound priority: `low` ones
 * (and views) are the first dropped for a slow socket. A join by a known user also records the
 * user's presence (`status` from the join payload, default online; `current_reel` = this reel).
 *
 * Pushes: `interaction` `{type, user_id?, text?}` (user_id defaults to the socket's user; with
 * auth on, another user needs the token's `users:impersonate`, else `forbidden`) → the
 * interaction result; `update` `{update_data, priority?, …}` → `{id, reel_id, seq, timestamp}`.
 * See docs/socket.md.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { log } from "../log.ts";
import {
  channelTopic,
  forReelSubscribers,
  ID_PATTERN,
  type InteractionInput,
  type PublishInput,
  type ReelsApi,
} from "../actors/reel_api.ts";
import type { PresenceInput, UsersApi } from "../actors/user_api.ts";
import type { ReelEvent } from "../actors/reel_actor.ts";
import type { ReelUpdateJson } from "../actors/reel_types.ts";
import { type JoinContext, TopicError, type TopicHandler, type TopicMessage } from "./topics.ts";

/** What the reel topic needs. */
export interface ReelTopicDeps {
  reels: ReelsApi;
  users: UsersApi;
}

/** The topic message of a reel event, or null when the reel's subscribers do not get it. */
export function reelMessage(event: ReelEvent): TopicMessage | null {
  if (event.type === "update") {
    if (!forReelSubscribers(event.update)) return null;
    return updateMessage(event.update);
  }
  const i = event.interaction;
  return {
    event: "interaction",
    payload: i as unknown as Record<string, unknown>,
    priority: i.type === "view" ? "low" : "normal",
  };
}

function updateMessage(update: ReelUpdateJson): TopicMessage {
  return {
    event: "reel_update",
    payload: update as unknown as Record<string, unknown>,
    seq: update.seq,
    priority: update.priority,
  };
}

/** Builds the handler of the `reel` prefix. */
export function reelTopic(deps: ReelTopicDeps): TopicHandler {
  return {
    async open(_topic, id, publish) {
      return await deps.reels.subscribe(guard(id), (event) => {
        const message = reelMessage(event);
        if (message) publish(message);
      });
    },

    async join(context: JoinContext) {
      const id = guard(context.name);
      const { payload, socket } = context;
      // From the loaded actor, without a KV confirmation (see TopicHandler.join).
      const state = await deps.reels.get(id, { consistency: "eventual" }).catch(topicError);
      const response: Record<string, unknown> = { ...state };
      if (socket.userId) {
        const status = payload.status === "away" ? "away" : "online";
        const presence: PresenceInput = { status, current_reel: id };
        if (typeof payload.activity === "string") {
          presence.activity = payload.activity.slice(0, 256);
        }
        deps.users.reportFromSocket(
          socket.userId,
          presence,
          (error) => log.warn("reel join presence failed", { error, topic: context.topic }),
        );
      }
      const lastSeq = payload.last_seq;
      // The reply covers every update up to its seq: live ones at or below it are not sent again.
      if (lastSeq === undefined || lastSeq === null) return { response, after: state.seq };
      if (!Number.isSafeInteger(lastSeq) || (lastSeq as number) < 0) {
        throw new TopicError("invalid last_seq", { message: "last_seq is a seq (integer ≥ 0)" });
      }
      const list = await deps.reels.updates(id, { since: lastSeq as number, limit: 1000 })
        .catch(topicError);
      if (!list.complete) return { response: { ...response, recovered: false } };
      const replay = list.updates.filter(forReelSubscribers).map(updateMessage);
      return {
        response: { ...response, recovered: true },
        replay,
        after: list.updates.at(-1)?.seq ?? (lastSeq as number),
      };
    },

    async handleIn(event, payload, context) {
      const id = guard(context.name);
      if (payload instanceof ArrayBuffer) throw new TopicError("binary payload not accepted");
      try {
        if (event === "interaction") {
          const input = { ...payload } as unknown as InteractionInput;
          const socket = context.socket;
          if (!input.user_id) input.user_id = socket.userId ?? socket.id;
          else if (socket.access && input.user_id !== socket.userId) {
            // With auth on, acting for another user needs the token's permission.
            const access = socket.access;
            const refused = access.actAs ? access.actAs(String(input.user_id)) : "forbidden";
            if (refused) {
              throw new TopicError(refused, {
                message: `Cannot act for user "${
                  String(input.user_id).slice(0, 128)
                }": this socket acts for "${socket.userId}"`,
              });
            }
          }
          return { ...await deps.reels.interact(id, input) };
        }
        if (event === "update") {
          const channel = (payload as { target_channel?: unknown }).target_channel;
          const topic = typeof channel === "string" ? channelTopic(channel) : null;
          const refused = topic && context.socket.access?.check(`${topic.kind}:${topic.id}`, true);
          if (refused) {
            throw new TopicError(refused, {
              message:
                `Cannot publish to target_channel "${channel}": this socket may not write it`,
            });
          }
          return { ...await deps.reels.publish(id, payload as unknown as PublishInput) };
        }
      } catch (e) {
        return topicError(e);
      }
      throw new TopicError("unknown event");
    },
  };
}

function guard(id: string): string {
  if (!ID_PATTERN.test(id) || id === "." || id === "..") {
    throw new TopicError("invalid_request", { message: `Cannot join reel "${id}": bad reel id` });
  }
  return id;
}

function topicError(e: unknown): never {
  if (e instanceof ChorusError) throw new TopicError(e.code, { message: e.message });
  throw e;
}
