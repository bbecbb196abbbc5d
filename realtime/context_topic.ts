/**
 * The `context:<id>` topic: join `{"version"?, "delta_format"?}` → the reply is the sync result
 * (`full_context`, `delta` or `no_change`) in the requested delta format; then a `delta` event per
 * change (the `ContextsApi.subscribe` events, in version order on every instance), its delta in
 * the same format; push `update` with a merge patch → `{version}`. A context that does not exist
 * yet joins with `{type: "full_context", version: 0, context: null}`, so a client can create it
 * with its first `update`.
 *
 * Formats: `delta_format` is `chord` (the default), `json-patch`, `merge-patch` or any format the
 * embedding program registered, as for `GET /contexts/:id/sync?format=`. Events are published in
 * `chord`; a channel that asked for another format gets its own view of each event: the topic
 * keeps the context as of the last event, so each delta is rewritten as `format.diff(before,
 * after)` once per format (shared by every channel with that format), and a change the format
 * cannot express (a merge patch setting `null`) goes out as `full_context`.
 * See docs/socket.md.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { log } from "../log.ts";
import type { ContextsApi } from "../actors/context_api.ts";
import type { ContextEvent } from "../actors/context_actor.ts";
import { chordFormat, type DeltaFormat } from "../deltas/format.ts";
import type { JsonObject } from "../deltas/json.ts";
import { type JoinContext, TopicError, type TopicHandler, type TopicMessage } from "./topics.ts";

/** What one topic on this instance knows of its context, to rewrite deltas in other formats. */
interface TopicState {
  /** The context as of `version` (null: absent or deleted); undefined while unknown. */
  context: JsonObject | null | undefined;
  /** The version `context` is at. */
  version: number;
  /** The contexts before and after each published delta message. */
  readonly changes: WeakMap<TopicMessage, { before: JsonObject; after: JsonObject }>;
  /** Each published message as each format shows it. */
  readonly views: WeakMap<TopicMessage, Map<string, TopicMessage>>;
}

/** Builds the handler of the `context` prefix. */
export function contextTopic(contexts: ContextsApi): TopicHandler {
  const states = new Map<string, TopicState>();
  return {
    async open(_topic, id, publish) {
      guard(id);
      const state: TopicState = {
        context: undefined,
        version: 0,
        changes: new WeakMap(),
        views: new WeakMap(),
      };
      // Events that arrive before the first read are replayed onto it (those it already holds are
      // skipped by version), so the state has no gap.
      let early: ContextEvent[] | null = [];
      const stop = await contexts.subscribe(id, (event) => {
        const message: TopicMessage = {
          event: "delta",
          payload: event as unknown as Record<string, unknown>,
          seq: event.version,
        };
        if (early) early.push(event);
        else track(state, event, message);
        publish(message);
      });
      try {
        const current = await contexts.get(id);
        state.context = current ? current.context as JsonObject : null;
        state.version = current?.version ?? 0;
        for (const event of early) {
          if (event.version > state.version) track(state, event, null);
        }
      } catch (error) {
        log.warn("context topic could not read its context", { error, id });
      }
      early = null;
      states.set(id, state);
      return () => {
        states.delete(id);
        stop();
      };
    },
    async join(context: JoinContext) {
      guard(context.name);
      const v = context.payload.version;
      if (v !== undefined && v !== null && !Number.isSafeInteger(v)) {
        throw new TopicError("invalid version", { message: "version is an integer" });
      }
      const requested = context.payload.delta_format;
      if (requested !== undefined && requested !== null && typeof requested !== "string") {
        throw new TopicError("invalid_request", { message: "delta_format is a format name" });
      }
      let format: DeltaFormat;
      try {
        format = contexts.format(requested ?? undefined);
      } catch (e) {
        throw toTopicError(e);
      }
      const view = format.name === chordFormat.name
        ? undefined
        : (message: TopicMessage) => viewOf(states.get(context.name), message, format);
      try {
        // From the loaded actor, without a KV confirmation (see TopicHandler.join).
        const result = await contexts.sync(context.name, v as number | undefined, {
          format: format.name,
          consistency: "eventual",
        });
        const response = { ...result } as Record<string, unknown>;
        return {
          response,
          after: typeof result.version === "number" ? result.version : undefined,
          view,
        };
      } catch (e) {
        if (e instanceof ChorusError && e.code === "not_found") {
          return { response: { type: "full_context", version: 0, context: null }, view };
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

/** Moves the state past `event`, noting the contexts around a delta for `message`. */
function track(state: TopicState, event: ContextEvent, message: TopicMessage | null): void {
  if (event.type === "full_context") {
    state.context = event.context;
  } else if (event.type === "deleted") {
    state.context = null;
  } else if (state.context !== undefined) {
    // A creation is a delta from {}; otherwise the delta applies to the version before it.
    const before = state.context ?? {};
    if (state.context !== null && event.from_version !== state.version) {
      log.warn("context topic lost track of its context", { id: event.id });
      state.context = undefined;
    } else {
      const after = chordFormat.apply(before, event.delta);
      if (message) state.changes.set(message, { before, after });
      state.context = after;
    }
  }
  state.version = event.version;
}

/** `message` as a channel that asked for `format` sees it (computed once per format). */
function viewOf(
  state: TopicState | undefined,
  message: TopicMessage,
  format: DeltaFormat,
): TopicMessage {
  const payload = message.payload as Record<string, unknown>;
  if (state === undefined || payload.type !== "delta") return message;
  let byFormat = state.views.get(message);
  const known = byFormat?.get(format.name);
  if (known) return known;
  const change = state.changes.get(message);
  // Without the contexts around it (the topic lost track after a failed read) the chord delta is
  // sent as it is; the channel's next join resyncs it.
  if (change === undefined) return message;
  const delta = format.diff(change.before, change.after);
  const seen: TopicMessage = delta === undefined
    ? {
      ...message,
      payload: {
        type: "full_context",
        id: payload.id,
        version: payload.version,
        context: change.after,
        at: payload.at,
      },
    }
    : { ...message, payload: { ...payload, delta } };
  if (!byFormat) state.views.set(message, byFormat = new Map());
  byFormat.set(format.name, seen);
  return seen;
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
