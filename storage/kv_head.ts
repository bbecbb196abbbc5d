/**
 * The stored form of a kv key's head record: a few numbers, flags and (for small values) the
 * value's bytes, laid out as one `Uint8Array`. Deno KV stores a `Uint8Array` as it is, where any
 * other value goes through V8's serializer; the head is written on every put, incr and delete, and
 * that serializer cost more than this whole layout. Heads written as objects by earlier builds
 * are still read.
 *
 * Layout (little-endian):
 * - byte 0: {@linkcode KV_HEAD_FORMAT};
 * - byte 1: which optional fields follow ({@linkcode Field} bits);
 * - byte 2: the encoding of the value's bytes (index in {@linkcode ENCODINGS});
 * - the version, then each present field of `e`, `n`, `cv`, `sz`, `w` in that order, as float64;
 * - the inline value bytes (`d`), to the end.
 * @module
 */
import type { Encoding } from "./codec.ts";

/** A kv key's head: its version, expiry and value (inline, or where its chunks are). */
export interface KvRecord {
  /** Version: +1 on every put, incr, delete and expiry. */
  v: number;
  /** Expiry (ms since epoch) or null. */
  e: number | null;
  /** True when the key is deleted or expired (a tombstone keeping the version). */
  x?: true;
  /** Encoding of the stored bytes. */
  enc?: Encoding;
  /** Inline bytes when the value fits one entry. */
  d?: Uint8Array;
  /** Number of chunks when the value is chunked. */
  n?: number;
  /** Version whose chunk keys hold the value. */
  cv?: number;
  /** Size of the value's JSON text. */
  sz?: number;
  /**
   * Until when (ms since epoch) some instance has watchers of this key. Changes are written to
   * the change log only while it lies ahead (or this instance has subscribers); being in the
   * head, which every write checks, it reaches every writer without costing them anything.
   */
  w?: number;
}

/** First byte of a binary head; a change of layout takes a new value. */
export const KV_HEAD_FORMAT = 1;

/** The encodings a head can name, by their index in byte 2. */
const ENCODINGS: readonly (Encoding | undefined)[] = [undefined, "json", "gzip", "deflate"];

/** Bits of byte 1. */
const enum Field {
  Deleted = 1,
  Expiry = 2,
  Inline = 4,
  Chunks = 8,
  ChunkVersion = 16,
  Size = 32,
  WatchedUntil = 64,
}

/** Optional numeric fields in layout order, with their bits. */
const NUMBERS: readonly [keyof KvRecord, Field][] = [
  ["e", Field.Expiry],
  ["n", Field.Chunks],
  ["cv", Field.ChunkVersion],
  ["sz", Field.Size],
  ["w", Field.WatchedUntil],
];

const HEADER = 3;

/**
 * Scratch for writing a float64 as bytes. The head is written byte by byte from here rather than
 * through a `DataView` of its buffer: a small `Uint8Array` lives in V8's heap until its `.buffer`
 * is asked for, and moving it out then costs more than the rest of the encoding.
 */
const scratch = new Float64Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);
/** Whether float64s are stored little-endian here (the layout is little-endian). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function putFloat64(out: Uint8Array, at: number, n: number): void {
  scratch[0] = n;
  for (let i = 0; i < 8; i++) out[at + i] = scratchBytes[LITTLE_ENDIAN ? i : 7 - i];
}

/** The bytes stored for a head record. */
export function encodeKvHead(record: KvRecord): Uint8Array {
  let flags = 0;
  let numbers = 1;
  if (record.x) flags |= Field.Deleted;
  for (const [name, bit] of NUMBERS) {
    if (typeof record[name] === "number") {
      flags |= bit;
      numbers++;
    }
  }
  const inline = record.d;
  if (inline) flags |= Field.Inline;
  const start = HEADER + numbers * 8;
  const out = new Uint8Array(start + (inline?.byteLength ?? 0));
  out[0] = KV_HEAD_FORMAT;
  out[1] = flags;
  out[2] = record.enc === undefined ? 0 : ENCODINGS.indexOf(record.enc);
  putFloat64(out, HEADER, record.v);
  let at = HEADER + 8;
  for (const [name, bit] of NUMBERS) {
    if (flags & bit) {
      putFloat64(out, at, record[name] as number);
      at += 8;
    }
  }
  if (inline) out.set(inline, start);
  return out;
}

/**
 * The head record a stored value holds: the binary layout above, or the object earlier builds
 * stored. The inline bytes are a view of `stored`, not a copy.
 * @throws {TypeError} when `stored` is neither
 */
export function decodeKvHead(stored: unknown): KvRecord {
  if (!(stored instanceof Uint8Array)) {
    if (
      stored !== null && typeof stored === "object" && typeof (stored as KvRecord).v === "number"
    ) {
      return stored as KvRecord;
    }
    throw new TypeError("Not a kv head record");
  }
  if (stored.byteLength < HEADER + 8 || stored[0] !== KV_HEAD_FORMAT) {
    throw new TypeError(`Not a kv head record of format ${KV_HEAD_FORMAT}`);
  }
  const flags = stored[1];
  const view = new DataView(stored.buffer, stored.byteOffset, stored.byteLength);
  const record: KvRecord = { v: view.getFloat64(HEADER, true), e: null };
  if (flags & Field.Deleted) record.x = true;
  const enc = ENCODINGS[stored[2]];
  if (enc) record.enc = enc;
  let at = HEADER + 8;
  for (const [name, bit] of NUMBERS) {
    if (flags & bit) {
      (record as unknown as Record<string, number>)[name] = view.getFloat64(at, true);
      at += 8;
    }
  }
  if (flags & Field.Inline) record.d = stored.subarray(at);
  return record;
}
