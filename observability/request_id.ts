/**
 * `X-Request-Id`: a well-formed id sent by the client (or a proxy in front) is echoed on the
 * response, so a request can be followed across logs. Ids are not invented for requests that
 * carry none: every extra header measurably slows Deno's HTTP server.
 * @module
 */
const VALID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The id to echo for a request's `X-Request-Id` header, or undefined when it is absent or bad. */
export function requestIdOf(header: string | undefined): string | undefined {
  return header && VALID.test(header) ? header : undefined;
}
