/**
 * The `user:<id>` topic: the user's feed in order on every instance: `user_activity`
 * (each presence report) and `reel_update` for updates targeted at the user. Join reply: the
 * user's presence and the feed's `seq`; a join with `{"last_seq": n}` replays the retained feed
 * after n, or answers `recovered: false`. A socket acting for another user is refused
 * (`unauthorized`); an anonymous socket (auth off, no `user_id`) may join.
 * Push `presence` `{status, current_reel?, activity?}` reports presence → the presence.
 * See docs/socket.md.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { ID_PATTERN } from "../actors/reel_api.ts";
import type { PresenceInput, UserFeedEntry, UsersApi } from "../actors/user_api.ts";
import { type JoinContext, TopicError, type TopicHandler, type TopicMessage } from "./topics.ts";

/** The topic message of one feed entry. */
export function feedMessage(entry: UserFeedEntry): TopicMessage {
  return {
    event: entry.event,
    payload: entry.payload as unknown as Record<string, unknown>,
    seq: entry.seq,
    priority: entry.priority,
  };
}

/** Builds the handler of the `user` prefix. */
export function userTopic(users: UsersApi): TopicHandler {
  return {
    async open(_topic, id, publish) {
      return await users.subscribe(guard(id), (entry) => publish(feedMessage(entry)));
    },

    async join(context: JoinContext) {
      const id = guard(context.name);
      const who = context.socket.userId;
      if (who !== null && who !== id) {
        throw new TopicError("unauthorized", { message: `Cannot join user:${id} as "${who}"` });
      }
      try {
        const presence = await users.getPresence(id);
        const seq = await users.seq(id);
        const response: Record<string, unknown> = { ...presence, seq };
        const lastSeq = context.payload.last_seq;
        if (lastSeq === undefined || lastSeq === null) return { response, after: seq };
        if (!Number.isSafeInteger(lastSeq) || (lastSeq as number) < 0) {
          throw new TopicError("invalid last_seq", { message: "last_seq is a seq (integer ≥ 0)" });
        }
        const feed = await users.feedSince(id, lastSeq as number);
        if (!feed.complete) return { response: { ...response, recovered: false }, after: seq };
        return {
          response: { ...response, recovered: true },
          replay: feed.entries.map(feedMessage),
          after: feed.entries.at(-1)?.seq ?? (lastSeq as number),
        };
      } catch (e) {
        return topicError(e);
      }
    },

    async handleIn(event, payload, context) {
      const id = guard(context.name);
      if (payload instanceof ArrayBuffer) throw new TopicError("binary payload not accepted");
      if (event !== "presence") throw new TopicError("unknown event");
      try {
        return { ...await users.setPresence(id, payload as unknown as PresenceInput) };
      } catch (e) {
        return topicError(e);
      }
    },
  };
}

function guard(id: string): string {
  if (!ID_PATTERN.test(id) || id === "." || id === "..") {
    throw new TopicError("invalid_request", { message: `Cannot join user "${id}": bad user id` });
  }
  return id;
}

function topicError(e: unknown): never {
  if (e instanceof TopicError) throw e;
  if (e instanceof ChorusError) throw new TopicError(e.code, { message: e.message });
  throw e;
}
