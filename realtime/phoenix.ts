/**
 * Phoenix Channels V2 frames: the JSON text array and the binary layout, as bytes ⇄ {@linkcode Frame}.
 *
 * The socket layer speaks to the official `phoenix` client through this module only, so the wire
 * format stays at the edge (house rule 8): everything behind it sees a `Frame`. Decoders throw
 * `SyntaxError` on a malformed frame and `RangeError` on one over the size limit
 * ({@linkcode CLOSE_MESSAGE_TOO_BIG}). A frame that cannot be parsed at all (not JSON, not a
 * 5-element array, a bad binary layout) closes the socket with {@linkcode CLOSE_INVALID_PAYLOAD};
 * a well-formed 5-element array with a field of the wrong type (a payload that is not an object,
 * a numeric join_ref…) throws the {@linkcode InvalidFrameError} subclass, which the session answers
 * with an error reply (or drops, when it has no ref to answer) and keeps the socket.
 * See docs/socket.md (the protocol) and docs/architecture.md (house rule 8).
 * @module
 */

import {
  type Frame,
  INVALID_FRAME,
  INVALID_PAYLOAD,
  InvalidFrameError,
  type ReplyTarget,
} from "../frame.ts";

export { INVALID_FRAME, INVALID_PAYLOAD, InvalidFrameError };
export type { Frame, ReplyTarget };

/** Close code 1000: normal closure. Clients up to phoenix 1.8.15 do not reconnect after it. */
export const CLOSE_NORMAL = 1000;
/** Close code 1001: going away (kick, shutdown); the client reconnects. */
export const CLOSE_GOING_AWAY = 1001;
/** Close code 1007: a frame could not be decoded (a `SyntaxError` from this module). */
export const CLOSE_INVALID_PAYLOAD = 1007;
/** Close code 1008: policy violation (auth, rate limit, forbidden topic). */
export const CLOSE_POLICY_VIOLATION = 1008;
/** Close code 1009: a frame was over the size limit (a `RangeError` from a decoder). */
export const CLOSE_MESSAGE_TOO_BIG = 1009;
/** Close code 1011: unexpected server error; the client reconnects. */
export const CLOSE_INTERNAL_ERROR = 1011;
/** Close code 1012: service restart (draining); the client reconnects. */
export const CLOSE_SERVICE_RESTART = 1012;
/** Close code 1013: try again later; used for slow consumers (docs/socket.md). */
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** The reply event; its payload is `{status, response}`. */
export const PHX_REPLY = "phx_reply";
/** The join event; a join has `join_ref === ref`. */
export const PHX_JOIN = "phx_join";
/** The leave event. */
export const PHX_LEAVE = "phx_leave";
/** The event that tells a client its channel crashed; the client rejoins. */
export const PHX_ERROR = "phx_error";
/** The event that tells a client its channel ended; the client does not rejoin. */
export const PHX_CLOSE = "phx_close";
/** The heartbeat event, sent on {@linkcode PHOENIX_TOPIC}. */
export const HEARTBEAT = "heartbeat";
/** The socket-level topic of heartbeats. */
export const PHOENIX_TOPIC = "phoenix";

const KIND_PUSH = 0;
const KIND_REPLY = 1;
const KIND_BROADCAST = 2;
const MAX_FIELD_BYTES = 255;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses a V2 JSON text frame `[join_ref, ref, topic, event, payload]`.
 *
 * @param text The WebSocket text message.
 * @param maxBytes Optional limit on the frame's UTF-8 size, checked before parsing.
 * @returns The frame; its payload is a plain object.
 * @throws {SyntaxError} When the text is not JSON or not a 5-element array.
 * @throws {InvalidFrameError} (a `SyntaxError`) When it is a 5-element array but a ref is neither
 *   a string nor null, topic or event is not a string, or the payload is not a JSON object.
 * @throws {RangeError} When the frame is larger than `maxBytes`.
 */
export function decodeText(text: string, maxBytes?: number): Frame {
  if (maxBytes !== undefined && exceedsUtf8(text, maxBytes)) {
    throw new RangeError(`Cannot decode frame: it is larger than ${maxBytes} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new SyntaxError("Cannot decode frame: not JSON", { cause });
  }
  if (!Array.isArray(value) || value.length !== 5) {
    throw new SyntaxError("Cannot decode frame: expected [join_ref, ref, topic, event, payload]");
  }
  const [joinRef, ref, topic, event, payload] = value;
  const target: ReplyTarget | null = typeof ref === "string" && typeof topic === "string"
    ? { joinRef: isRef(joinRef) ? joinRef : null, ref, topic }
    : null;
  const invalid = (message: string, reason = INVALID_FRAME) =>
    new InvalidFrameError(`Cannot decode frame: ${message}`, target, reason);
  if (!isRef(joinRef)) throw invalid("join_ref is not a string or null");
  if (!isRef(ref)) throw invalid("ref is not a string or null");
  if (typeof topic !== "string") throw invalid("topic is not a string");
  if (typeof event !== "string") throw invalid("event is not a string");
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw invalid(`payload of "${event}" is not a JSON object`, INVALID_PAYLOAD);
  }
  return { joinRef, ref, topic, event, payload };
}

/**
 * Parses a client→server binary push: `0, len(join_ref), len(ref), len(topic), len(event)`, the
 * four UTF-8 strings, then the raw payload up to the end.
 *
 * An empty join_ref or ref becomes null, mirroring the encoders, which write null as length 0.
 *
 * @param buf The WebSocket binary message (`binaryType = "arraybuffer"`).
 * @param maxBytes Optional limit on the frame's size.
 * @returns The frame; its payload is a copy of the payload bytes.
 * @throws {SyntaxError} On another kind byte, a truncated header, lengths past the end, or strings
 *   that are not UTF-8.
 * @throws {RangeError} When the frame is larger than `maxBytes`.
 */
export function decodeBinary(buf: ArrayBuffer, maxBytes?: number): Frame {
  if (!(buf instanceof ArrayBuffer)) {
    throw new SyntaxError("Cannot decode binary frame: not an ArrayBuffer");
  }
  if (maxBytes !== undefined && buf.byteLength > maxBytes) {
    throw new RangeError(`Cannot decode binary frame: it is larger than ${maxBytes} bytes`);
  }
  const bytes = new Uint8Array(buf);
  if (bytes.length < 5) throw new SyntaxError("Cannot decode binary frame: truncated header");
  if (bytes[0] !== KIND_PUSH) {
    throw new SyntaxError(`Cannot decode binary frame: kind ${bytes[0]} is not a push (0)`);
  }
  let offset = 5;
  const fields: string[] = [];
  for (let i = 1; i <= 4; i++) {
    const end = offset + bytes[i];
    if (end > bytes.length) {
      throw new SyntaxError("Cannot decode binary frame: field lengths run past the end");
    }
    try {
      fields.push(decoder.decode(bytes.subarray(offset, end)));
    } catch (cause) {
      throw new SyntaxError("Cannot decode binary frame: a field is not UTF-8", { cause });
    }
    offset = end;
  }
  const [joinRef, ref, topic, event] = fields;
  return {
    joinRef: joinRef === "" ? null : joinRef,
    ref: ref === "" ? null : ref,
    topic,
    event,
    payload: buf.slice(offset),
  };
}

/**
 * Serializes a frame as a V2 JSON text frame.
 *
 * @throws {TypeError} When the payload is an ArrayBuffer: binary payloads need the binary encoders.
 */
export function encodeText(frame: Frame): string {
  if (frame.payload instanceof ArrayBuffer) {
    throw new TypeError(`Cannot encode frame "${frame.event}" as text: its payload is binary`);
  }
  return JSON.stringify([frame.joinRef, frame.ref, frame.topic, frame.event, frame.payload]);
}

/**
 * Encodes a server→client binary push: `0, len(join_ref), len(topic), len(event)` (no ref).
 *
 * @param joinRef The channel's join_ref; null is written as an empty string.
 * @throws {RangeError} When a string field is over 255 UTF-8 bytes.
 */
export function encodeBinaryPush(
  joinRef: string | null,
  topic: string,
  event: string,
  payload: Uint8Array | ArrayBuffer,
): Uint8Array<ArrayBuffer> {
  return encodeBinary(KIND_PUSH, [joinRef ?? "", topic, event], payload);
}

/**
 * Encodes a server→client binary reply: `1, len(join_ref), len(ref), len(topic), len(status)`.
 * The client resolves the push with `{status, response: ArrayBuffer}`.
 *
 * @throws {RangeError} When a string field is over 255 UTF-8 bytes.
 */
export function encodeBinaryReply(
  joinRef: string | null,
  ref: string | null,
  topic: string,
  status: string,
  payload: Uint8Array | ArrayBuffer,
): Uint8Array<ArrayBuffer> {
  return encodeBinary(KIND_REPLY, [joinRef ?? "", ref ?? "", topic, status], payload);
}

/**
 * Encodes a server→client binary broadcast: `2, len(topic), len(event)`.
 *
 * @throws {RangeError} When a string field is over 255 UTF-8 bytes.
 */
export function encodeBinaryBroadcast(
  topic: string,
  event: string,
  payload: Uint8Array | ArrayBuffer,
): Uint8Array<ArrayBuffer> {
  return encodeBinary(KIND_BROADCAST, [topic, event], payload);
}

/**
 * Builds a `phx_reply` frame: `[join_ref, ref, topic, "phx_reply", {status, response}]`.
 *
 * Replies echo the join_ref and ref of the message they answer, as the same strings.
 */
export function reply(
  joinRef: string | null,
  ref: string | null,
  topic: string,
  status: string,
  response: Record<string, unknown>,
): Frame {
  return { joinRef, ref, topic, event: PHX_REPLY, payload: { status, response } };
}

/** Builds a channel push `[join_ref, null, topic, event, payload]`, tagged with the current join. */
export function push(
  joinRef: string | null,
  topic: string,
  event: string,
  payload: Record<string, unknown> | ArrayBuffer,
): Frame {
  return { joinRef, ref: null, topic, event, payload };
}

/** Builds a broadcast `[null, null, topic, event, payload]`, accepted by every join of the topic. */
export function broadcast(
  topic: string,
  event: string,
  payload: Record<string, unknown> | ArrayBuffer,
): Frame {
  return { joinRef: null, ref: null, topic, event, payload };
}

function isRef(value: unknown): value is string | null {
  return value === null || typeof value === "string";
}

function encodeBinary(
  kind: number,
  strings: readonly string[],
  payload: Uint8Array | ArrayBuffer,
): Uint8Array<ArrayBuffer> {
  const parts = strings.map((s) => encoder.encode(s));
  const body = payload instanceof ArrayBuffer ? new Uint8Array(payload) : payload;
  let size = 1 + parts.length + body.length;
  for (const [i, part] of parts.entries()) {
    if (part.length > MAX_FIELD_BYTES) {
      throw new RangeError(
        `Cannot encode binary frame field "${
          strings[i].slice(0, 32)
        }": it is ${part.length} bytes, the limit is ${MAX_FIELD_BYTES}`,
      );
    }
    size += part.length;
  }
  const out = new Uint8Array(size);
  out[0] = kind;
  let offset = 1 + parts.length;
  for (const [i, part] of parts.entries()) {
    out[1 + i] = part.length;
    out.set(part, offset);
    offset += part.length;
  }
  out.set(body, offset);
  return out;
}

/** Whether `text` takes more than `limit` bytes as UTF-8, counting only as far as needed. */
function exceedsUtf8(text: string, limit: number): boolean {
  if (text.length > limit) return true; // every UTF-16 unit takes at least one byte
  if (text.length * 3 <= limit) return false; // and at most three
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4; // a surrogate pair
      i++;
    } else bytes += 3; // the rest of the BMP; a lone surrogate becomes U+FFFD
    if (bytes > limit) return true;
  }
  return false;
}
