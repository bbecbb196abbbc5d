/**
 * Presence across instances, in Phoenix Presence's shapes (docs/socket.md): the tracker
 * (`tracker.ts`) keeps this instance's metas in KV and refreshed, the log writer (`log_writer.ts`)
 * appends every join and leave to the topic's change log in one order for every instance, each
 * view (`view.ts`) follows that log and broadcasts `presence_diff`s batched by `diff.ts`, and
 * `frames.ts` encodes the `presence_state` a joining socket gets. This module is what the rest of
 * Chorus imports.
 * @module
 */

export { type PresenceOptions, PresenceTracker } from "./tracker.ts";
export { PresenceView, type PresenceViewOptions } from "./view.ts";
export {
  joinMeta,
  type PresenceDiff,
  type PresenceMap,
  type PresenceMeta,
  randomRef,
} from "./meta.ts";
