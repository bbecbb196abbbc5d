/**
 * `X-Request-Id`: echoes a well-formed id sent by the client (or a proxy), else assigns one —
 * this instance's id plus a counter, which is unique without calling the random generator on
 * every request.
 * @module
 */
import type { MiddlewareHandler } from "hono";

const VALID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The middleware; `instanceId` makes assigned ids unique across instances. */
export function requestIdMiddleware(instanceId: string): MiddlewareHandler {
  let counter = 0;
  const prefix = `${instanceId.slice(-10)}-`;
  return async (c, next) => {
    const given = c.req.header("x-request-id");
    const id = given && VALID.test(given) ? given : prefix + (++counter).toString(36);
    await next();
    c.res.headers.set("X-Request-Id", id);
  };
}
