/**
 * Pieces every route module shares: the error schema, the consistency query, If-Match parsing and
 * the validation hook that turns zod failures into the SPEC's `invalid_request`.
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { Hook } from "@hono/zod-openapi";
import type { Env } from "hono";
import { ChorusError } from "../errors.ts";

/** The SPEC error body, for OpenAPI. */
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
