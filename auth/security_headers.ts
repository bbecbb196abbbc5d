/**
 * Security headers on every response. Every response gets `X-Content-Type-Options: nosniff`;
 * pages (anything not JSON, such as the Swagger UI) also get framing, referrer and opener
 * protection. JSON answers carry only what applies to them: each extra header measurably slows
 * Deno's HTTP server, and framing or referrer rules mean nothing for a JSON body.
 * @module
 */
const PAGE_HEADERS: [string, string][] = [
  ["X-Frame-Options", "DENY"],
  ["Referrer-Policy", "no-referrer"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
];

/** Sets the security headers on a finished response. */
export function setSecurityHeaders(headers: Headers): void {
  headers.set("X-Content-Type-Options", "nosniff");
  if (!(headers.get("content-type") ?? "").includes("json")) {
    for (const [name, value] of PAGE_HEADERS) headers.set(name, value);
  }
}
