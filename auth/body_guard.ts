/**
 * Bounds every request body in size and time, without reading it up front.
 *
 * Hono's `bodyLimit` buffers a chunked body (one without `Content-Length`) whole before the next
 * middleware runs, so a client could make the server hold hundreds of megabytes before
 * authentication had even looked at the request. Here nothing is read ahead: a declared length
 * over the limit is refused at once, and the body is wrapped in a stream that counts bytes as the
 * route reads them and fails the request with 413 past the limit. The route's deadline
 * (see `deadlines.ts`) bounds the time: when it passes, the body is cancelled, so a client that
 * trickles bytes cannot keep a request open.
 *
 * Run it after authentication and rate limiting: a refused request never has a byte read.
 * @module
 */
import type { Context } from "hono";
import { ChorusError } from "../errors.ts";

/**
 * Why a request's body was refused while a route read it. Routes see the read fail and may turn
 * that into a generic error (a JSON validator answers "malformed JSON"); `app.onError` looks here
 * first so the client gets the real reason (413 or 504).
 */
const bodyFailures = new WeakMap<Context, ChorusError>();

/** The error that ended a request's body read early, if any (see {@linkcode guardBody}). */
export function bodyFailureOf(c: Context): ChorusError | undefined {
  return bodyFailures.get(c);
}

/** Whether a request carries a body (a length other than 0, or a transfer encoding). */
export function hasBody(c: Context): boolean {
  const length = c.req.header("content-length");
  return (length !== undefined && length !== "0") ||
    c.req.header("transfer-encoding") !== undefined;
}

/** The error for a body over `limit` bytes. */
export function tooLarge(limit: number): ChorusError {
  return new ChorusError(
    "payload_too_large",
    `Cannot accept the request body: it exceeds ${limit} bytes`,
    { details: { limit } },
  );
}

/**
 * Limits the body of `c` to `limit` bytes. A declared `Content-Length` over the limit throws at
 * once; otherwise the body is replaced by a counting stream that fails past the limit. Returns the
 * function that cancels the body (for a deadline that ran out), recording `reason` as the
 * request's failure.
 * @throws {ChorusError} `payload_too_large` when the declared length exceeds `limit`
 */
export function guardBody(c: Context, limit: number): (reason: ChorusError) => void {
  const raw = c.req.raw;
  const body = raw.body;
  if (!body) return () => {};
  const declared = raw.headers.get("content-length");
  if (declared !== null && (!/^\d+$/.test(declared) || Number(declared) > limit)) {
    throw tooLarge(limit);
  }
  // Even a declared length is counted: the stream is what a deadline cancels.
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  let size = 0;
  let stop: ((reason: ChorusError) => void) | undefined;
  const counted = new ReadableStream<Uint8Array>({
    start(controller) {
      stop = (reason) => {
        controller.error(reason);
        (reader ?? body).cancel(reason).catch(() => {});
      };
    },
    async pull(controller) {
      reader ??= body.getReader();
      const { done, value } = await reader.read();
      if (done) return controller.close();
      size += value.byteLength;
      if (size > limit) {
        const error = tooLarge(limit);
        bodyFailures.set(c, error);
        controller.error(error);
        await reader.cancel(error).catch(() => {});
        return;
      }
      controller.enqueue(value);
    },
    cancel(reason) {
      return (reader ?? body).cancel(reason);
    },
  });
  c.req.raw = new Request(raw, { body: counted });
  return (reason) => {
    bodyFailures.set(c, reason);
    stop?.(reason);
  };
}
