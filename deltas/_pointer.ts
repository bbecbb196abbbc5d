/**
 * RFC 6901 JSON Pointer encoding, shared by the formats in `deltas/` (private to this folder).
 * @module
 */

/** Escapes one reference token: `~` becomes `~0` and `/` becomes `~1` (RFC 6901 §3). */
export function escapeToken(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

/** Builds a pointer such as `/a/b~1c` from its unescaped tokens; `[]` gives `""` (the root). */
export function formatPointer(tokens: readonly string[]): string {
  let out = "";
  for (const token of tokens) out += "/" + escapeToken(token);
  return out;
}

/**
 * Splits a pointer into unescaped tokens, or returns undefined when it is not a valid RFC 6901
 * pointer (does not start with `/`, or has a `~` not followed by `0` or `1`).
 */
export function parsePointer(pointer: string): string[] | undefined {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) return undefined;
  const tokens = pointer.slice(1).split("/");
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (!token.includes("~")) continue;
    if (/~(?![01])/.test(token)) return undefined;
    tokens[i] = token.replaceAll("~1", "/").replaceAll("~0", "~");
  }
  return tokens;
}
