/**
 * Content negotiation between JSON and `application/x-protobuf` for the routes whose bodies have a
 * proto message (`proto/chorus.proto`): `Content-Type` picks how a body is read, `Accept` how
 * the answer is written. Private to routes/.
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ChorusError } from "../errors.ts";
import { readBody } from "../auth/body_guard.ts";

/** The protobuf media type. */
export const PROTOBUF = "application/x-protobuf";

/** The OpenAPI schema of a protobuf body (bytes of one message). */
export const ProtobufBytes = z.string().openapi({ format: "binary" });

/** Whether the request asks for a protobuf answer (`Accept: application/x-protobuf`). */
export function wantsProtobuf(c: Context): boolean {
  return (c.req.header("accept") ?? "").toLowerCase().includes(PROTOBUF);
}

/** Whether the request body is protobuf (`Content-Type: application/x-protobuf`). */
export function sendsProtobuf(c: Context): boolean {
  const mime = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  return mime === PROTOBUF;
}

/**
 * Reads a protobuf body with `decode`.
 * @throws {ChorusError} `invalid_request` when the bytes are not a valid message
 */
export async function readProtobuf<T>(
  c: Context,
  decode: (bytes: Uint8Array) => T,
  what: string,
): Promise<T> {
  const bytes = await readBody(c);
  try {
    return decode(bytes);
  } catch (e) {
    throw new ChorusError(
      "invalid_request",
      `Cannot decode the protobuf body as ${what}: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/**
 * Answers `body` as JSON, or as the protobuf message `encode` makes when the client accepts it.
 * Fields beyond the message's are left out of the protobuf form.
 */
export function negotiate<T>(
  c: Context,
  body: T,
  status: 200 | 201,
  encode: (value: T) => Uint8Array<ArrayBuffer>,
): Response {
  if (wantsProtobuf(c)) {
    return new Response(encode(body), { status, headers: { "content-type": PROTOBUF } });
  }
  return c.json(body as object, status);
}

/**
 * A response declaration for `createRoute` that answers JSON, or protobuf bytes on
 * `Accept: application/x-protobuf` ({@linkcode negotiate}), so the OpenAPI document lists both.
 */
export function jsonOrProtobuf<T extends z.ZodType>(schema: T, description = "OK") {
  return {
    description,
    content: { "application/json": { schema }, [PROTOBUF]: { schema: ProtobufBytes } },
  };
}

/**
 * A request body declaration for `createRoute` that takes JSON or protobuf bytes
 * ({@linkcode sendsProtobuf}). It is not `required`, so a protobuf body (or none) passes the JSON
 * validator and the route reads it itself ({@linkcode jsonOrProtobufInput}).
 */
export function jsonOrProtobufBody<T extends z.ZodType>(schema: T) {
  return {
    content: { "application/json": { schema }, [PROTOBUF]: { schema: ProtobufBytes } },
    required: false,
  };
}

/**
 * The input of a route declared with {@linkcode jsonOrProtobufBody}: a protobuf body decoded and
 * made into the input, else the validated JSON body, so each such route reads its body one way.
 * @param options.json the validated JSON body (`c.req.valid("json")`), asked for only when the
 *   body is not protobuf
 * @param options.decode the message's decoder; `what` names the message in errors
 * @param options.fromProto the input a decoded message stands for
 * @throws {ChorusError} `invalid_request` for bytes that are not the message, or no JSON body
 */
export async function jsonOrProtobufInput<T, M>(
  c: Context,
  options: {
    json: () => unknown;
    decode: (bytes: Uint8Array) => M;
    what: string;
    fromProto: (message: M) => T;
  },
): Promise<T> {
  if (!sendsProtobuf(c)) return requireJsonBody<T>(c, options.json());
  return options.fromProto(await readProtobuf(c, options.decode, options.what));
}

/**
 * The validated JSON body, or a clear 400 when there was none (a body declared with
 * {@linkcode jsonOrProtobufBody} is not `required`, so the validator lets its absence through).
 */
function requireJsonBody<T>(c: Context, body: unknown): T {
  if (body === undefined || body === null || typeof body !== "object") {
    throw new ChorusError(
      "invalid_request",
      `Cannot ${c.req.method} ${c.req.path}: send a JSON body (or application/x-protobuf)`,
    );
  }
  return body as T;
}
