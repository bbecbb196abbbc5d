/**
 * Backups over HTTP (scope `admin`): `GET /admin/backup` streams a backup file (the same format as
 * `deno task cli backup create`), `POST /admin/restore` writes one back. Restoring into a
 * non-empty store needs `?force=true`, as the CLI asks before overwriting.
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { ChorusError } from "../errors.ts";
import { readBody } from "../auth/body_guard.ts";
import type { Store } from "../storage/store.ts";
import { createBackup, restoreBackup, storeIsEmpty } from "../storage/backup.ts";
import { errorResponses, jsonResponse, validationHook } from "./_common.ts";

/** Largest backup accepted by `POST /admin/restore`. */
export const MAX_RESTORE_BYTES = 512 * 1024 * 1024;

/**
 * How long `POST /admin/restore` may take, upload included (5 minutes: 512 MiB at about 2 MB/s).
 * Past it the client gets 504 and the rest of the body is not read.
 */
export const RESTORE_TIMEOUT_MS = 300_000;

/** Dependencies of {@linkcode backupRoutes}. */
export interface BackupRoutesDeps {
  store: Store;
  instanceId: string;
}

const backupRoute = createRoute({
  method: "get",
  path: "/admin/backup",
  summary: "Download a backup of every KV entry (gzip; header, entries, SHA-256 checksum)",
  responses: {
    200: {
      description: "The backup file",
      content: { "application/gzip": { schema: z.string().openapi({ format: "binary" }) } },
    },
    ...errorResponses(401, 403),
  },
});

const restoreRoute = createRoute({
  method: "post",
  path: "/admin/restore",
  summary: "Restore a backup (verified first); a non-empty store needs ?force=true",
  request: {
    query: z.object({ force: z.enum(["true", "false"]).optional() }),
    body: {
      required: true,
      content: {
        "application/gzip": { schema: z.string().openapi({ format: "binary" }) },
        "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) },
      },
    },
  },
  responses: {
    200: jsonResponse(z.object({ restored: z.number().int() })),
    ...errorResponses(400, 401, 403, 409, 413),
  },
});

/** The backup routes, mounted under `/api/v1`. */
export function backupRoutes(deps: BackupRoutesDeps): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.openapi(backupRoute, async (c) => {
    const bytes = await createBackup(deps.store, deps.instanceId);
    const name = `chorus-${new Date().toISOString().replaceAll(":", "-")}.backup.gz`;
    return c.body(bytes.buffer as ArrayBuffer, 200, {
      "Content-Type": "application/gzip",
      "Content-Disposition": `attachment; filename="${name}"`,
    });
  });
  app.openapi(restoreRoute, async (c) => {
    const { force } = c.req.valid("query");
    // Ask before reading the body: a refusal should not cost an upload's worth of memory.
    if (force !== "true" && !(await storeIsEmpty(deps.store))) {
      await c.req.raw.body?.cancel().catch(() => {});
      throw new ChorusError(
        "conflict",
        "Cannot restore into a store that has data: repeat with ?force=true to overwrite",
      );
    }
    // The app's body guard bounds this read: MAX_RESTORE_BYTES, RESTORE_TIMEOUT_MS.
    const bytes = await readBody(c);
    return c.json({ restored: await restoreBackup(deps.store, bytes) }, 200);
  });
  return app;
}
