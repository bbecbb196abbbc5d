/**
 * The socket protocol's message, {@linkcode Frame}, and the error for a frame whose fields have the
 * wrong type, {@linkcode InvalidFrameError}. Both wire codecs decode to these: `realtime/phoenix.ts`
 * (Phoenix JSON text and binary frames) and `proto/codec.ts` (the protobuf `Envelope`). They live in
 * their own module so that neither codec depends on the other; `realtime/phoenix.ts` re-exports
 * them.
 * @module
 */

/**
 * One Phoenix message, `[join_ref, ref, topic, event, payload]`.
 *
 * `payload` is a JSON object for text frames and the raw bytes for binary ones. A null `joinRef`
 * or `ref` is the protocol's "none" (heartbeats, server pushes, broadcasts).
 */
export interface Frame {
  /** The ref of the channel join this message belongs to, or null. */
  joinRef: string | null;
  /** The ref a reply must echo, or null for pushes and broadcasts. */
  ref: string | null;
  /** The topic, such as `"reel:42"` or `"phoenix"`. */
  topic: string;
  /** The event, such as `"phx_join"` or `"reel_update"`. */
  event: string;
  /** A JSON object (text frames) or the raw bytes (binary frames). */
  payload: Record<string, unknown> | ArrayBuffer;
}

/** Where an error reply to a rejected frame goes: its refs and topic, as the client sent them. */
export interface ReplyTarget {
  /** The frame's join_ref, or null when it was null or not a string. */
  joinRef: string | null;
  /** The ref the client waits on. */
  ref: string;
  /** The frame's topic. */
  topic: string;
}

/**
 * A frame that parsed as `[join_ref, ref, topic, event, payload]` but has a field of the wrong
 * type. Unlike an unparseable frame it does not end the socket: the session answers `reply` with
 * `{"status":"error","response":{"reason": reason}}`, or drops the frame when `reply` is null (no
 * string ref and topic to answer on).
 */
export class InvalidFrameError extends SyntaxError {
  /** Where to send the error reply, or null when the frame cannot be answered. */
  readonly reply: ReplyTarget | null;
  /** The reply's `reason`: `"invalid payload"` or `"invalid frame"`. */
  readonly reason: string;

  constructor(message: string, reply: ReplyTarget | null, reason: string) {
    super(message);
    this.name = "InvalidFrameError";
    this.reply = reply;
    this.reason = reason;
  }
}

/** Reason of the error reply to a frame whose payload is not a JSON object. */
export const INVALID_PAYLOAD = "invalid payload";
/** Reason of the error reply to a frame whose join_ref or event has the wrong type. */
export const INVALID_FRAME = "invalid frame";
