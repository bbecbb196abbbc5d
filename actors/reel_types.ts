/**
 * The plain JSON shapes of the reel product: updates, interactions, counters and update lists, as
 * the REST API, socket topics and the protobuf codec carry them. They live with the reel actor that
 * produces them (house rule 14); `proto/`, `realtime/` and `routes/` import them from here.
 * @module
 */

/**
 * A reel update's priority. Wire mapping (Kronop's numbers): `PRIORITY_LOW`=0 "low",
 * `PRIORITY_NORMAL`=1 "normal", `PRIORITY_HIGH`=2 "high", `PRIORITY_CRITICAL`=3 "critical"; an
 * unset priority is therefore "low".
 */
export type Priority = "low" | "normal" | "high" | "critical";

/**
 * A reel update as JSON. `update_data` is any JSON object: a string-only object travels as the
 * proto map, anything else as `update_data_json`. An empty `target_users` decodes as absent.
 */
export interface ReelUpdateJson {
  /** The update's ULID, assigned when it is published. */
  id: string;
  /** The reel the update belongs to. */
  reel_id: string;
  /** The publisher's payload, passed through unchanged. */
  update_data: Record<string, unknown>;
  /** Users whose feeds received the update; absent when it went to the reel's subscribers. */
  target_users?: string[];
  /** A label chosen by the publisher, stored and returned with the update. */
  target_channel?: string;
  /** How urgent the publisher says the update is. */
  priority: Priority;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
  /** The update's position in the reel's log: 1 for the first, then one more each time. */
  seq: number;
}

/** An interaction (like, unlike, comment, share, view) as JSON. */
export interface InteractionJson {
  /** The interaction's ULID, assigned when it is applied. */
  id: string;
  /** The reel interacted with. */
  reel_id: string;
  /** One of like, unlike, comment, share or view. */
  type: string;
  /** The user who interacted. */
  user_id: string;
  /** The comment's text; only for `comment`. */
  text?: string;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
}

/** A reel's counters as JSON. */
export interface ReelStateJson {
  /** The reel the counters belong to. */
  reel_id: string;
  /** Views counted so far. */
  views: number;
  /** Users who like the reel now (an unlike takes one away). */
  likes: number;
  /** Comments stored. */
  comments: number;
  /** Shares counted so far. */
  shares: number;
  /** Milliseconds since the Unix epoch. */
  updated_at: number;
  /** The seq of the reel's last published update; 0 before the first. */
  seq: number;
}

/** The updates of a reel as JSON (`GET /reels/:id/updates`). */
export interface ReelUpdateListJson {
  /** The reel. */
  reel_id: string;
  /** The reel's last seq. */
  seq: number;
  /** False when some updates after `since` were trimmed or have expired. */
  complete: boolean;
  /** Oldest first. */
  updates: ReelUpdateJson[];
}
