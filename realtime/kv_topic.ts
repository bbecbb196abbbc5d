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
import type { KvActor, KvChange } from "../actors/kv_actor.ts";
import type { Registry } from "../actors/registry.ts";
import type { Store } from "../storage/store.ts";
import { kvLogKey, kvLogPrefix } from "../storage/keys.ts";
import { type JoinContext, TopicError, type TopicHandler, type TopicMessage } from "./topics.ts";

/** What the kv topic needs. */
export interface KvTopicDeps {
  /** The kv product. */
  kv: KvApi;
  /** Actors (for the key's current version). */
  registry: Registry;
  /** Storage (the key's change log). */
  store: Store;
}

/** Builds the handler of the `kv` prefix. */
export function kvTopic(deps: KvTopicDeps): TopicHandler {
  return {
    async open(_topic, key, publish) {
      const message = (change: KvChange): TopicMessage => ({
        event: "change",
        payload: change as unknown as Record<string, unknown>,
        seq: change.version,
      });
      return await deps.kv.watch(validKey(key), (change) => publish(message(change)));
    },

    async join(context: JoinContext) {
      const key = validKey(context.name);
      const lastSeq = context.payload.last_seq;
      const entry = await deps.kv.get(key).catch(topicError);
      const response: Record<string, unknown> = { key, version: entry?.version ?? 0 };
      if (entry) response.value = entry.value;
      if (lastSeq === undefined || lastSeq === null) return { response };
      if (!Number.isSafeInteger(lastSeq) || (lastSeq as number) < 0) {
        throw new TopicError("invalid last_seq", {
          message: "last_seq is a version (integer ≥ 0)",
        });
      }
      const since = lastSeq as number;
      const current = deps.registry.get<KvActor>("kv", key).version();
      if (since < current) {
        const next = await deps.store.get(kvLogKey(key, since + 1));
        if (next.versionstamp === null) return { response: { ...response, recovered: false } };
      }
      return { response: { ...response, recovered: true }, replay: replay(deps.store, key, since) };
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
            const r = await deps.kv.put(key, payload.value, { ttl });
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

async function* replay(store: Store, key: string, since: number): AsyncIterable<TopicMessage> {
  const iter = store.list<KvChange>({
    start: kvLogKey(key, since + 1),
    end: [...kvLogPrefix(key), Number.MAX_SAFE_INTEGER],
  });
  for await (const entry of iter) {
    const change = entry.value;
    yield {
      event: "change",
      payload: change as unknown as Record<string, unknown>,
      seq: change.version,
    };
  }
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
