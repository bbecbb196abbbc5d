/**
 * Value encoding: JSON text, optionally gzip/deflate compressed, split into chunks that fit Deno
 * KV's 64 KiB value limit. Encoding happens once per write, before the actor's mailbox, so the
 * single-threaded part of a write stays cheap.
 * @module
 */
import { deflateSync, gunzipSync, gzipSync, inflateSync } from "node:zlib";
import { ChorusError } from "../errors.ts";
import type { Compression, ResolvedConfig } from "../config.ts";

/** How stored bytes are encoded. */
export type Encoding = "json" | "gzip" | "deflate";

/** Largest stored (encoded) value: 512 KiB. */
export const MAX_STORED_BYTES = 512 * 1024;
/** Bytes per chunk, leaving room under KV's 65,536-byte value limit for the record around it. */
export const CHUNK_BYTES = 60_000;

/** Deepest nesting of arrays and objects accepted in a stored value. */
export const MAX_JSON_DEPTH = 256;

/**
 * Checks that a value is storable JSON: nesting at most {@linkcode MAX_JSON_DEPTH} deep (deeper
 * values cannot be serialized back reliably) and only finite numbers (JSON has no Infinity or
 * NaN; `1e400` parses to Infinity and would come back as null). Iterative, so a hostile depth
 * cannot exhaust the stack here.
 * @throws {ChorusError} `invalid_request`
 */
export function assertStorableJson(value: unknown, what = "value"): void {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v === "number" && !Number.isFinite(v)) {
      throw new ChorusError(
        "invalid_request",
        `Cannot store ${what}: it holds a number JSON cannot represent (${v})`,
      );
    }
    if (v === null || typeof v !== "object") continue;
    if (depth >= MAX_JSON_DEPTH) {
      throw new ChorusError(
        "invalid_request",
        `Cannot store ${what}: it nests deeper than ${MAX_JSON_DEPTH} levels`,
        { details: { max_depth: MAX_JSON_DEPTH } },
      );
    }
    for (const child of Object.values(v)) {
      if (child !== null && (typeof child === "object" || typeof child === "number")) {
        stack.push([child, depth + 1]);
      }
    }
  }
}

/**
 * A deeply frozen copy of a value as JSON would store it, made in one walk: the checks of
 * {@linkcode assertStorableJson}, JSON's own rules (`toJSON` is called, `undefined` members are
 * left out and become `null` in arrays, only own enumerable keys are kept, own `"__proto__"` keys
 * stay plain properties) and a freeze of every node. What a write keeps in an actor's cache is then
 * exactly what a reload from KV gives, and callers cannot change it afterwards. Much cheaper than
 * `structuredClone` plus a separate freeze for the small values most writes carry.
 * @throws {ChorusError} `invalid_request` for a non-finite number, nesting deeper than
 * {@linkcode MAX_JSON_DEPTH}, a cycle, or a function, symbol or bigint where a value belongs
 */
export function frozenJsonCopy<T>(value: T, what = "value"): T {
  const copy = copyNode(value, "", 0, what);
  if (copy === undefined) {
    throw new ChorusError("invalid_request", `Cannot store ${what}: it is not a JSON value`);
  }
  return copy as T;
}

function copyNode(value: unknown, key: string, depth: number, what: string): unknown {
  if (
    value !== null && typeof value === "object" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  ) {
    value = (value as { toJSON: (key: string) => unknown }).toJSON(key);
  }
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!Number.isFinite(value)) {
        throw new ChorusError(
          "invalid_request",
          `Cannot store ${what}: it holds a number JSON cannot represent (${value})`,
        );
      }
      return value;
    case "undefined":
      return undefined;
    case "object":
      break;
    default:
      throw new ChorusError(
        "invalid_request",
        `Cannot store ${what}: it holds a ${typeof value}, which JSON cannot represent`,
      );
  }
  if (value === null) return null;
  if (depth >= MAX_JSON_DEPTH) {
    throw new ChorusError(
      "invalid_request",
      `Cannot store ${what}: it nests deeper than ${MAX_JSON_DEPTH} levels`,
      { details: { max_depth: MAX_JSON_DEPTH } },
    );
  }
  if (Array.isArray(value)) {
    const out = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      out[i] = copyNode(value[i], String(i), depth + 1, what) ?? null;
    }
    return Object.freeze(out);
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    const v = copyNode((value as Record<string, unknown>)[k], k, depth + 1, what);
    if (v === undefined) continue;
    if (k === "__proto__") {
      Object.defineProperty(out, k, {
        value: v,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else out[k] = v;
  }
  return Object.freeze(out);
}

/** A value ready to store. */
export interface EncodedValue {
  /** The stored bytes (compressed or plain JSON text). */
  bytes: Uint8Array;
  /** How {@linkcode bytes} is encoded. */
  encoding: Encoding;
  /** Size of the JSON text before compression. */
  rawSize: number;
}

/** Compression settings of {@linkcode encodeValue}. */
export interface CompressionOptions {
  /** Algorithm (`off` disables). */
  compression: Compression;
  /** Level 0–9. */
  level: number;
  /** Compress only values whose JSON is at least this many bytes. */
  threshold: number;
  /** Per-request override: true forces, false forbids compression. */
  force?: boolean;
  /** Where each encoded value is counted (see {@linkcode compressionStatsOf}); absent: nowhere. */
  stats?: CompressionStats;
}

/**
 * Running totals of the values one instance encoded for storage: how many, how many were stored
 * compressed, and their bytes before (JSON text) and after (as stored). Every encode counts,
 * kv values, contexts, delta pages and export snapshots alike, whether or not its commit lands.
 */
export interface CompressionStats {
  /** Values encoded. */
  values: number;
  /** Values stored compressed (gzip or deflate). */
  compressed: number;
  /** Bytes of their JSON text. */
  bytesBefore: number;
  /** Bytes stored (compressed or not). */
  bytesAfter: number;
}

/** {@linkcode CompressionStats} with what follows from them. */
export interface CompressionReport extends CompressionStats {
  /** `bytesAfter / bytesBefore`, rounded to 3 decimals: 0.25 stores a quarter; 1 when none. */
  ratio: number;
  /** `bytesBefore - bytesAfter`. */
  savedBytes: number;
}

/** A snapshot of `stats` with its ratio and the bytes saved. */
export function compressionReport(stats: CompressionStats): CompressionReport {
  const ratio = stats.bytesBefore ? stats.bytesAfter / stats.bytesBefore : 1;
  return {
    ...stats,
    ratio: Math.round(ratio * 1000) / 1000,
    savedBytes: stats.bytesBefore - stats.bytesAfter,
  };
}

const statsByConfig = new WeakMap<ResolvedConfig, CompressionStats>();

/**
 * The compression totals kept for one configuration object: each `Chorus` instance resolves its
 * own configuration, so these are that instance's figures, whichever code path encoded the value.
 */
export function compressionStatsOf(config: ResolvedConfig): CompressionStats {
  let stats = statsByConfig.get(config);
  if (!stats) {
    stats = { values: 0, compressed: 0, bytesBefore: 0, bytesAfter: 0 };
    statsByConfig.set(config, stats);
  }
  return stats;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Encodes a JSON value for storage.
 * @throws {ChorusError} `payload_too_large` when the stored form exceeds 512 KiB
 */
export function encodeValue(
  value: unknown,
  options: CompressionOptions,
  what = "value",
): EncodedValue {
  const text = JSON.stringify(value);
  if (text === undefined) {
    throw new ChorusError("invalid_request", `Cannot store ${what}: it is not a JSON value`);
  }
  return encodeText(text, options, what);
}

/**
 * Encodes JSON text for storage, as {@linkcode encodeValue} does once it has the text: for a
 * caller that had to make the text anyway (to size a page of deltas), so it is made only once.
 * @throws {ChorusError} `payload_too_large` when the stored form exceeds 512 KiB
 */
export function encodeText(
  text: string,
  options: CompressionOptions,
  what = "value",
): EncodedValue {
  const raw = encoder.encode(text);
  let bytes: Uint8Array = raw;
  let encoding: Encoding = "json";
  const algorithm = options.compression === "off" ? "gzip" : options.compression;
  const wanted = options.force ??
    (options.compression !== "off" && raw.byteLength >= options.threshold);
  if (wanted) {
    const packed = algorithm === "gzip"
      ? gzipSync(raw, { level: options.level })
      : deflateSync(raw, { level: options.level });
    if (options.force || packed.byteLength < raw.byteLength) {
      // zlib hands back a view into a larger pooled buffer; KV would store the whole buffer.
      bytes = new Uint8Array(packed);
      encoding = algorithm;
    }
  }
  if (bytes.byteLength > MAX_STORED_BYTES) {
    throw new ChorusError(
      "payload_too_large",
      `Cannot store ${what}: ${bytes.byteLength} bytes stored exceeds the 512 KiB limit`,
      { details: { stored_bytes: bytes.byteLength, limit: MAX_STORED_BYTES } },
    );
  }
  const stats = options.stats;
  if (stats) {
    stats.values++;
    if (encoding !== "json") stats.compressed++;
    stats.bytesBefore += raw.byteLength;
    stats.bytesAfter += bytes.byteLength;
  }
  return { bytes, encoding, rawSize: raw.byteLength };
}

/** JSON text of frozen values, by identity (see {@linkcode jsonText}). */
const texts = new WeakMap<object, string>();

/**
 * `JSON.stringify(value)`, kept for a frozen object or array: the values actors hold are deeply
 * frozen and shared by every read until the next write, so a hot key's value is turned into text
 * once per version rather than once per read. Anything not frozen is stringified each time. Only
 * the top level's freeze is checked: pass values frozen all the way down (as {@linkcode deepFreeze}
 * and {@linkcode frozenJsonCopy} leave them), or a change deeper in would not show.
 */
export function jsonText(value: unknown): string {
  if (value === null || typeof value !== "object" || !Object.isFrozen(value)) {
    return JSON.stringify(value);
  }
  let text = texts.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    texts.set(value, text);
  }
  return text;
}

/** Decodes stored bytes back to the JSON value. */
export function decodeValue(bytes: Uint8Array, encoding: Encoding): unknown {
  const plain = encoding === "gzip"
    ? gunzipSync(bytes)
    : encoding === "deflate"
    ? inflateSync(bytes)
    : bytes;
  return JSON.parse(decoder.decode(plain));
}

/** Splits bytes into chunks of at most {@linkcode CHUNK_BYTES}. */
export function splitChunks(bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.byteLength; i += CHUNK_BYTES) {
    chunks.push(bytes.subarray(i, Math.min(i + CHUNK_BYTES, bytes.byteLength)));
  }
  return chunks.length ? chunks : [bytes];
}

/**
 * Joins chunks into one array (a single chunk is returned as it is): values read back from KV,
 * request bodies, backup lines.
 */
export function joinChunks(chunks: Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const size = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Freezes a JSON value deeply, so a value shared from an actor's cache cannot be changed. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    // Walked without making an array of the members (`Object.values`): a batch's working copy is
    // frozen on every commit. Own keys only, whatever a polluted prototype may add.
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
    } else {
      for (const key in value) if (Object.hasOwn(value, key)) deepFreeze(value[key]);
    }
  }
  return value;
}

/**
 * The configured compression settings, optionally overridden per request; encodes with them are
 * counted in the configuration's {@linkcode compressionStatsOf}.
 */
export function compressionOptions(config: ResolvedConfig, force?: boolean): CompressionOptions {
  return {
    compression: config.compression,
    level: config.compressionLevel,
    threshold: config.compressionThreshold,
    force,
    stats: compressionStatsOf(config),
  };
}
