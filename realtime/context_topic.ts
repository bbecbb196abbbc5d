/**
 * The `context:<id>` topic: join `{"version"?}` → the reply is the sync result
 * (`full_context`, `delta` or `no_change`); then a `delta` event per change (the
 * `ContextsApi.subscribe` events, in version order on every instance); push `update` with a merge
 * patch → `{version}`. A context that does not exist yet joins with `{type: "full_context",
 * version: 0, context: null}`, so a client can create it with its first `update`.
 * See docs/socket.md.
 * @module
 */
import { ChorusError } from "../errors.ts";
import type { ContextsApi } from "../actors/context_api.ts";
import { type JoinContext, TopicError, type TopicHandler } from "./topics.ts";

/** Builds the handler of the `context` prefix. */
export function contextTopic(contexts: ContextsApi): TopicHandler {
  return {
    async open(_topic, id, publish) {
      return await contexts.subscribe(guard(id), (event) => {
        const payload = event as unknown as Record<string, unknown>;
        publish({ event: "delta", payload, seq: event.version });
      });
    },
    async join(context: JoinContext) {
      guard(context.name);
      const v = context.payload.version;
      if (v !== undefined && v !== null && !Number.isSafeInteger(v)) {
        throw new TopicError("invalid version", { message: "version is an integer" });
      }
      try {
        const result = await contexts.sync(context.name, v as number | undefined);
        const response = { ...result } as Record<string, unknown>;
        return { response, after: typeof result.version === "number" ? result.version : undefined };
      } catch (e) {
        if (e instanceof ChorusError && e.code === "not_found") {
          return { response: { type: "full_context", version: 0, context: null } };
        }
        throw toTopicError(e);
      }
    },
    async handleIn(event, payload, context) {
      if (event !== "update") throw new TopicError("unknown event");
      if (payload instanceof ArrayBuffer) throw new TopicError("binary payload not accepted");
      guard(context.name);
      try {
        const exists = await contexts.get(context.name);
        const r = exists
          ? await contexts.update(context.name, payload, { type: "merge-patch" })
          : await contexts.set(context.name, payload);
        return { version: r.version };
      } catch (e) {
        throw toTopicError(e);
      }
    },
  };
}

/** Refuses the ids `.` and `..` (they cannot name a context in a URL, so REST refuses them too). */
function guard(id: string): string {
  if (id === "." || id === "..") {
    throw new TopicError("invalid_request", {
      message: `Cannot join context "${id}": "." and ".." are not context ids`,
    });
  }
  return id;
}

function toTopicError(e: unknown): unknown {
  if (e instanceof ChorusError) return new TopicError(e.code, { message: e.message });
  return e;
}
