/**
 * Pieces every route module shares: the error schema, the consistency query, If-Match parsing,
 * the path-id check, the strict UTF-8 check of JSON bodies and the validation hook that turns zod
 * failures into `invalid_request`.
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import type { Context, Env } from "hono";
import { readBody } from "../auth/body_guard.ts";
import { ChorusError } from "../errors.ts";

/** The error body (docs/http-api.md), for OpenAPI. */
export const ErrorSchema = z.object({
  error: z.object({
    code: z.string().openapi({ example: "not_found" }),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
}).openapi("Error");

/** Standard error responses to list in every route. */
export function errorResponses(...statuses: number[]) {
  const out: Record<number, { description: string; content: Record<string, unknown> }> = {};
  for (const s of statuses) {
    out[s] = {
      description: `Error (${s})`,
      content: { "application/json": { schema: ErrorSchema } },
    };
  }
  return out;
}

/** A JSON response declaration for `createRoute`'s `responses`. */
export function jsonResponse<T extends z.ZodType>(schema: T, description = "OK") {
  return { description, content: { "application/json": { schema } } };
}

/** A required JSON request body declaration for `createRoute`'s `request.body`. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { content: { "application/json": { schema } }, required: true };
}

/** `?consistency=strong|leader|eventual`. */
export const ConsistencyQuery = z.enum(["strong", "leader", "eventual"]).optional().openapi({
  description: "Read consistency; the default comes from CHORUS_READ_CONSISTENCY",
});

/** Turns zod validation failures into `invalid_request` with the issues as details. */
// deno-lint-ignore no-explicit-any
export const validationHook: Hook<any, Env, any, any> = (result) => {
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({
      path: i.path.join("."),
      message: i.message,
    }));
    const first = issues[0];
    throw new ChorusError(
      "invalid_request",
      `Cannot accept the request: ${first?.path ? `${first.path}: ` : ""}${first?.message}`,
      { details: { issues } },
    );
  }
};

/**
 * Parses `If-Match: "<version>"` (quotes optional, `*` = must exist).
 * @throws {ChorusError} `invalid_request` for anything else
 */
export function parseIfMatch(header: string | undefined): number | "*" | undefined {
  if (header === undefined) return undefined;
  const text = header.trim();
  if (text === "*") return "*";
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(text);
  if (!m) {
    throw new ChorusError(
      "invalid_request",
      `Cannot use If-Match ${JSON.stringify(header)}: expected a quoted version such as "3"`,
    );
  }
  return Number(m[1]);
}

/** The ETag of a version. */
export function etag(version: number): string {
  return `"${version}"`;
}

/**
 * Whether an id is `.` or `..`: URL path segments that resolve to the current or parent path
 * (also as `%2E`/`%2E%2E`), so they can never name a resource in a URL.
 */
export function isDotSegment(id: string): boolean {
  return id === "." || id === "..";
}

/**
 * A path id parameter (`/contexts/{id}`, `/reels/{id}`, …): a string that is not `.` or `..`
 * (see {@linkcode isDotSegment}); the product's own check applies on top.
 */
export function pathId(example: string, description?: string) {
  return z.string().refine((id) => !isDotSegment(id), {
    message: 'cannot be "." or ".."',
  }).openapi({ param: { name: "id", in: "path" }, example, description });
}

/** JSON media types, as Hono's validator recognises them. */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a JSON request body (through the body guard, so within its size and time bounds) and
 * refuses one that is not valid UTF-8 with 400 `invalid_request` (Hono's JSON parsing would
 * silently turn each bad byte into U+FFFD and store that). The decoded text is left in Hono's body
 * cache, so the route's validator parses it without reading the body again. The app calls it for
 * every POST, PUT and PATCH with a JSON media type, once authentication has passed.
 * @throws {ChorusError} `invalid_request` for invalid UTF-8; the guard's errors (413, 504)
 */
export async function readJsonBody(c: Context): Promise<void> {
  const cache = c.req.bodyCache;
  if (Object.keys(cache).length !== 0) return;
  const bytes = await readBody(c);
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new ChorusError("invalid_request", "Cannot parse the request body: invalid UTF-8");
  }
  // Hono caches body promises (its type says the values); json() reads the cached text.
  (cache as Record<string, unknown>).text = Promise.resolve(text);
}

/** A JSON `Content-Type` with parameters, as the OpenAPI validator's media-type gate accepts. */
const JSON_CONTENT_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/**
 * The JSON body of a request as the validator middleware would see it, for routes that validate
 * synchronously: the same 415 for another media type (or a body without one), the parsed body
 * ({@linkcode readJsonBody} has cached its text), or `{}` when there is none.
 * @throws {ChorusError} `unsupported_media_type`; `invalid_request` for malformed JSON
 */
export async function jsonBodyOf(c: Context): Promise<unknown> {
  const type = c.req.header("content-type");
  if (type ? !JSON_CONTENT_TYPE.test(type) : (await readBody(c)).byteLength > 0) {
    throw new ChorusError(
      "unsupported_media_type",
      "Cannot accept the request body: send Content-Type: application/json",
    );
  }
  if (!("text" in c.req.bodyCache)) return {};
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new ChorusError("invalid_request", "Cannot parse the request body: malformed JSON");
  }
}

/** Whether a media type (without parameters) is JSON, as Hono's validator recognises it. */
export function isJsonMediaType(mime: string): boolean {
  return JSON_MEDIA_TYPE.test(mime);
}

/**
 * The client's IP address, for the per-address limits: `unknown` for a request made in process
 * (`app.fetch` with no connection info) or one over a Unix socket. Read from `Deno.serve`'s
 * handler info directly rather than through Hono's `getConnInfo`, which throws when there is
 * none: catching an exception on every request cost more than the rest of a cached read.
 */
export function clientAddress(c: Context): string {
  const addr = (c.env as { remoteAddr?: unknown } | undefined)?.remoteAddr;
  if (typeof addr !== "object" || addr === null) return "unknown";
  const hostname = (addr as { hostname?: unknown }).hostname;
  return typeof hostname === "string" ? hostname : "unknown";
}
