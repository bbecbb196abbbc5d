/**
 * The one error type Chorus throws on purpose, and its mapping to the error body of
 * docs/http-api.md.
 *
 * Every layer throws `ChorusError` with an error code; `app.onError` turns it into
 * `{"error": {"code", "message", "details"?}}` with the matching status. Anything else is a bug and
 * becomes a 500 `internal` whose cause is logged, never sent.
 * @module
 */

/** Error codes with their HTTP statuses (docs/http-api.md, "Errors"). */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_key: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  timeout: 504,
} as const;

/** An error code such as `"not_found"`. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** Options of {@linkcode ChorusError}. */
export interface ChorusErrorOptions {
  /** Extra machine-readable facts sent as `error.details`. */
  details?: Record<string, unknown>;
  /** The underlying error, logged but never sent. */
  cause?: unknown;
  /** Headers to add to the HTTP response (e.g. `Retry-After`). */
  headers?: Record<string, string>;
}

/**
 * An expected failure with an error code. Messages read `Cannot <action> "<value>": <reason>`.
 *
 * @example
 * ```ts
 * throw new ChorusError("not_found", `Cannot get "a": no such key`);
 * ```
 */
export class ChorusError extends Error {
  /** The error code. */
  readonly code: ErrorCode;
  /** The HTTP status that goes with {@linkcode code}. */
  readonly status: number;
  /** Extra facts for the client. */
  readonly details?: Record<string, unknown>;
  /** Headers the HTTP layer adds to the response. */
  readonly headers?: Record<string, string>;

  /** An error with an error code; `message` reads `Cannot <action> "<value>": <reason>`. */
  constructor(code: ErrorCode, message: string, options: ChorusErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "ChorusError";
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.details = options.details;
    this.headers = options.headers;
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/**
 * Builds the error body for any thrown value; unknown errors become `internal` with a
 * generic message so no stack or internal text leaks.
 * @returns the body and the HTTP status to send it with
 */
export function toErrorBody(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof ChorusError) {
    const body: ErrorBody = { error: { code: error.code, message: error.message } };
    if (error.details) body.error.details = error.details;
    return { status: error.status, body };
  }
  return {
    status: 500,
    body: { error: { code: "internal", message: "Internal error; it has been logged" } },
  };
}
