/**
 * Content negotiation between JSON and `application/x-protobuf` for the routes whose bodies have a
 * proto message (`proto/chorus.proto`): `Content-Type` picks how a body is read, `Accept` how
 * the answer is written. Private to routes/.
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { ChorusError } from "../errors.ts";

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
  const bytes = new Uint8Array(await c.req.arrayBuffer());
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
