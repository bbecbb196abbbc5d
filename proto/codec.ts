/**
 * Protobuf ⇄ JSON-shaped objects for the messages of `chorus.proto`, and the `Envelope` that
 * carries a Phoenix {@linkcode Frame} when a socket is opened with `format=protobuf`.
 *
 * This is the only importer of protobufjs: everything else sees the same plain objects, with
 * the field names the JSON API uses. 64-bit integers come back as JS numbers. The schema
 * is embedded ({@linkcode CHORUS_PROTO}) and parsed once at import, with no file or network access.
 * Decoders throw `SyntaxError` on bytes that are not a valid message; encoders throw `TypeError`
 * on objects that do not fit the schema.
 * @module
 */

import protobuf from "protobufjs";
import type {
  InteractionJson,
  Priority,
  ReelStateJson,
  ReelUpdateJson,
  ReelUpdateListJson,
} from "../actors/reel_types.ts";
import type { PresenceUpdateJson } from "../actors/user_types.ts";
import { type Frame, INVALID_PAYLOAD, InvalidFrameError } from "../frame.ts";
import { CHORUS_PROTO } from "./schema.ts";

export { CHORUS_PROTO };
export type {
  InteractionJson,
  PresenceUpdateJson,
  Priority,
  ReelStateJson,
  ReelUpdateJson,
  ReelUpdateListJson,
};

/** Bytes as they arrive: a Uint8Array (HTTP body, protobufjs) or an ArrayBuffer (WebSocket). */
export type BytesLike = Uint8Array | ArrayBuffer;

/** A context sync result or change as JSON (`type`: full_context, delta or no_change). */
export interface ContextDeltaJson {
  /** The context's id; set on live changes, absent in a sync answer. */
  id?: string;
  /** What kind of message this is; it says which of `delta` and `context` is present. */
  type: string;
  /** The version the client reaches with this message. */
  version: number;
  /** The version a `delta` applies to. */
  from_version?: number;
  /** The delta: a chord object, a JSON Patch array or a merge patch. */
  delta?: unknown;
  /** The full context. */
  context?: unknown;
  /** When the change was made (ms since the Unix epoch); retained deltas only. */
  at?: number;
}

/** One retained delta as `GET /contexts/:id/deltas` lists it. */
export interface ContextDeltaEntryJson {
  /** The version the delta applies to. */
  from_version: number;
  /** The version the delta produces. */
  version: number;
  /** The chord delta from `from_version` to `version`. */
  delta: unknown;
  /** Milliseconds since the Unix epoch. */
  at: number;
}

/** The retained deltas of a context as JSON (`GET /contexts/:id/deltas`). */
export interface ContextDeltaListJson {
  /** The context's id. */
  id: string;
  /** The context's current version. */
  version: number;
  /** Oldest first. */
  deltas: ContextDeltaEntryJson[];
}

/** A change of a key as JSON; `value` is absent for deletes and expiries. */
export interface KvChangeJson {
  /** The key that changed. */
  key: string;
  /** set, delete or expire. */
  op: string;
  /** The key's version after the change. */
  version: number;
  /** The new value, for `set`. */
  value?: unknown;
  /** Milliseconds since the Unix epoch. */
  at: number;
}

type Kind =
  | "string"
  | "optString"
  | "int64"
  | "optInt64"
  | "uint64"
  | "optUint64"
  | "json"
  | "strings"
  | "priority"
  | "updateData"
  | "reelId";

interface FieldSpec {
  /** The key in the JSON object. */
  readonly key: string;
  readonly kind: Kind;
  /** The proto field (for `updateData`: the map; the JSON bytes are `<proto>_json`). */
  readonly proto: string;
}

interface MessageSpec {
  readonly name: string;
  readonly type: protobuf.Type;
  readonly fields: readonly FieldSpec[];
  readonly keys: ReadonlySet<string>;
}

/**
 * A list message: an id, a version and a repeated typed message (`ReelUpdateList`,
 * `ContextDeltaList`), each named as in its JSON shape.
 */
interface ListSpec {
  readonly name: string;
  readonly type: protobuf.Type;
  /** The id field (a string). */
  readonly id: string;
  /** The version field (a non-negative safe integer). */
  readonly version: string;
  /** A boolean field sent with the list, if any (`complete`). */
  readonly flag?: string;
  /** The repeated field and the message of its entries. */
  readonly items: string;
  readonly item: MessageSpec;
  /** An entry as its message sees it (e.g. with a fixed `type`); the entry itself by default. */
  readonly toItem?: (entry: unknown) => unknown;
  /** What is wrong with an entry beyond its message's own checks, or null. */
  readonly check?: (entry: Proto) => string | null;
  /** The JSON entry for a decoded message (e.g. with defaults filled in); as decoded by default. */
  readonly fromItem?: (decoded: Proto) => unknown;
}

type Proto = Record<string, unknown>;

const PACKAGE = "chorus.v1";
const root = protobuf.parse(CHORUS_PROTO, { keepCase: true }).root.resolveAll();
const ENVELOPE = root.lookupType(`${PACKAGE}.Envelope`);

const REEL_UPDATE = messageSpec("ReelUpdate", [
  ["id", "string"],
  ["reel_id", "reelId"],
  ["update_data", "updateData"],
  ["target_users", "strings"],
  ["target_channel", "optString"],
  ["priority", "priority"],
  ["timestamp", "int64"],
  ["seq", "uint64"],
]);
const INTERACTION = messageSpec("Interaction", [
  ["id", "string"],
  ["reel_id", "string"],
  ["type", "string"],
  ["user_id", "string"],
  ["text", "optString"],
  ["timestamp", "int64"],
]);
const REEL_STATE = messageSpec("ReelState", [
  ["reel_id", "string"],
  ["views", "uint64"],
  ["likes", "uint64"],
  ["comments", "uint64"],
  ["shares", "uint64"],
  ["updated_at", "int64"],
  ["seq", "uint64"],
]);
const PRESENCE_UPDATE = messageSpec("PresenceUpdate", [
  ["user_id", "string"],
  ["status", "string"],
  ["current_reel", "optString"],
  ["activity", "optString"],
  ["last_seen", "int64"],
]);
const CONTEXT_DELTA = messageSpec("ContextDelta", [
  ["id", "optString"],
  ["type", "string"],
  ["version", "uint64"],
  ["from_version", "optUint64"],
  ["delta", "json", "delta_json"],
  ["context", "json", "context_json"],
  ["at", "optInt64"],
]);
const CONTEXT_DELTA_LIST: ListSpec = {
  name: "ContextDeltaList",
  type: root.lookupType(`${PACKAGE}.ContextDeltaList`),
  id: "id",
  version: "version",
  items: "deltas",
  item: CONTEXT_DELTA,
  toItem: (entry) => isPlainObject(entry) ? { ...entry, type: "delta" } : entry,
  check: (entry) => Number.isSafeInteger(entry.at) ? null : "at is not a safe integer",
  fromItem: (decoded) => {
    const d = decoded as unknown as ContextDeltaJson;
    return {
      from_version: d.from_version ?? 0,
      version: d.version,
      delta: d.delta ?? null,
      at: d.at ?? 0,
    };
  },
};
const REEL_UPDATE_LIST: ListSpec = {
  name: "ReelUpdateList",
  type: root.lookupType(`${PACKAGE}.ReelUpdateList`),
  id: "reel_id",
  version: "seq",
  flag: "complete",
  items: "updates",
  item: REEL_UPDATE,
};
const KV_CHANGE = messageSpec("KvChange", [
  ["key", "string"],
  ["op", "string"],
  ["version", "uint64"],
  ["value", "json", "value_json"],
  ["at", "int64"],
]);

/** Envelope oneof cases holding a typed message, by case name. */
const TYPED_CASES: ReadonlyMap<string, MessageSpec> = new Map([
  ["reel_update", REEL_UPDATE],
  ["interaction", INTERACTION],
  ["reel_state", REEL_STATE],
  ["presence", PRESENCE_UPDATE],
  ["context_delta", CONTEXT_DELTA],
  ["kv_change", KV_CHANGE],
]);

/** Events whose payload travels as a typed message when it fits; others travel as JSON bytes. */
const EVENT_CASES: ReadonlyMap<string, string> = new Map([
  ["reel_update", "reel_update"],
  ["interaction", "interaction"],
  ["delta", "context_delta"],
  ["change", "kv_change"],
  ["phx_reply", "reply"],
]);

const PRIORITY_NUMBERS: ReadonlyMap<unknown, number> = new Map([
  ["low", 0],
  ["normal", 1],
  ["high", 2],
  ["critical", 3],
]);
const PRIORITY_NAMES: readonly Priority[] = ["low", "normal", "high", "critical"];
/** A reel id Kronop's `int32 reel_id` can hold: canonical decimal, non-zero, in int32 range. */
const INT32_ID = /^-?[1-9][0-9]{0,9}$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes a reel update.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodeReelUpdate(update: ReelUpdateJson): Uint8Array<ArrayBuffer> {
  return encodeTyped(REEL_UPDATE, update);
}

/**
 * Decodes a reel update; `update_data` comes back as the JSON object that was encoded.
 * @throws {SyntaxError} When the bytes are not a valid `ReelUpdate`.
 */
export function decodeReelUpdate(bytes: BytesLike): ReelUpdateJson {
  return decodeTyped(REEL_UPDATE, bytes) as unknown as ReelUpdateJson;
}

/**
 * Encodes an interaction.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodeInteraction(interaction: InteractionJson): Uint8Array<ArrayBuffer> {
  return encodeTyped(INTERACTION, interaction);
}

/**
 * Decodes an interaction.
 * @throws {SyntaxError} When the bytes are not a valid `Interaction`.
 */
export function decodeInteraction(bytes: BytesLike): InteractionJson {
  return decodeTyped(INTERACTION, bytes) as unknown as InteractionJson;
}

/**
 * Encodes a reel's updates as a `ReelUpdateList`.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodeReelUpdateList(list: ReelUpdateListJson): Uint8Array<ArrayBuffer> {
  return encodeList(REEL_UPDATE_LIST, list);
}

/**
 * Decodes a `ReelUpdateList` into the JSON shape of `GET /reels/:id/updates`.
 * @throws {SyntaxError} When the bytes are not a valid `ReelUpdateList`.
 */
export function decodeReelUpdateList(bytes: BytesLike): ReelUpdateListJson {
  return decodeList(REEL_UPDATE_LIST, bytes) as unknown as ReelUpdateListJson;
}

/**
 * Encodes a reel's state; keys beyond the schema's are not encoded.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodeReelState(state: ReelStateJson): Uint8Array<ArrayBuffer> {
  return encodeTyped(REEL_STATE, state);
}

/**
 * Decodes a reel's state.
 * @throws {SyntaxError} When the bytes are not a valid `ReelState`.
 */
export function decodeReelState(bytes: BytesLike): ReelStateJson {
  return decodeTyped(REEL_STATE, bytes) as unknown as ReelStateJson;
}

/**
 * Encodes a presence update.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodePresenceUpdate(presence: PresenceUpdateJson): Uint8Array<ArrayBuffer> {
  return encodeTyped(PRESENCE_UPDATE, presence);
}

/**
 * Decodes a presence update.
 * @throws {SyntaxError} When the bytes are not a valid `PresenceUpdate`.
 */
export function decodePresenceUpdate(bytes: BytesLike): PresenceUpdateJson {
  return decodeTyped(PRESENCE_UPDATE, bytes) as unknown as PresenceUpdateJson;
}

/**
 * Encodes a context sync result or change; `delta` and `context` travel as JSON bytes.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodeContextDelta(delta: ContextDeltaJson): Uint8Array<ArrayBuffer> {
  return encodeTyped(CONTEXT_DELTA, delta);
}

/**
 * Decodes a context sync result or change.
 * @throws {SyntaxError} When the bytes are not a valid `ContextDelta` or hold invalid JSON.
 */
export function decodeContextDelta(bytes: BytesLike): ContextDeltaJson {
  return decodeTyped(CONTEXT_DELTA, bytes) as unknown as ContextDeltaJson;
}

/**
 * Encodes the retained deltas of a context: each entry a `ContextDelta` of type `delta`.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodeContextDeltaList(list: ContextDeltaListJson): Uint8Array<ArrayBuffer> {
  return encodeList(CONTEXT_DELTA_LIST, list);
}

/**
 * Decodes the retained deltas of a context into the JSON shape of `GET /contexts/:id/deltas`.
 * @throws {SyntaxError} When the bytes are not a valid `ContextDeltaList` or hold invalid JSON.
 */
export function decodeContextDeltaList(bytes: BytesLike): ContextDeltaListJson {
  return decodeList(CONTEXT_DELTA_LIST, bytes) as unknown as ContextDeltaListJson;
}

/**
 * Encodes a key change; `value` travels as JSON bytes.
 * @throws {TypeError} When a field has the wrong type or a number is not a safe integer.
 */
export function encodeKvChange(change: KvChangeJson): Uint8Array<ArrayBuffer> {
  return encodeTyped(KV_CHANGE, change);
}

/**
 * Decodes a key change.
 * @throws {SyntaxError} When the bytes are not a valid `KvChange` or hold invalid JSON.
 */
export function decodeKvChange(bytes: BytesLike): KvChangeJson {
  return decodeTyped(KV_CHANGE, bytes) as unknown as KvChangeJson;
}

/**
 * Encodes a frame as one `Envelope`, the binary frame of a `format=protobuf` socket.
 *
 * A null join_ref or ref leaves the `optional` field unset (an empty string stays an empty
 * string). The payload becomes a typed message when the event has one (`reel_update`,
 * `interaction`, `delta`, `change`, `phx_reply`) and the payload fits it exactly — right types,
 * safe integers, no other keys — so decoding gives back an equal object; otherwise it is sent as
 * JSON bytes, and an ArrayBuffer payload as raw bytes.
 *
 * @throws {TypeError} When the payload cannot be serialized as JSON (a cycle, a BigInt).
 */
export function encodeEnvelope(frame: Frame): Uint8Array<ArrayBuffer> {
  const envelope: Proto = { topic: frame.topic, event: frame.event };
  if (frame.joinRef !== null) envelope.join_ref = frame.joinRef;
  if (frame.ref !== null) envelope.ref = frame.ref;
  const payload = frame.payload;
  if (payload instanceof ArrayBuffer) {
    envelope.binary = new Uint8Array(payload);
    return encodeMessage(ENVELOPE, envelope);
  }
  const typed = typedPayload(frame.event, payload);
  if (typed !== null) envelope[typed[0]] = typed[1];
  else envelope.json = encoder.encode(JSON.stringify(payload));
  return encodeMessage(ENVELOPE, envelope);
}

/**
 * Decodes one `Envelope` into a frame: unset refs become null, a typed payload becomes its JSON
 * object, JSON bytes must hold a JSON object, raw bytes become an ArrayBuffer.
 *
 * @throws {SyntaxError} When the bytes are not an `Envelope`, it has no payload, or the payload is
 *   invalid.
 */
export function decodeEnvelope(bytes: BytesLike): Frame {
  const message = decodeMessage(ENVELOPE, bytes);
  const joinRef = optionalString(message, "join_ref");
  const ref = optionalString(message, "ref");
  const topic = String(message.topic ?? "");
  const event = String(message.event ?? "");
  const which = message.payload;
  let payload: Frame["payload"];
  if (which === "json") {
    const value = parseJson(message.json as Uint8Array, "Envelope.json");
    if (!isPlainObject(value)) {
      throw new InvalidFrameError(
        `Cannot decode Envelope "${event}": payload is not a JSON object`,
        ref === null ? null : { joinRef, ref, topic },
        INVALID_PAYLOAD,
      );
    }
    payload = value;
  } else if (which === "binary") {
    payload = new Uint8Array(message.binary as Uint8Array).buffer;
  } else if (which === "reply") {
    payload = replyFromProto(message.reply as Proto);
  } else if (typeof which === "string" && TYPED_CASES.has(which)) {
    payload = fromProto(TYPED_CASES.get(which)!, message[which] as Proto);
  } else {
    throw new SyntaxError(`Cannot decode Envelope "${event}": it has no payload`);
  }
  return { joinRef, ref, topic, event, payload };
}

/** The Envelope oneof case and message for a payload that fits its event's typed message. */
function typedPayload(event: string, payload: Proto): [string, Proto] | null {
  const field = EVENT_CASES.get(event);
  if (field === undefined) return null;
  if (field === "reply") {
    const reply = replyToProto(payload);
    return reply === null ? null : [field, reply];
  }
  const spec = TYPED_CASES.get(field);
  if (spec === undefined || problemOf(spec, payload, true) !== null) return null;
  return [field, toProto(spec, payload)];
}

function messageSpec(
  name: string,
  fields: readonly (readonly [string, Kind, string?])[],
): MessageSpec {
  const type = root.lookupType(`${PACKAGE}.${name}`);
  const specs = fields.map(([key, kind, proto]) => ({ key, kind, proto: proto ?? key }));
  for (const { proto, kind } of specs) {
    if (type.fields[proto] === undefined) {
      throw new Error(`Cannot load ${name}: chorus.proto has no field "${proto}"`);
    }
    if (kind === "reelId" && type.fields[`${proto}_int32`] === undefined) {
      throw new Error(`Cannot load ${name}: chorus.proto has no field "${proto}_int32"`);
    }
    if (kind === "updateData" && type.fields[`${proto}_json`] === undefined) {
      throw new Error(`Cannot load ${name}: chorus.proto has no field "${proto}_json"`);
    }
  }
  return { name, type, fields: specs, keys: new Set(specs.map((f) => f.key)) };
}

function encodeTyped(spec: MessageSpec, value: object): Uint8Array<ArrayBuffer> {
  const problem = problemOf(spec, value, false);
  if (problem !== null) throw new TypeError(`Cannot encode ${spec.name}: ${problem}`);
  return encodeMessage(spec.type, toProto(spec, value as Proto));
}

function decodeTyped(spec: MessageSpec, bytes: BytesLike): Proto {
  return fromProto(spec, decodeMessage(spec.type, bytes));
}

function encodeList(spec: ListSpec, list: object): Uint8Array<ArrayBuffer> {
  const { name, id, version, flag, items, item } = spec;
  if (!isPlainObject(list) || typeof list[id] !== "string" || !isSafeUnsigned(list[version])) {
    throw new TypeError(`Cannot encode ${name}: ${id} or ${version} has the wrong type`);
  }
  const entries = list[items];
  if (!Array.isArray(entries)) throw new TypeError(`Cannot encode ${name}: ${items} is not a list`);
  const encoded = entries.map((entry: unknown, i) => {
    const value = spec.toItem ? spec.toItem(entry) : entry;
    const problem = problemOf(item, value, false) ?? spec.check?.(value as Proto) ?? null;
    if (problem !== null) throw new TypeError(`Cannot encode ${name}.${items}[${i}]: ${problem}`);
    return toProto(item, value as Proto);
  });
  const message: Proto = { [id]: list[id], [version]: list[version] };
  if (flag !== undefined) message[flag] = list[flag] === true;
  message[items] = encoded;
  return encodeMessage(spec.type, message);
}

function decodeList(spec: ListSpec, bytes: BytesLike): Proto {
  const { name, id, version, flag, items, item } = spec;
  const message = decodeMessage(spec.type, bytes);
  const entries = Array.isArray(message[items]) ? message[items] as Proto[] : [];
  const out: Proto = {
    [id]: typeof message[id] === "string" ? message[id] : "",
    [version]: toSafeNumber(message[version], `${name}.${version}`),
  };
  if (flag !== undefined) out[flag] = message[flag] === true;
  out[items] = entries.map((m) => {
    const decoded = fromProto(item, m);
    return spec.fromItem ? spec.fromItem(decoded) : decoded;
  });
  return out;
}

function encodeMessage(type: protobuf.Type, message: Proto): Uint8Array<ArrayBuffer> {
  // protobufjs may hand out a slice of a shared pool; copy so `.buffer` is this message alone.
  return new Uint8Array(type.encode(message).finish());
}

function decodeMessage(type: protobuf.Type, bytes: BytesLike): Proto {
  let view: Uint8Array;
  if (bytes instanceof Uint8Array) view = bytes;
  else if (bytes instanceof ArrayBuffer) view = new Uint8Array(bytes);
  else throw new SyntaxError(`Cannot decode ${type.name}: not bytes`);
  try {
    return type.decode(view) as unknown as Proto;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new SyntaxError(`Cannot decode ${type.name}: ${reason}`, { cause });
  }
}

/**
 * Why `value` cannot be encoded as `spec`, or null when it can. `strict` also demands that decoding
 * gives back an equal object: no unknown keys, no empty lists (they decode as absent).
 */
function problemOf(spec: MessageSpec, value: unknown, strict: boolean): string | null {
  if (!isPlainObject(value)) return "not a plain object";
  if (strict) {
    for (const key of Object.keys(value)) {
      if (!spec.keys.has(key)) return `unknown field "${key}"`;
    }
  }
  for (const { key, kind } of spec.fields) {
    const v = value[key];
    switch (kind) {
      case "string":
        if (typeof v !== "string") return `${key} is not a string`;
        break;
      case "optString":
        if (v !== undefined && typeof v !== "string") return `${key} is not a string`;
        break;
      case "int64":
        if (!Number.isSafeInteger(v)) return `${key} is not a safe integer`;
        break;
      case "optInt64":
        if (v !== undefined && !Number.isSafeInteger(v)) return `${key} is not a safe integer`;
        break;
      case "uint64":
        if (!isSafeUnsigned(v)) return `${key} is not a non-negative safe integer`;
        break;
      case "optUint64":
        if (v !== undefined && !isSafeUnsigned(v)) {
          return `${key} is not a non-negative safe integer`;
        }
        break;
      case "json":
        break; // any value; serialized as the JSON text frame would
      case "strings":
        if (v === undefined) break;
        if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
          return `${key} is not a list of strings`;
        }
        if (strict && v.length === 0) return `${key} is empty`;
        break;
      case "priority":
        if (!PRIORITY_NUMBERS.has(v)) return `${key} is not low, normal, high or critical`;
        break;
      case "updateData":
        if (!isPlainObject(v)) return `${key} is not a JSON object`;
        break;
      case "reelId":
        if (typeof v !== "string") return `${key} is not a string`;
        break;
    }
  }
  return null;
}

/** The protobufjs message for a JSON object that passed {@linkcode problemOf}. */
function toProto(spec: MessageSpec, value: Proto): Proto {
  const out: Proto = {};
  for (const { key, kind, proto } of spec.fields) {
    const v = value[key];
    if (v === undefined) continue;
    switch (kind) {
      case "json": {
        const text = JSON.stringify(v);
        if (text !== undefined) out[proto] = encoder.encode(text);
        break;
      }
      case "priority":
        out[proto] = PRIORITY_NUMBERS.get(v);
        break;
      case "updateData":
        if (isStringMap(v as Proto)) out[proto] = v;
        else out[`${proto}_json`] = encoder.encode(JSON.stringify(v));
        break;
      case "reelId": {
        out[proto] = v;
        // Kronop's int32 field too, when the id is one, so Kronop's decoders read it.
        const n = INT32_ID.test(v as string) ? Number(v) : 0;
        if (n === (n | 0) && n !== 0) out[`${proto}_int32`] = n;
        break;
      }
      default:
        out[proto] = v;
    }
  }
  return out;
}

/** The JSON object for a decoded protobufjs message. */
function fromProto(spec: MessageSpec, message: Proto): Proto {
  const out: Proto = {};
  for (const { key, kind, proto } of spec.fields) {
    const v = message[proto];
    const where = `${spec.name}.${proto}`;
    switch (kind) {
      case "string":
        out[key] = typeof v === "string" ? v : "";
        break;
      case "optString":
        if (Object.hasOwn(message, proto) && typeof v === "string") out[key] = v;
        break;
      case "int64":
      case "uint64":
        out[key] = toSafeNumber(v, where);
        break;
      case "optInt64":
      case "optUint64":
        // Presence is an own property: protobufjs gives unset 64-bit fields a Long zero default.
        if (Object.hasOwn(message, proto)) out[key] = toSafeNumber(v, where);
        break;
      case "json":
        if (isNonEmptyBytes(v)) out[key] = parseJson(v, where);
        break;
      case "strings":
        if (Array.isArray(v) && v.length > 0) out[key] = [...v];
        break;
      case "priority": {
        const name = typeof v === "number" ? PRIORITY_NAMES[v] : PRIORITY_NAMES[0];
        if (name === undefined) {
          throw new SyntaxError(`Cannot decode ${where}: unknown priority ${v}`);
        }
        out[key] = name;
        break;
      }
      case "reelId": {
        // Chorus's string field; else Kronop's int32 in decimal (0 = unset).
        const n = message[`${proto}_int32`];
        if (typeof v === "string" && v !== "") out[key] = v;
        else out[key] = typeof n === "number" && n !== 0 ? String(n) : "";
        break;
      }
      case "updateData": {
        const json = message[`${proto}_json`];
        if (isNonEmptyBytes(json)) {
          const data = parseJson(json, `${where}_json`);
          if (!isPlainObject(data)) {
            throw new SyntaxError(`Cannot decode ${where}_json: not a JSON object`);
          }
          out[key] = data;
        } else {
          // fromEntries defines own properties, so even a "__proto__" key stays data.
          out[key] = Object.fromEntries(Object.entries((v ?? {}) as Record<string, string>));
        }
        break;
      }
    }
  }
  return out;
}

/** A `phx_reply` payload `{status, response}` as a `Reply`, or null when it does not fit one. */
function replyToProto(payload: Proto): Proto | null {
  const keys = Object.keys(payload);
  if (keys.length !== 2 || typeof payload.status !== "string" || !("response" in payload)) {
    return null;
  }
  const response = payload.response;
  if (response instanceof ArrayBuffer) {
    return { status: payload.status, response_binary: new Uint8Array(response) };
  }
  if (response === undefined || ArrayBuffer.isView(response)) return null;
  const text = JSON.stringify(response);
  if (text === undefined) return null;
  return { status: payload.status, response_json: encoder.encode(text) };
}

function replyFromProto(message: Proto): Proto {
  const status = typeof message.status === "string" ? message.status : "";
  if (message.response === "response_binary") {
    return { status, response: new Uint8Array(message.response_binary as Uint8Array).buffer };
  }
  if (message.response === "response_json") {
    return {
      status,
      response: parseJson(message.response_json as Uint8Array, "Reply.response_json"),
    };
  }
  return { status, response: {} };
}

function parseJson(bytes: Uint8Array, where: string): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch (cause) {
    throw new SyntaxError(`Cannot decode ${where}: not UTF-8 JSON`, { cause });
  }
}

/** A proto3 `optional string` field: its value when set (even ""), null when unset. */
function optionalString(message: Proto, field: string): string | null {
  const value = message[field];
  return Object.hasOwn(message, field) && typeof value === "string" ? value : null;
}

function toSafeNumber(value: unknown, where: string): number {
  let n = Number.NaN;
  if (typeof value === "number") n = value;
  else if (value === null || value === undefined) n = 0;
  else if (typeof value === "object" && "low" in value && "high" in value) {
    // A Long: exact below 2^53, and never rounded back into the safe range above it.
    const { low, high, unsigned } = value as protobuf.Long;
    n = (unsigned ? high >>> 0 : high) * 2 ** 32 + (low >>> 0);
  }
  if (!Number.isSafeInteger(n)) {
    throw new SyntaxError(`Cannot decode ${where}: not a safe integer`);
  }
  return n;
}

function isSafeUnsigned(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isNonEmptyBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length > 0;
}

function isPlainObject(value: unknown): value is Proto {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Whether every value is a string and the object can go through the proto map unchanged. */
function isStringMap(value: Proto): boolean {
  for (const key of Object.keys(value)) {
    if (key === "__proto__" || typeof value[key] !== "string") return false;
  }
  return true;
}
