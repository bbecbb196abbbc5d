/**
 * Large encoded values as one inline field or a run of immutable chunk entries. A value over Deno
 * KV's 64 KiB entry limit is split into chunks written in the same atomic commit as the record that
 * points at them; readers find the chunks through that record, so they never see half a value.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { decodeValue, deepFreeze, type EncodedValue, type Encoding, splitChunks } from "./codec.ts";
import { joinChunks } from "./codec.ts";
import type { Mutation, Store } from "./store.ts";

/** Where a stored value's bytes are: inline (`d`) or in `n` chunks. Embedded in a record. */
export interface BlobRef {
  /** Encoding of the bytes. */
  enc: Encoding;
  /** Size of the JSON text before compression. */
  sz: number;
  /** The bytes, when they fit one entry. */
  d?: Uint8Array;
  /** The number of chunk entries, when they do not. */
  n?: number;
}

/**
 * The bytes in a buffer of exactly their size. A view into a larger buffer (Node's zlib returns
 * views into 16 KiB pools) is serialized by KV with its whole buffer, which counts against the
 * 800 KiB commit limit and is stored as such; copying costs far less than that.
 */
export function exactBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes
    : bytes.slice();
}

/** Names the KV key of chunk `index` of one stored value. */
export type ChunkKeyOf = (index: number) => Deno.KvKey;

/**
 * Lays out an encoded value: inline when it fits one entry, else chunk `set` mutations.
 * @param options.expireIn passed to every chunk, so chunks expire with their record
 * @param options.inlineMax inline only up to this many bytes (default: what fits one entry), for
 *   a record rewritten more often than its value
 * @returns the reference to embed in the record and the mutations to commit with it
 */
export function layoutBlob(
  encoded: EncodedValue,
  chunkKey: ChunkKeyOf,
  options: { expireIn?: number; inlineMax?: number } = {},
): { ref: BlobRef; mutations: Mutation[] } {
  const parts = splitChunks(encoded.bytes);
  const ref: BlobRef = { enc: encoded.encoding, sz: encoded.rawSize };
  if (parts.length === 1 && encoded.bytes.byteLength <= (options.inlineMax ?? Infinity)) {
    ref.d = exactBytes(encoded.bytes);
    return { ref, mutations: [] };
  }
  ref.n = parts.length;
  const mutations: Mutation[] = parts.map((value, i) => ({
    type: "set",
    key: chunkKey(i),
    value: exactBytes(value),
    expireIn: options.expireIn,
  }));
  return { ref, mutations };
}

/** `delete` mutations for the chunks a reference points at (none for an inline value). */
export function dropBlob(ref: BlobRef | undefined, chunkKey: ChunkKeyOf): Mutation[] {
  const count = ref?.n ?? 0;
  return Array.from({ length: count }, (_, i) => ({ type: "delete" as const, key: chunkKey(i) }));
}

/**
 * Reads and decodes the value a reference points at, deeply frozen.
 * @returns undefined when a chunk is missing (the record moved on meanwhile: read it again)
 * @throws {ChorusError} `unavailable` when KV cannot be read
 */
export async function readBlob(
  store: Store,
  ref: BlobRef,
  chunkKey: ChunkKeyOf,
  consistency: "strong" | "eventual",
): Promise<unknown> {
  let bytes = ref.d;
  if (bytes === undefined) {
    const total = ref.n ?? 0;
    const parts: Uint8Array[] = [];
    for (let start = 0; start < total; start += 10) {
      const keys: Deno.KvKey[] = [];
      for (let i = start; i < Math.min(total, start + 10); i++) keys.push(chunkKey(i));
      for (const entry of await store.getMany(keys, consistency)) {
        if (!(entry.value instanceof Uint8Array)) return undefined;
        parts.push(entry.value);
      }
    }
    bytes = joinChunks(parts);
  }
  try {
    return deepFreeze(decodeValue(bytes, ref.enc));
  } catch (cause) {
    throw new ChorusError("unavailable", "Cannot decode a stored value: it is corrupt", { cause });
  }
}
