/**
 * Export/restore providers for contexts: where `POST /contexts/:id/export` puts a snapshot and
 * where `restore` reads it back. `kv` keeps snapshots in an archive namespace of the same KV
 * (the default), `http` POSTs and GETs them at `CHORUS_EXPORT_URL/<id>`, and an embedding program
 * may pass its own pair of functions to `Chorus.open({ exportProvider })`.
 * @module
 */
import { ChorusError } from "../errors.ts";
import type { ResolvedConfig } from "../config.ts";
import type { Store } from "../storage/store.ts";
import { compressionOptions, encodeValue } from "../storage/codec.ts";
import { type BlobRef, dropBlob, layoutBlob, readBlob } from "../storage/chunked.ts";
import { ctxArchiveChunkKey, ctxArchiveKey } from "../storage/keys.ts";
import type { JsonObject } from "../deltas/json.ts";

/** A context as exported: enough to restore it and to tell which version it was. */
export interface ContextSnapshot {
  /** The context's id. */
  id: string;
  /** The context's version when the snapshot was taken. */
  version: number;
  /** The context at that version. */
  context: JsonObject;
  /** When the snapshot was taken (ms since epoch). */
  exported_at: number;
}

/**
 * Where snapshots go. Both functions may throw; `ChorusError`s pass through to the caller, other
 * errors become `unavailable`.
 */
export interface ExportProvider {
  /** A short name reported in export results (`kv`, `http`, or the embedder's). */
  name: string;
  /** Stores a snapshot under `id`, replacing any earlier one. */
  save(id: string, snapshot: ContextSnapshot): Promise<void>;
  /** The snapshot stored under `id`, or null when there is none. */
  load(id: string): Promise<ContextSnapshot | null>;
}

/**
 * The `kv` provider: snapshots under `["ctx_archive", id]` in the same KV (chunked if large). It
 * is the default because it needs nothing beyond the store Chorus already has.
 * @param store the KV store to keep snapshots in
 * @param config decides how snapshots are compressed before they are written
 * @throws {ChorusError} from `save`: `conflict` when another export of the same id commits first;
 * from `load`: `unavailable` when the archive keeps changing while it is read
 */
export function kvExportProvider(store: Store, config: ResolvedConfig): ExportProvider {
  const chunkKey = (id: string) => (i: number) => ctxArchiveChunkKey(id, i);
  return {
    name: "kv",
    async save(id, snapshot) {
      const encoded = encodeValue(snapshot, compressionOptions(config), `snapshot of "${id}"`);
      const laid = layoutBlob(encoded, chunkKey(id));
      const head = await store.get<BlobRef>(ctxArchiveKey(id));
      const stale = dropBlob(head.value ?? undefined, chunkKey(id))
        .filter((m) => (m.key[2] as number) >= (laid.ref.n ?? 0));
      const result = await store.commit({
        checks: [{ key: ctxArchiveKey(id), versionstamp: head.versionstamp }],
        mutations: [
          ...laid.mutations,
          ...stale,
          { type: "set", key: ctxArchiveKey(id), value: laid.ref },
        ],
        bytes: encoded.bytes.byteLength + 256,
      });
      if (!result.ok) {
        throw new ChorusError("conflict", `Cannot export "${id}": another export is under way`);
      }
    },
    async load(id) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const head = await store.get<BlobRef>(ctxArchiveKey(id));
        if (!head.value) return null;
        const value = await readBlob(store, head.value, chunkKey(id), "strong");
        if (value !== undefined) return value as ContextSnapshot;
      }
      throw new ChorusError("unavailable", `Cannot restore "${id}": the archive kept changing`);
    },
  };
}

/**
 * The `http` provider: `POST <baseUrl>/<id>` with the snapshot as JSON to save, `GET` to load
 * (404 = no snapshot). The id is URL-encoded as one path segment; the ids `.` and `..` are refused
 * with `invalid_request`, since URLs resolve them (even as `%2E%2E`) to the base or its parent.
 * @param options.fetch the fetch to use (tests and embedders may pass their own)
 */
export function httpExportProvider(
  baseUrl: string,
  options: { fetch?: typeof fetch } = {},
): ExportProvider {
  const doFetch = options.fetch ?? fetch;
  const base = baseUrl.replace(/\/+$/, "");
  const url = (action: string, id: string) => {
    if (id === "." || id === ".." || id === "") {
      throw new ChorusError(
        "invalid_request",
        `Cannot ${action} context ${JSON.stringify(id)} with the http export provider: ` +
          `"", "." and ".." cannot name a URL path segment`,
      );
    }
    return `${base}/${encodeURIComponent(id)}`;
  };
  const failed = (action: string, id: string, why: string, cause?: unknown) =>
    new ChorusError("unavailable", `Cannot ${action} "${id}": the export server ${why}`, {
      cause,
    });
  return {
    name: "http",
    async save(id, snapshot) {
      const target = url("export", id);
      let res: Response;
      try {
        res = await doFetch(target, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(snapshot),
        });
      } catch (e) {
        throw failed("export", id, "is not reachable", e);
      }
      await res.body?.cancel();
      if (!res.ok) throw failed("export", id, `answered ${res.status}`);
    },
    async load(id) {
      const target = url("restore", id);
      let res: Response;
      try {
        res = await doFetch(target, { headers: { accept: "application/json" } });
      } catch (e) {
        throw failed("restore", id, "is not reachable", e);
      }
      if (res.status === 404) {
        await res.body?.cancel();
        return null;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw failed("restore", id, `answered ${res.status}`);
      }
      try {
        return parseSnapshot(await res.json(), id);
      } catch (e) {
        if (e instanceof ChorusError) throw e;
        throw failed("restore", id, "sent malformed JSON", e);
      }
    },
  };
}

/**
 * Checks a snapshot read from outside: an object with a `context` object; `version` and
 * `exported_at` default to 0 when missing.
 * @throws {ChorusError} `unavailable` when the snapshot is not usable
 */
export function parseSnapshot(value: unknown, id: string): ContextSnapshot {
  const v = value as Partial<ContextSnapshot> | null;
  const context = v?.context;
  if (!v || typeof context !== "object" || context === null || Array.isArray(context)) {
    throw new ChorusError(
      "unavailable",
      `Cannot restore "${id}": the stored snapshot has no context object`,
    );
  }
  return {
    id,
    version: Number.isSafeInteger(v.version) ? v.version! : 0,
    context,
    exported_at: typeof v.exported_at === "number" ? v.exported_at : 0,
  };
}

/**
 * The provider the configuration names, unless an embedder passed one.
 * @returns undefined when none can be built (`http` without a URL)
 */
export function resolveExportProvider(
  store: Store,
  config: ResolvedConfig,
  custom?: ExportProvider | Omit<ExportProvider, "name">,
): ExportProvider | undefined {
  if (custom) return { name: "custom", ...custom };
  if (config.exportProvider === "http") {
    return config.exportUrl ? httpExportProvider(config.exportUrl) : undefined;
  }
  return kvExportProvider(store, config);
}
