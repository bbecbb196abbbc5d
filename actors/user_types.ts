/**
 * The plain JSON shapes of the user product, as the REST API, socket topics and the protobuf codec
 * carry them. They live with the user actor that produces them (house rule 14); `proto/`,
 * `realtime/` and `routes/` import them from here.
 * @module
 */

/** A user's presence as JSON. */
export interface PresenceUpdateJson {
  /** The user the presence is about. */
  user_id: string;
  /** One of online, away or offline. */
  status: string;
  /** The reel the user is on now, if any. */
  current_reel?: string;
  /** A free-form note from the client about what the user is doing. */
  activity?: string;
  /** Milliseconds since the Unix epoch. */
  last_seen: number;
}
