/**
 * How a context is laid out in KV: what its head record, value chunks and delta-log pages hold,
 * how they are encoded, and how they are read back. The keys are built in `storage/keys.ts`; this
 * module is what goes in them, in one place for everything that reads or writes contexts (the
 * context actor, cleanup), so the layout can be read and changed here alone.
 *
 * - `["ctx", id]`: the {@linkcode ContextRecord}: version, generation, retention bounds, the value
 *   inline when it is small, and for a large value kept across changes, the replay of the deltas
 *   since the version that stored it ({@linkcode keepValue}).
 * - `["ctx_chunk", id, version, i]`: the chunks of a larger value, keyed by the version that wrote
 *   them and never rewritten, so a reader finds the chunks of the head it read or reads again.
 * - `["ctx_delta", id, v]`: a {@linkcode DeltaPage}, the chord deltas of the versions one commit
 *   added, starting at `v`.
 * @module
 */
import { ChorusError } from "../errors.ts";
import type { ResolvedConfig } from "../config.ts";
import type { Mutation, Store } from "../storage/store.ts";
import { ctxChunkKey, ctxDeltaKey, ctxHeadKey } from "../storage/keys.ts";
import {
  CHUNK_BYTES,
  compressionOptions,
  decodeValue,
  deepFreeze,
  encodeText,
  encodeValue,
  type Encoding,
  MAX_STORED_BYTES,
} from "../storage/codec.ts";
import {
  type BlobRef,
  type ChunkKeyOf,
  dropBlob,
  exactBytes,
  layoutBlob,
  readBlob,
} from "../storage/chunked.ts";
import type { ChordDelta } from "../deltas/chord.ts";
import { applyShared } from "./structural.ts";
import type { JsonObject } from "../deltas/json.ts";

/** The head record stored at `["ctx", id]`. */
export interface ContextRecord extends Partial<BlobRef> {
  /** Version: +1 on every change and on delete. */
  v: number;
  /** Generation: a new one each time the context is created (after absence, delete or expiry). */
  g: string;
  /** Deltas are kept for versions `b + 1 … v` at most (older ones were trimmed). */
  b: number;
  /** When the context last changed (ms since epoch); with `contextTtlMs`, its expiry. */
  u: number;
  /** Version whose chunk keys hold the value, when it is chunked. */
  cv?: number;
  /** True when the value's chunks were written with no expiry (see {@linkcode StoredRef}). */
  p?: true;
  /**
   * When the stored value is older than `v` (a large value is not stored again on every change):
   * the chord deltas that take it to version `v`, oldest first, as the UTF-8 JSON text of an array.
   * Absent: the stored value is version `v`'s.
   */
  r?: Uint8Array;
  /**
   * With a replay: where the stored value is. The record's own value fields then hold an empty
   * gzip value ({@linkcode UNREADABLE}), which versions of Chorus that know no replay fail to
   * decode: they answer 503 for the context rather than serve it, or write over it, without its
   * replay (Deno Deploy runs old and new deployments on one KV).
   */
  k?: StoredRef;
  /** True for a tombstone: the context was deleted or expired; the version is remembered. */
  x?: true;
}

/**
 * The most a head's replay ({@linkcode ContextRecord.r}) may hold, in bytes. Past it, or past a
 * quarter of the stored value's JSON size, the commit stores the value again: a context of a few
 * KB keeps a few hundred bytes of changes at most, a large one this much, and a reader applies at
 * most this much on top of what it decodes.
 */
export const REPLAY_MAX_BYTES = 16_384;

/**
 * A stored value larger than this goes in chunks even when it would fit the head: the head is
 * written on every change, the chunks only when the value is stored again (see keepValue).
 */
export const INLINE_MAX_BYTES = 8_192;

/** The shortest JSON text a stored delta can have, with the comma that follows it in a replay. */
const MIN_DELTA_BYTES = 25;

/** What a head entry may hold at most, its value and replay included (KV's limit is 64 KiB). */
const HEAD_MAX_BYTES = 62_000;

/**
 * One page of the delta log, stored at `["ctx_delta", id, v]`: the chord deltas of versions
 * `v … v + n - 1`, written by one commit (a group commit of many updates writes one page, not one
 * entry per version, which keeps commits small). A page holds at most ~60 KB of JSON.
 */
export interface DeltaPage {
  /** Generation of the context the deltas belong to. */
  g: string;
  /** The first version in the page. */
  v: number;
  /** How many versions the page holds. */
  n: number;
  /** When they were made (ms since epoch); with `deltaTtlMs`, their expiry. */
  at: number;
  /** Encoding of {@linkcode d}. */
  enc: Encoding;
  /** The encoded JSON array of chord deltas; a `null` is a delta too large to keep (a gap). */
  d: Uint8Array;
}

/** A retained delta in memory: `delta` is null for a gap (sync across it sends the context). */
export interface RetainedDelta {
  /** The version this delta produces (it applies to `version - 1`). */
  version: number;
  /** When the change was made, in milliseconds since the Unix epoch. */
  at: number;
  /** The chord delta, or null for a gap. */
  delta: ChordDelta | null;
  /** The first version of the stored page holding it (set when committed). */
  page: number;
}

/**
 * The record that replaces a context deleted or expired at `at`: the next version, marked as a
 * tombstone, keeping the generation so versions keep rising when the id is used again; the value
 * and the deltas are gone with it.
 */
export function tombstone(record: ContextRecord, at: number): ContextRecord {
  const version = record.v + 1;
  return { v: version, g: record.g, b: version, u: at, x: true };
}

/**
 * How long KV keeps a head record and the chunks written with it (`expireIn`), so every writer
 * stores the same lifetime: a tombstone outlives both the deltas and the context TTL (its version
 * must outlast everything that could still name an older one); a live context lives
 * `contextTtlMs` past its last change with `contextAutoDelete`, and otherwise for ever.
 */
export function headExpireIn(
  record: ContextRecord,
  config: Pick<ResolvedConfig, "deltaTtlMs" | "contextTtlMs" | "contextAutoDelete">,
): number | undefined {
  if (record.x) return Math.max(config.deltaTtlMs, config.contextTtlMs);
  return config.contextAutoDelete ? config.contextTtlMs : undefined;
}

/**
 * Where a stored value is: inline or in chunks keyed by version `cv` (else the record's). `p`: the
 * chunks were written with no expiry, so a head may keep them for as long as it lives (heads
 * written before this mark, or with `CHORUS_CONTEXT_AUTO_DELETE`, have chunks that may expire).
 */
export type StoredRef = BlobRef & { cv?: number; p?: true };

/** The value fields of a head that older versions read instead of its kept value. */
const UNREADABLE = new Uint8Array(0);

/** Where a record's stored value is: its own value fields, or with a replay, the kept ones. */
export function storedOf(record: ContextRecord): StoredRef {
  return record.r && record.k ? record.k : record as StoredRef;
}

/** The keys of the chunks holding a record's value, for reading or dropping them. */
export function valueChunkKey(id: string, record: ContextRecord): ChunkKeyOf {
  const version = storedOf(record).cv ?? record.v;
  return (i) => ctxChunkKey(id, version, i);
}

/**
 * The deletions of a record's value chunks, for the commit that replaces or removes the value
 * (none when the value is inline or there is no record).
 */
export function dropValue(id: string, record: ContextRecord | null): Mutation[] {
  if (!record) return [];
  const stored = storedOf(record);
  return stored.n ? dropBlob(stored, valueChunkKey(id, record)) : [];
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * Keeps the stored value of `old` under the new record `rec` and gives `rec` the replay that takes
 * that value to `rec`'s version: `old`'s replay followed by the commit's new deltas. Returns false,
 * changing nothing, when the value has to be stored again instead: another generation or no
 * stored value, new versions that are not all there (trimmed, or a gap), a replay over its bounds
 * ({@linkcode REPLAY_MAX_BYTES}, a quarter of the value, the head entry's size, the stored-value
 * limit), or chunks not known to live as long as the head (not marked `p`, or the head expires).
 * @param fresh the commit's new versions, oldest first
 * @param expireIn the lifetime the head gets (see {@linkcode headExpireIn})
 */
export function keepValue(
  old: ContextRecord | null,
  rec: ContextRecord,
  fresh: readonly RetainedDelta[],
  expireIn: number | undefined,
): boolean {
  if (!old || old.x || old.enc === undefined || old.g !== rec.g || rec.x) return false;
  const kept = storedOf(old);
  if (kept.n && (!kept.p || expireIn !== undefined)) return false;
  const count = rec.v - old.v;
  if (count < 1 || fresh.length !== count || fresh[0].version !== old.v + 1) return false;
  const sz = kept.sz ?? 0;
  const limit = Math.min(
    REPLAY_MAX_BYTES,
    sz / 4,
    HEAD_MAX_BYTES - (kept.d?.byteLength ?? 0),
    MAX_STORED_BYTES - sz,
  );
  let size = old.r ? old.r.byteLength : 1;
  // Every delta's text holds at least one marker (`{"k":{"action":"added","value":0}}`): a batch
  // that cannot fit is told without making its text.
  if (size + fresh.length * MIN_DELTA_BYTES > limit) return false;
  const texts: string[] = [];
  for (const d of fresh) {
    if (d.delta === null) return false;
    const text = JSON.stringify(d.delta);
    size += text.length + 1; // a UTF-8 byte per JSON character at least; checked again below
    if (size > limit) return false;
    texts.push(text);
  }
  const before = old.r ? fromUtf8.decode(old.r).slice(0, -1) + "," : "[";
  const replay = utf8.encode(before + texts.join(",") + "]");
  if (replay.byteLength > limit) return false;
  rec.k = { enc: kept.enc, sz };
  if (kept.d) rec.k.d = kept.d;
  if (kept.n) rec.k.n = kept.n, rec.k.cv = kept.cv, rec.k.p = true;
  rec.enc = "gzip", rec.sz = 0, rec.d = UNREADABLE;
  rec.r = replay;
  return true;
}

/**
 * Encodes a context into its head record (which must hold no value yet): inline when it fits one
 * entry, else in chunks keyed by the record's version, which no later commit rewrites.
 * @param options.id the context's id
 * @param options.expireIn the chunks' lifetime: the head's own (see {@linkcode headExpireIn})
 * @returns the chunk mutations to commit with the record, and the encoded size in bytes
 * @throws {ChorusError} `payload_too_large` when the encoded context is over the size limit
 */
export function layoutValue(
  record: ContextRecord,
  options: {
    id: string;
    context: JsonObject | undefined;
    config: ResolvedConfig;
    expireIn?: number;
  },
): { mutations: Mutation[]; bytes: number } {
  const { id, config, expireIn } = options;
  const encoded = encodeValue(options.context, compressionOptions(config), `context "${id}"`);
  // Only a value whose chunks live as long as the head can be kept (see keepValue): only such a
  // value is moved out of the head to spare rewriting it there.
  const laid = layoutBlob(encoded, (i) => ctxChunkKey(id, record.v, i), {
    expireIn,
    inlineMax: expireIn === undefined ? INLINE_MAX_BYTES : undefined,
  });
  Object.assign(record, laid.ref);
  if (laid.ref.n) record.cv = record.v;
  if (laid.ref.n && expireIn === undefined) record.p = true;
  return { mutations: laid.mutations, bytes: encoded.bytes.byteLength };
}

/**
 * Packs a commit's new deltas into pages of at most ~60 KB of JSON. A delta too large for a page,
 * or beyond what the commit can still carry (`budget` bytes), is not kept: it becomes a gap (null)
 * here and in memory, so every instance serves the same thing (a full context across it).
 */
export function packPages(
  g: string,
  fresh: RetainedDelta[],
  config: ResolvedConfig,
  budget: number,
): DeltaPage[] {
  const limit = CHUNK_BYTES - 1024;
  // Each delta's text, made once: it sizes the pages, then the pages are made of it.
  const texts = fresh.map((d) => d.delta === null ? "null" : JSON.stringify(d.delta));
  let total = texts.reduce((n, t) => n + t.length, 0);
  const bySize = texts.map((_, i) => i).sort((a, b) => texts[b].length - texts[a].length);
  for (const i of bySize) {
    if (texts[i].length <= limit && total <= budget) break;
    total -= texts[i].length - 4;
    texts[i] = "null";
    fresh[i].delta = null;
  }
  const pages: DeltaPage[] = [];
  let start = 0;
  let size = 0;
  const flush = (end: number) => {
    if (end === start) return;
    const part = fresh.slice(start, end);
    const text = `[${texts.slice(start, end).join(",")}]`;
    const encoded = encodeText(text, compressionOptions(config), "deltas");
    for (const d of part) d.page = part[0].version;
    pages.push({
      g,
      v: part[0].version,
      n: part.length,
      at: part[part.length - 1].at,
      enc: encoded.encoding,
      d: exactBytes(encoded.bytes),
    });
    start = end;
    size = 0;
  };
  texts.forEach((t, i) => {
    if (size + t.length > limit) flush(i);
    size += t.length + 1;
  });
  flush(fresh.length);
  return pages;
}

/** A head record with its decoded context, as read from KV. */
export interface LoadedContext {
  /** The head record, or null when the id was never used. */
  record: ContextRecord | null;
  /** The context, deeply frozen; undefined for a tombstone or no record. */
  context: JsonObject | undefined;
  /** The head's versionstamp, for the check of the next commit. */
  versionstamp: string | null;
}

/**
 * Reads a context's head and (chunked) value from KV. Chunks are immutable per version, so a
 * missing chunk means the head moved on meanwhile: read again.
 * @param known called with each head read, before its value is read; a context it gives (which
 *   must be that head's version) is taken instead of reading and decoding the value: a reader that
 *   holds an older version and the deltas since catches up for the cost of the change
 * @throws {ChorusError} `unavailable` when KV cannot be read or the value keeps changing
 */
export async function loadContext(
  store: Store,
  id: string,
  consistency: "strong" | "eventual",
  known?: (record: ContextRecord | null) => Promise<JsonObject | undefined>,
): Promise<LoadedContext> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const head = await store.get<ContextRecord>(ctxHeadKey(id), consistency);
    const record = head.value;
    const given = await known?.(record);
    if (!record || record.x || record.enc === undefined) {
      return { record, context: undefined, versionstamp: head.versionstamp };
    }
    if (given) return { record, context: given, versionstamp: head.versionstamp };
    const stored = await readBlob(store, storedOf(record), valueChunkKey(id, record), consistency);
    if (stored === undefined) continue;
    const context = record.r ? replay(id, stored as JsonObject, record.r) : stored as JsonObject;
    return { record, context, versionstamp: head.versionstamp };
  }
  throw new ChorusError("unavailable", `Cannot read context "${id}": it kept changing`);
}

/** The stored value taken to the head's version by its replay. */
function replay(id: string, stored: JsonObject, bytes: Uint8Array): JsonObject {
  let deltas: ChordDelta[];
  try {
    deltas = deepFreeze(JSON.parse(fromUtf8.decode(bytes))) as ChordDelta[];
  } catch (cause) {
    throw new ChorusError("unavailable", `Cannot read context "${id}": its head is corrupt`, {
      cause,
    });
  }
  let context = stored;
  for (const delta of deltas) context = applyShared(context, delta);
  return context;
}

/**
 * Reads the delta log of the record's generation from version `from` to the record's version.
 * Pages start where a commit's new versions start, so a read from just after the cached deltas
 * starts at a page boundary; a full read scans the whole (trimmed, so short) log.
 * @param full scan the log from its start rather than from `from`'s page
 */
export async function loadDeltas(
  store: Store,
  id: string,
  record: ContextRecord,
  from: number,
  full: boolean,
  consistency: "strong" | "eventual",
): Promise<RetainedDelta[]> {
  const out: RetainedDelta[] = [];
  if (from > record.v) return out;
  const iter = store.list<DeltaPage>(
    { start: ctxDeltaKey(id, full ? 0 : from), end: ctxDeltaKey(id, record.v + 1) },
    { consistency },
  );
  for await (const entry of iter) {
    const page = entry.value;
    if (page.g !== record.g) continue;
    const deltas = deepFreeze(decodeValue(page.d, page.enc)) as (ChordDelta | null)[];
    deltas.forEach((delta, i) => {
      const version = page.v + i;
      if (version >= from && version > record.b && version <= record.v) {
        out.push({ version, at: page.at, delta, page: page.v });
      }
    });
  }
  return out;
}
