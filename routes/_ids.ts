/**
 * The `{id}` path parameter of the reels and users routes. Both take the ids of `ID_PATTERN` (the
 * rule their APIs check), so it is declared once and the OpenAPI document states the same rule
 * for both. Private to routes/.
 * @module
 */
import { z } from "@hono/zod-openapi";
import { ID_PATTERN } from "../actors/reel_api.ts";
import { pathId } from "./_common.ts";

/** The `{id}` path parameter of a reel or a user, with `example` shown in the OpenAPI document. */
export function idParam(example: string) {
  return z.object({
    id: pathId(
      example,
      `1–128 characters of A-Z a-z 0-9 _ . : - (${ID_PATTERN.source}), not "." or ".."`,
    ),
  });
}
