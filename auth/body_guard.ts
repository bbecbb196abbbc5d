/**
 * Bounds every request body in size and time, without reading it up front.
 *
 * Hono's `bodyLimit` buffers a chunked body (one without `Content-Length`) whole before the next
 * middleware runs, so a client could make the server hold hundreds of megabytes before
 * authentication had even looked at the request. Here nothing is read ahead: a declared length
 * over the limit is refused at once; a body within its declared length is read whole when a route
 * asks (HTTP framing holds the client to that length); a chunked body is counted as
 * {@linkcode readBody} reads it and fails the request with 413 past the limit. The route's
 * deadline (see `deadlines.ts`) bounds the time: when it passes, the client gets 504 and a body
 * still being streamed is cancelled, so a client that trickles bytes cannot keep a request open (a
 * body being read whole ends with the request).
 *
 * Run it after authentication and rate limiting: a refused request never has a byte read.
 * @module
 */
import type { Context } from "hono";
import { ChorusError } from "../errors.ts";
import { joinChunks } from "../storage/codec.ts";

/** A guarded body: its limit, the reader {@linkcode readBody} holds, and why it was cut off. */
interface Guard {
  limit: number;
  /**
   * Whether the request declared its length (within the limit): HTTP framing then bounds the body
   * and it is read whole, without a stream.
   */
  declared: boolean;
  reader?: ReadableStreamDefaultReader<Uint8Array>;
  /**
   * Why the body was refused while it was read. Routes see the read fail and may turn that into a
   * generic error (a JSON validator answers "malformed JSON"); `app.onError` looks here first so
   * the client gets the real reason (413 or 504).
   */
  failure?: ChorusError;
}

/**
 * Where a request context keeps its guard (the context outlives anything a route does to the
 * request): a property of the context rather than a `WeakMap` entry every write would pay for.
 */
const GUARD = Symbol("body guard");
type Guarded = Context & { [GUARD]?: Guard };

/** The error that ended a request's body read early, if any (see {@linkcode guardBody}). */
export function bodyFailureOf(c: Context): ChorusError | undefined {
  return (c as Guarded)[GUARD]?.failure;
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
 * Limits the body of `c` to `limit` bytes, to be read with {@linkcode readBody}. A declared
 * `Content-Length` over the limit throws at once; otherwise bytes are counted as they are read.
 * Returns the function that cancels the body (for a deadline that ran out), recording `reason` as
 * the request's failure. The request itself is left as it is: replacing it to wrap the body costs
 * a copy of the request and its abort signal on every write.
 * @throws {ChorusError} `payload_too_large` when the declared length exceeds `limit`
 */
export function guardBody(c: Context, limit: number): (reason: ChorusError) => void {
  const declared = c.req.header("content-length");
  if (declared !== undefined && (!/^\d+$/.test(declared) || Number(declared) > limit)) {
    throw tooLarge(limit);
  }
  const guard: Guard = { limit, declared: declared !== undefined };
  (c as Guarded)[GUARD] = guard;
  return (reason) => {
    guard.failure ??= reason;
    if (guard.reader) guard.reader.cancel(reason).catch(() => {});
    else {
      const body = c.req.raw.body;
      if (body && !body.locked) body.cancel(reason).catch(() => {});
    }
  };
}

/**
 * Reads the whole body of `c` within its guard: fails with 413 past the limit (cancelling the
 * rest, never buffering it) and with the guard's reason when it was cancelled. Every route that
 * reads a body reads it here. A request without a guard (no body method) is read as it is.
 * @throws {ChorusError} `payload_too_large`, or the reason the body was cancelled
 */
export async function readBody(c: Context): Promise<Uint8Array> {
  const guard = (c as Guarded)[GUARD];
  if (guard?.failure) throw guard.failure;
  if (guard?.declared) {
    // Its length is declared and within the limit: read it whole. A body hyper already holds
    // (a small request's, usually) is then handed over as it is, with no stream made around it.
    let bytes: Uint8Array;
    try {
      bytes = await c.req.raw.bytes();
    } catch (e) {
      throw guard.failure ?? e;
    }
    if (guard.failure) throw guard.failure;
    // Framing holds a client to its declared length; a request made in process may say otherwise.
    if (bytes.byteLength > guard.limit) throw guard.failure = tooLarge(guard.limit);
    return bytes;
  }
  const body = c.req.raw.body;
  if (!body) return new Uint8Array(0);
  if (!guard) return new Uint8Array(await c.req.raw.arrayBuffer());
  const reader = guard.reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (guard.failure) throw guard.failure;
      if (done) break;
      size += value.byteLength;
      if (size > guard.limit) {
        guard.failure = tooLarge(guard.limit);
        reader.cancel(guard.failure).catch(() => {});
        throw guard.failure;
      }
      chunks.push(value);
    }
  } catch (e) {
    throw guard.failure ?? e;
  }
  return joinChunks(chunks);
}
