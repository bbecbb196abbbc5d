/**
 * Backups: one gzip-compressed file of newline-delimited JSON — a metadata header (format,
 * created_at, entry count, instance), every KV entry with its key and value (bytes, bigints and
 * KvU64 tagged so they round-trip), and a trailer with the SHA-256 of everything before it.
 * `verify` recomputes the checksum; `restore` writes the entries back in atomic batches.
 * @module
 */
import { ChorusError } from "../errors.ts";
import type { Store } from "./store.ts";

/** The header line of a backup. */
export interface BackupHeader {
  format: "chorus-backup/1";
  created_at: number;
  entries: number;
  instance: string;
}

/** What `verify` found. */
export interface BackupCheck {
  ok: boolean;
  header?: BackupHeader;
  entries: number;
  reason?: string;
}

const encoder = new TextEncoder();

/** Namespaces that hold live instances' bookkeeping, not data (member heartbeats, presence). */
const TRANSIENT = new Set(["member", "presence", "presence_seq", "presence_log", "rate"]);

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

/** Reverses {@linkcode encodeTagged}. */
export function decodeTagged(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeTagged);
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    if (typeof o.$bytes === "string") return fromBase64(o.$bytes);
    if (typeof o.$u64 === "string") return new Deno.KvU64(BigInt(o.$u64));
    if (typeof o.$bigint === "string") return BigInt(o.$bigint);
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
 */
export async function createBackup(store: Store, instance: string): Promise<Uint8Array> {
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
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function readLines(bytes: Uint8Array): Promise<string[]> {
  try {
    const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(
      new DecompressionStream("gzip"),
    );
    const text = await new Response(stream).text();
    return text.split("\n").filter((l) => l.length > 0);
  } catch (cause) {
    throw new ChorusError("invalid_request", "Cannot read the backup: not a gzip file", { cause });
  }
}

/** Checks a backup's format, entry count and checksum. */
export async function verifyBackup(bytes: Uint8Array): Promise<BackupCheck> {
  const lines = await readLines(bytes).catch(() => null);
  if (!lines || lines.length < 2) return { ok: false, entries: 0, reason: "not a backup" };
  let header: BackupHeader;
  let trailer: { sha256?: string };
  try {
    header = JSON.parse(lines[0]);
    trailer = JSON.parse(lines[lines.length - 1]);
  } catch {
    return { ok: false, entries: 0, reason: "malformed header or trailer" };
  }
  if (header.format !== "chorus-backup/1") {
    return { ok: false, entries: 0, reason: `unknown format ${header.format}` };
  }
  const body = lines.slice(0, -1).map((l) => encoder.encode(l + "\n"));
  const entries = lines.length - 2;
  if (entries !== header.entries) {
    return { ok: false, header, entries, reason: `header says ${header.entries} entries` };
  }
  if (trailer.sha256 !== await sha256Hex(body)) {
    return { ok: false, header, entries, reason: "checksum mismatch" };
  }
  return { ok: true, header, entries };
}

/**
 * Writes a verified backup's entries into the store (overwriting keys that exist), in atomic
 * batches within KV's limits. Returns how many entries were written.
 * @throws {ChorusError} `invalid_request` when the backup does not verify
 */
export async function restoreBackup(store: Store, bytes: Uint8Array): Promise<number> {
  const check = await verifyBackup(bytes);
  if (!check.ok) {
    throw new ChorusError("invalid_request", `Cannot restore the backup: ${check.reason}`);
  }
  const lines = await readLines(bytes);
  let batch: { key: Deno.KvKey; value: unknown }[] = [];
  let size = 0;
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
  };
  for (const line of lines.slice(1, -1)) {
    const parsed = JSON.parse(line);
    const entry = {
      key: decodeTagged(parsed.key) as Deno.KvKey,
      value: decodeTagged(parsed.value),
    };
    const bytesOf = line.length;
    if (batch.length >= 500 || size + bytesOf > 600 * 1024) await flush();
    batch.push(entry);
    size += bytesOf;
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
