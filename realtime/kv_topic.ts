/**
 * The `kv:<key>` topic: live `change` events of one key, in version order on every instance, with
 * history recovery. Join `{}` → `{key, version, value?}`; join `{"last_seq": n}` also replays the
 * retained changes after version n before live ones, or answers `recovered: false` when the change
 * log no longer reaches back to n + 1. Pushes: `put` `{value, ttl?}` → `{key, version}`,
 * `delete` → `{deleted: true}`, `get` → the entry.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { type KvApi, validateKey } from "../actors/kv_api.ts";
import type { KvChange } from "../actors/kv_actor.ts";
import { type JoinContext, TopicError, type TopicHandler, type TopicMessage } from "./topics.ts";

/** What the kv topic needs. */
export interface KvTopicDeps {
  /** The kv product. */
  kv: KvApi;
}

/** Builds the handler of the `kv` prefix. */
export function kvTopic(deps: KvTopicDeps): TopicHandler {
  return {
    async open(_topic, key, publish) {
      return await deps.kv.watch(validKey(key), (change) => publish(message(change)))
        .catch(topicError); // KV unreachable: an "unavailable" join reply, not "join crashed"
    },

    async join(context: JoinContext) {
      const key = validKey(context.name);
      const lastSeq = context.payload.last_seq;
      // From the loaded actor, without a KV confirmation (see TopicHandler.join).
      const { version, entry } = await deps.kv.head(key, { consistency: "eventual" })
        .catch(topicError);
      const response: Record<string, unknown> = { key, version };
      if (entry) response.value = entry.value;
      // The reply covers every change up to its version: live ones at or below it are not sent.
      if (lastSeq === undefined || lastSeq === null) return { response, after: version };
      if (!Number.isSafeInteger(lastSeq) || (lastSeq as number) < 0) {
        throw new TopicError("invalid last_seq", {
          message: "last_seq is a version (integer ≥ 0)",
        });
      }
      const since = lastSeq as number;
      const changes = await deps.kv.history(key, since).catch(topicError);
      if (changes === null) return { response: { ...response, recovered: false } };
      return { response: { ...response, recovered: true }, replay: changes.map(message) };
    },

    async handleIn(event, payload, context) {
      const key = validKey(context.name);
      if (payload instanceof ArrayBuffer) throw new TopicError("binary payload not accepted");
      try {
        switch (event) {
          case "put": {
            if (!("value" in payload)) {
              throw new TopicError("invalid request", { message: "put needs value" });
            }
            const ttl = payload.ttl === undefined ? undefined : payload.ttl as number;
            // The payload was parsed from this frame: nothing else holds it.
            const r = await deps.kv.put(key, payload.value, { ttl, handOver: true });
            return { ...r };
          }
          case "delete":
            return await deps.kv.delete(key);
          case "get": {
            const entry = await deps.kv.get(key);
            return entry ? { ...entry } : { key, found: false };
          }
          default:
            throw new TopicError("unknown event");
        }
      } catch (e) {
        return topicError(e);
      }
    },
  };
}

/** A change as the topic's `change` message, ordered by version. */
function message(change: KvChange): TopicMessage {
  return {
    event: "change",
    payload: change as unknown as Record<string, unknown>,
    seq: change.version,
  };
}

function validKey(key: string): string {
  try {
    return validateKey(key); // the HTTP API's rules
  } catch (e) {
    return topicError(e);
  }
}

function topicError(e: unknown): never {
  if (e instanceof ChorusError) throw new TopicError(e.code, { message: e.message });
  throw e;
}
