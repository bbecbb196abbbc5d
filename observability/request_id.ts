/**
 * `X-Request-Id`: a well-formed id sent by the client (or a proxy in front) is echoed on the
 * response, so a request can be followed across logs. Ids are not invented for requests that
 * carry none: every extra header measurably slows Deno's HTTP server.
 * @module
 */
import type { MiddlewareHandler } from "hono";

const VALID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The middleware. */
export function requestIdMiddleware(): MiddlewareHandler {
  return async (c, next) => {
    const given = c.req.header("x-request-id");
    await next();
    if (given && VALID.test(given)) c.res.headers.set("X-Request-Id", given);
  };
}
