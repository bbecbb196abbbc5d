/**
 * Backups: one gzip-compressed file of newline-delimited JSON — a metadata header (format,
 * created_at, entry count, instance), every KV entry with its key and value (bytes, bigints and
 * KvU64 tagged so they round-trip), and a trailer with the SHA-256 of everything before it.
 * `verify` recomputes the checksum; `restore` writes the entries back in atomic batches.
 * @module
 */
import { createHash } from "node:crypto";
import { serialize } from "node:v8";
import { ChorusError } from "../errors.ts";
import type { Store } from "./store.ts";
import { joinChunks } from "./codec.ts";
import { type BackupEvent, telemetry } from "../observability/telemetry.ts";

/** The header line of a backup. */
export interface BackupHeader {
  /** The file format. */
  format: "chorus-backup/1";
  /** When it was made (ms since the epoch). */
  created_at: number;
  /** Entries in it. */
  entries: number;
  /** Who made it (an instance id, or `cli-<host>`). */
  instance: string;
}

/** What `verify` found. */
export interface BackupCheck {
  /** Whether the backup is whole and every entry can be restored. */
  ok: boolean;
  /** Its header (format, created_at, entries, instance), when readable. */
  header?: BackupHeader;
  /** Entries read. */
  entries: number;
  /** The SHA-256 (hex) of its contents, from the trailer, when `ok`. */
  sha256?: string;
  /** What is wrong, when not `ok`. */
  reason?: string;
}

const encoder = new TextEncoder();

/** Namespaces that hold live instances' bookkeeping, not data (member heartbeats, presence). */
const TRANSIENT = new Set([
  "member",
  "presence",
  "presence_seq",
  "presence_log",
  "rate",
  "watch_probe",
]);

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** Encodes a KV key or value as JSON with tags for the types JSON lacks. */
export function encodeTagged(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: toBase64(value) };
  if (value instanceof Deno.KvU64) return { $u64: value.value.toString() };
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (value === undefined) return { $undefined: true };
  if (Array.isArray(value)) return value.map(encodeTagged);
  if (value !== null && typeof value === "object") {
    if (value instanceof Date) return { $date: value.getTime() };
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = encodeTagged(v);
    return out;
  }
  return value;
}

/**
 * Most digits of a tagged bigint: a KV value (64 KiB) cannot hold a longer one, and parsing one
 * costs time that grows faster than its length.
 */
const MAX_BIGINT_DIGITS = 160_000;

/** Reverses {@linkcode encodeTagged}; throws on a malformed tag. */
export function decodeTagged(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeTagged);
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.$bytes === "string") return fromBase64(o.$bytes);
    if (typeof o.$u64 === "string") return new Deno.KvU64(BigInt(o.$u64));
    if (typeof o.$bigint === "string") {
      if (o.$bigint.length > MAX_BIGINT_DIGITS) throw new RangeError("bigint too long for KV");
      return BigInt(o.$bigint);
    }
    if (o.$undefined === true) return undefined;
    if (typeof o.$date === "number") return new Date(o.$date);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) out[k] = decodeTagged(v);
    return out;
  }
  return value;
}

async function sha256Hex(chunks: Uint8Array[]): Promise<string> {
  const size = chunks.reduce((n, c) => n + c.byteLength, 0);
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Reads every entry of the store into a backup (gzip bytes), leaving out live instances'
 * bookkeeping (heartbeats, presence). Entries keep their values but not KV's own expiry timers:
 * Chorus keeps expiry times in its records, so expired data stays hidden after a restore.
 * Publishes `chorus:backup` (`create`).
 *
 * @param store the instance's store (`chorus.store`)
 * @param instance who made it, written in the header
 * @example
 * ```ts
 * import { Chorus, createBackup, restoreBackup, verifyBackup } from "../mod.ts";
 * const chorus = await Chorus.open({ path: ":memory:" });
 * await chorus.kv.put("greeting", "hello");
 * const backup = await createBackup(chorus.store, "example");
 * const check = await verifyBackup(backup);
 * console.log(check.ok, check.header?.entries);
 * const copy = await Chorus.open({ path: ":memory:" });
 * await restoreBackup(copy.store, backup);
 * console.log((await copy.kv.get("greeting"))?.value); // "hello"
 * await copy.close();
 * await chorus.close();
 * ```
 */
export async function createBackup(store: Store, instance: string): Promise<Uint8Array> {
  const started = performance.now();
  const lines: Uint8Array[] = [];
  for await (const entry of store.list({ prefix: [] })) {
    if (TRANSIENT.has(String(entry.key[0]))) continue;
    lines.push(
      encoder.encode(
        JSON.stringify({ key: encodeTagged(entry.key), value: encodeTagged(entry.value) }) + "\n",
      ),
    );
  }
  const header: BackupHeader = {
    format: "chorus-backup/1",
    created_at: Date.now(),
    entries: lines.length,
    instance,
  };
  const all = [encoder.encode(JSON.stringify(header) + "\n"), ...lines];
  all.push(encoder.encode(JSON.stringify({ sha256: await sha256Hex(all) }) + "\n"));
  const stream = new Blob(all as BlobPart[]).stream().pipeThrough(new CompressionStream("gzip"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  publishBackup("create", started, { entries: lines.length, bytes: bytes.byteLength, ok: true });
  return bytes;
}

/** Publishes a `chorus:backup` event, when anyone listens. */
function publishBackup(
  action: BackupEvent["action"],
  started: number,
  fields: Omit<BackupEvent, "action" | "durationMs">,
): void {
  if (!telemetry.backup.hasSubscribers) return;
  const event: BackupEvent = { action, ...fields, durationMs: performance.now() - started };
  if (event.reason === undefined) delete event.reason;
  telemetry.backup.publish(event);
}

/** A backup to read: its gzip bytes, or a stream of them (a file, a request body). */
export type BackupSource = Uint8Array | ReadableStream<Uint8Array>;

/**
 * Most bytes a backup may decompress to. Lines are read one at a time, so memory stays near one
 * line whatever the file holds; this bounds the work instead: gzip expands up to 1,032-fold, so
 * a 1 MiB upload can stand for a gigabyte to parse. A store whose backup is larger needs a higher
 * `maxBytes` ({@linkcode BackupReadOptions}).
 */
export const MAX_BACKUP_BYTES = 1024 * 1024 * 1024;

/**
 * Longest line a backup may hold. An entry is one KV key (at most 2 KiB) and value (at most
 * 64 KiB serialized); JSON and the type tags inflate a value at most about 20-fold (an array of
 * `undefined` is 1 byte per item serialized, `{"$undefined":true},` in the file), so a real entry
 * stays under 1.3 MiB, and a longer line is not one.
 */
export const MAX_BACKUP_LINE_BYTES = 2 * 1024 * 1024;

/** Bounds on reading a backup; tests lower them to stay fast. */
export interface BackupReadOptions {
  /** Most decompressed bytes (default {@linkcode MAX_BACKUP_BYTES}). */
  maxBytes?: number;
  /** Longest line in bytes (default {@linkcode MAX_BACKUP_LINE_BYTES}). */
  maxLineBytes?: number;
}

/** KV's limits on one key and one value, in bytes as KV counts them. */
const KV_MAX_KEY_BYTES = 2048;
const KV_MAX_VALUE_BYTES = 65536;

/**
 * One restore commit holds at most this many entries, bytes of keys and values, and bytes of keys
 * alone: below KV's 1,000 mutations, 800 KiB and 80 KiB of keys per atomic commit.
 */
const BATCH_ENTRIES = 500;
const BATCH_BYTES = 600 * 1024;
const BATCH_KEY_BYTES = 64 * 1024;

/**
 * Compressed bytes handed to the decompressor at a time. Deno's DecompressionStream inflates a
 * whole input chunk into one output chunk, so one 64 KiB chunk of a gzip bomb would come out as
 * 64 MiB at once; 4 KiB slices keep every output chunk near 4 MiB at most.
 */
const INFLATE_SLICE_BYTES = 4096;

const NEWLINE = new Uint8Array([10]);

/** What is wrong with a backup's content (never with the disk or the network). */
class Malformed extends Error {}

/**
 * Slices the compressed input (see {@linkcode INFLATE_SLICE_BYTES}) and reports errors of the
 * source itself, so that a failing disk is not mistaken for a corrupt file.
 */
function slices(source: BackupSource, failed: (e: unknown) => void): ReadableStream<BufferSource> {
  const reader = source instanceof Uint8Array ? undefined : source.getReader();
  let chunk = source instanceof Uint8Array ? source : new Uint8Array(0);
  let at = 0;
  return new ReadableStream<BufferSource>({
    async pull(controller) {
      while (at >= chunk.byteLength) {
        if (!reader) return controller.close();
        let next: ReadableStreamReadResult<Uint8Array>;
        try {
          next = await reader.read();
        } catch (e) {
          failed(e);
          throw e;
        }
        if (next.done) return controller.close();
        chunk = next.value;
        at = 0;
      }
      controller.enqueue(chunk.subarray(at, at + INFLATE_SLICE_BYTES) as Uint8Array<ArrayBuffer>);
      at += INFLATE_SLICE_BYTES;
    },
    cancel: (reason) => reader?.cancel(reason),
  }, { highWaterMark: 0 });
}

/**
 * Decompresses a backup as a stream and yields its lines (without the newline) one at a time,
 * holding at most one line plus one decompressed chunk. Stops with {@linkcode Malformed} at the
 * first blank line, at a line over the line limit, or past the decompressed limit.
 */
async function* readLines(
  source: BackupSource,
  options: BackupReadOptions,
): AsyncGenerator<{ bytes: Uint8Array; line: number }> {
  const maxBytes = options.maxBytes ?? MAX_BACKUP_BYTES;
  const maxLine = options.maxLineBytes ?? MAX_BACKUP_LINE_BYTES;
  let sourceError: { error: unknown } | undefined;
  const reader = slices(source, (error) => sourceError = { error })
    .pipeThrough(new DecompressionStream("gzip"))
    .getReader();
  let parts: Uint8Array[] = [];
  let size = 0;
  let total = 0;
  let line = 0;
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (cause) {
        if (sourceError) throw sourceError.error;
        throw new Malformed(
          `not a gzip file or a damaged one (${(cause as Error)?.message ?? cause})`,
        );
      }
      if (next.done) break;
      const data = next.value;
      total += data.byteLength;
      if (total > maxBytes) throw new Malformed(`it decompresses to more than ${maxBytes} bytes`);
      for (let start = 0;;) {
        const newline = data.indexOf(10, start);
        const end = newline < 0 ? data.byteLength : newline;
        if (size + end - start > maxLine) {
          throw new Malformed(`line ${line + 1} is longer than ${maxLine} bytes`);
        }
        if (newline < 0) {
          if (end > start) parts.push(data.slice(start, end));
          size += end - start;
          break;
        }
        line++;
        if (size === 0 && end === start) throw new Malformed(`line ${line} is blank`);
        parts.push(data.subarray(start, end));
        yield { bytes: joinChunks(parts), line };
        parts = [];
        size = 0;
        start = newline + 1;
      }
    }
    if (size > 0) yield { bytes: joinChunks(parts), line: line + 1 };
  } finally {
    await reader.cancel().catch(() => {});
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function parseLine(bytes: Uint8Array, line: number): unknown {
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch {
    throw new Malformed(`line ${line} is not JSON`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function parseHeader(bytes: Uint8Array): BackupHeader {
  const header = parseLine(bytes, 1);
  if (!isRecord(header)) throw new Malformed("line 1 is not a backup header");
  if (header.format !== "chorus-backup/1") {
    throw new Malformed(`unknown format ${JSON.stringify(header.format)}`);
  }
  const { entries, created_at, instance } = header;
  if (
    typeof entries !== "number" || !Number.isSafeInteger(entries) || entries < 0 ||
    typeof created_at !== "number" || typeof instance !== "string"
  ) {
    throw new Malformed("line 1 is not a backup header (entries, created_at or instance)");
  }
  return { format: header.format, created_at, entries, instance };
}

/** Bytes of `bytes` in KV's key encoding, where each 0x00 takes two bytes. */
function escapedSize(bytes: Uint8Array): number {
  let n = bytes.byteLength;
  for (let i = bytes.indexOf(0); i >= 0; i = bytes.indexOf(0, i + 1)) n++;
  return n;
}

/**
 * Checks that `key` is a KV key and returns its size as KV counts it (the tuple encoding KV
 * stores), so that no commit of the restore can fail on it.
 */
function checkKey(key: unknown, line: number): number {
  if (!Array.isArray(key) || key.length === 0) {
    throw new Malformed(`line ${line}: the key is not a non-empty array`);
  }
  let size = 0;
  key.forEach((part: unknown, i) => {
    if (typeof part === "string") size += 2 + escapedSize(encoder.encode(part));
    else if (part instanceof Uint8Array) size += 2 + escapedSize(part);
    else if (typeof part === "number") size += 9;
    else if (typeof part === "boolean") size += 1;
    else if (typeof part === "bigint") {
      const digits = (part < 0n ? -part : part).toString(16);
      const bytes = part === 0n ? 0 : Math.ceil(digits.length / 2);
      if (bytes > 255) {
        throw new Malformed(`line ${line}: key part ${i} is a bigint over 255 bytes`);
      }
      size += bytes <= 8 ? 1 + bytes : 2 + bytes;
    } else {
      const kind = part === null ? "null" : part?.constructor?.name ?? typeof part;
      throw new Malformed(
        `line ${line}: key part ${i} is ${kind}, not a string, number, bigint, boolean or bytes`,
      );
    }
  });
  if (size > KV_MAX_KEY_BYTES) {
    throw new Malformed(`line ${line}: the key takes ${size} bytes, over KV's ${KV_MAX_KEY_BYTES}`);
  }
  return size;
}

/**
 * An upper bound of a value's V8-serialized size, found by walking it: serializing every entry
 * (`node:v8`) would cost ~30 µs each, a bound costs next to nothing and only values near KV's
 * limit need the exact figure.
 */
function sizeBound(value: unknown): number {
  switch (typeof value) {
    case "string":
      return 10 + 2 * value.length; // tag, length, alignment, 1 or 2 bytes per UTF-16 unit
    case "bigint":
      return 10 + value.toString(16).length;
    case "object": {
      if (value === null) return 1;
      if (value instanceof Uint8Array) return 32 + value.byteLength;
      if (value instanceof Date) return 9;
      let n = 16; // tag, then property count or length, and end marker
      if (Array.isArray(value)) { for (const v of value) n += sizeBound(v); }
      else for (const [k, v] of Object.entries(value)) n += sizeBound(k) + sizeBound(v);
      return n;
    }
    default:
      return 9; // numbers at most a tag and a double; booleans and undefined one byte
  }
}

/** The size KV gives a value: bytes and u64 are stored raw, the rest V8-serialized. */
function valueSize(value: unknown, line: number): number {
  let size: number;
  if (value instanceof Uint8Array) size = value.byteLength;
  else if (value instanceof Deno.KvU64) size = 8;
  else {
    try {
      size = sizeBound(value);
      if (size > KV_MAX_VALUE_BYTES) size = serialize(value).byteLength;
    } catch (e) {
      throw new Malformed(`line ${line}: the value cannot be stored (${(e as Error).message})`);
    }
  }
  if (size > KV_MAX_VALUE_BYTES) {
    throw new Malformed(
      `line ${line}: the value takes ${size} bytes, over KV's ${KV_MAX_VALUE_BYTES}`,
    );
  }
  return size;
}

/** One entry of a backup, decoded and checked against KV's limits. */
interface Entry {
  key: Deno.KvKey;
  value: unknown;
  keyBytes: number;
  valueBytes: number;
}

function parseEntry(bytes: Uint8Array, line: number): Entry {
  const parsed = parseLine(bytes, line);
  if (!isRecord(parsed) || !Object.hasOwn(parsed, "key") || !Object.hasOwn(parsed, "value")) {
    throw new Malformed(`line ${line} is not an entry (an object with key and value)`);
  }
  let key: unknown, value: unknown;
  try {
    key = decodeTagged(parsed.key);
    value = decodeTagged(parsed.value);
  } catch (e) {
    throw new Malformed(`line ${line}: cannot decode the entry (${(e as Error).message})`);
  }
  const keyBytes = checkKey(key, line);
  return { key: key as Deno.KvKey, value, keyBytes, valueBytes: valueSize(value, line) };
}

/** How far {@linkcode scan} got. */
interface ScanState {
  header?: BackupHeader;
  entries: number;
  /** The checksum of the trailer, once it matched. */
  sha256?: string;
}

/**
 * Reads a backup line by line: checks the header, decodes and checks every entry (handing it to
 * `onEntry` if given), then the entry count and the checksum. The SHA-256 is computed
 * incrementally (`node:crypto`), so nothing but the current line is held.
 * @throws {Malformed} at the first thing wrong with the content
 */
async function scan(
  source: BackupSource,
  options: BackupReadOptions,
  state: ScanState,
  onEntry?: (entry: Entry) => Promise<void>,
): Promise<BackupHeader> {
  const hash = createHash("sha256");
  let header: BackupHeader | undefined;
  let last: { bytes: Uint8Array; line: number } | undefined;
  for await (const current of readLines(source, options)) {
    if (!header) {
      header = state.header = parseHeader(current.bytes);
      hash.update(current.bytes).update(NEWLINE);
      continue;
    }
    // A line is an entry once another follows it; the last one is the trailer.
    if (last) {
      if (++state.entries > header.entries) {
        throw new Malformed(
          `line ${last.line}: more entries than the ${header.entries} of the header`,
        );
      }
      hash.update(last.bytes).update(NEWLINE);
      const entry = parseEntry(last.bytes, last.line);
      if (onEntry) await onEntry(entry);
    }
    last = current;
  }
  if (!header) throw new Malformed("the file is empty");
  if (!last) throw new Malformed("no checksum trailer");
  if (state.entries !== header.entries) {
    throw new Malformed(`header says ${header.entries} entries, found ${state.entries}`);
  }
  const trailer = parseLine(last.bytes, last.line);
  if (!isRecord(trailer) || typeof trailer.sha256 !== "string") {
    throw new Malformed(`line ${last.line} is not a checksum trailer`);
  }
  if (trailer.sha256 !== hash.digest("hex")) throw new Malformed("checksum mismatch");
  state.sha256 = trailer.sha256;
  return header;
}

/**
 * Checks a backup: its format, that every entry decodes into a key and value KV accepts, the
 * entry count and the checksum. Reads the file as a stream, one line at a time, within `options`'
 * limits: a hostile file (a gzip bomb, a huge line) is a failed check, not a crash. Publishes
 * `chorus:backup` (`verify`).
 * @throws when the source stream itself fails (a read error), never for its content
 */
export async function verifyBackup(
  source: BackupSource,
  options: BackupReadOptions = {},
): Promise<BackupCheck> {
  const started = performance.now();
  const check = await checkBackup(source, options);
  publishBackup("verify", started, {
    entries: check.entries,
    bytes: source instanceof Uint8Array ? source.byteLength : null,
    ok: check.ok,
    reason: check.reason,
  });
  return check;
}

/** {@linkcode verifyBackup} without its telemetry event (a restore reports itself). */
async function checkBackup(
  source: BackupSource,
  options: BackupReadOptions,
): Promise<BackupCheck> {
  const state: ScanState = { entries: 0 };
  try {
    const header = await scan(source, options, state);
    return { ok: true, header, entries: state.entries, sha256: state.sha256 };
  } catch (e) {
    if (!(e instanceof Malformed)) throw e;
    return { ok: false, header: state.header, entries: state.entries, reason: e.message };
  }
}

/**
 * Writes a backup's entries into the store (overwriting keys that exist), in atomic batches
 * within KV's limits. Nothing is written unless the whole file verifies: a first pass checks
 * the checksum and decodes every entry, the second writes. Takes the bytes (not a stream) because
 * it reads them twice. Returns how many entries were written. Publishes `chorus:backup`
 * (`restore`).
 * @throws {ChorusError} `invalid_request` naming what is wrong (and the line) when the backup
 *   does not verify; a KV failure during the writes can leave the restore partly done
 */
export async function restoreBackup(
  store: Store,
  bytes: Uint8Array,
  options: BackupReadOptions = {},
): Promise<number> {
  const started = performance.now();
  try {
    const written = await restoreChecked(store, bytes, options);
    publishBackup("restore", started, { entries: written, bytes: bytes.byteLength, ok: true });
    return written;
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    publishBackup("restore", started, { entries: 0, bytes: bytes.byteLength, ok: false, reason });
    throw e;
  }
}

async function restoreChecked(
  store: Store,
  bytes: Uint8Array,
  options: BackupReadOptions,
): Promise<number> {
  const check = await checkBackup(bytes, options);
  if (!check.ok) {
    throw new ChorusError("invalid_request", `Cannot restore the backup: ${check.reason}`);
  }
  let batch: Entry[] = [];
  let size = 0;
  let keySize = 0;
  let written = 0;
  const flush = async () => {
    if (!batch.length) return;
    const result = await store.commit({
      checks: [],
      mutations: batch.map((e) => ({ type: "set" as const, key: e.key, value: e.value })),
      bytes: size,
    });
    if (!result.ok) throw new ChorusError("conflict", "Cannot restore the backup: retry");
    written += batch.length;
    batch = [];
    size = 0;
    keySize = 0;
  };
  try {
    await scan(bytes, options, { entries: 0 }, async (entry) => {
      const bytesOf = entry.keyBytes + entry.valueBytes;
      if (
        batch.length >= BATCH_ENTRIES || size + bytesOf > BATCH_BYTES ||
        keySize + entry.keyBytes > BATCH_KEY_BYTES
      ) await flush();
      batch.push(entry);
      size += bytesOf;
      keySize += entry.keyBytes;
    });
  } catch (e) {
    // The first pass read the same bytes; this is here only so a surprise is still a 400.
    if (e instanceof Malformed) {
      throw new ChorusError("invalid_request", `Cannot restore the backup: ${e.message}`);
    }
    throw e;
  }
  await flush();
  return written;
}

/**
 * Whether the store holds any data (restore asks before overwriting a non-empty store). Running
 * instances' heartbeats and presence entries do not count.
 */
export async function storeIsEmpty(store: Store): Promise<boolean> {
  for await (const entry of store.list({ prefix: [] })) {
    if (!TRANSIENT.has(String(entry.key[0]))) return false;
  }
  return true;
}
