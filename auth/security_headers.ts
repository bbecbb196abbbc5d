/**
 * Security headers on every response. Every response gets `X-Content-Type-Options: nosniff`;
 * pages (anything not JSON, such as the Swagger UI) also get framing, referrer and opener
 * protection. JSON answers carry only what applies to them: each extra header measurably slows
 * Deno's HTTP server, and framing or referrer rules mean nothing for a JSON body.
 *
 * Hot routes build their JSON answer with {@linkcode jsonAnswer}, so the answer is made once with
 * everything it carries instead of being changed after the fact.
 * @module
 */
const PAGE_HEADERS: [string, string][] = [
  ["X-Frame-Options", "DENY"],
  ["Referrer-Policy", "no-referrer"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
];

/** The headers of a JSON answer, security header included, plus `extra` (such as an `ETag`). */
function jsonHeaders(extra: Record<string, string>): Record<string, string> {
  return { "content-type": "application/json", "x-content-type-options": "nosniff", ...extra };
}

/** Marks an answer made whole by {@linkcode jsonAnswer}: the edge leaves its headers alone. */
const COMPLETE = Symbol("complete answer");

/**
 * A 200 JSON answer made once with every header it carries (see `jsonHeaders`). Why: Deno
 * prepares a response's native form when it is made; reading its `headers` afterwards (as
 * {@linkcode setSecurityHeaders} must for other answers) builds a `Headers` object and makes the
 * server prepare it again, a measurable share of a hot read. With CORS origins or a rate limit
 * configured, their middleware changes the answer's headers anyway (Hono then copies it into a new,
 * unmarked `Response`, which already carries the security header), so the saving is for the
 * default set-up.
 */
export function jsonAnswer(body: string, extra: Record<string, string>): Response {
  const res = new Response(body, { headers: jsonHeaders(extra) });
  (res as Response & { [COMPLETE]?: true })[COMPLETE] = true;
  return res;
}

/** Whether an answer was made by {@linkcode jsonAnswer}, so it already has every header. */
export function isCompleteAnswer(res: Response): boolean {
  return (res as Response & { [COMPLETE]?: true })[COMPLETE] === true;
}

/** Sets the security headers on a finished response, unless it was made with them. */
export function setSecurityHeaders(headers: Headers): void {
  if (headers.has("x-content-type-options")) return;
  headers.set("X-Content-Type-Options", "nosniff");
  if (!(headers.get("content-type") ?? "").includes("json")) {
    for (const [name, value] of PAGE_HEADERS) headers.set(name, value);
  }
}
