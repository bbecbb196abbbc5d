/**
 * OpenTelemetry spans for Chorus's own work, through `@opentelemetry/api`: the wait in an actor's
 * mailbox, group commits and each atomic KV commit, and KV reads. With Deno's built-in
 * OpenTelemetry on (`OTEL_DENO=true`) they are children of the `Deno.serve` request span and are
 * exported with it; an embedding program's own SDK receives them the same way. Without a tracer
 * provider the API hands out non-recording spans: a few dozen nanoseconds each, and no context
 * switch (see {@linkcode inSpan}).
 *
 * Spans are started with `startSpan` and made active with `context.with`: the API's
 * `startActiveSpan` loses its spans under Deno 2.9 with `@opentelemetry/api` 1.10.
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";

/** The tracer every Chorus span comes from (instrumentation scope `chorus`). */
export const tracer = trace.getTracer("chorus");

/** Span names, for readers of traces. */
export const SPAN_NAMES = {
  /** A message's wait in an actor's mailbox, from post to the start of its handling. */
  mailbox: "chorus.mailbox",
  /** One group commit: the intents that queued while the previous commit ran. */
  commit: "chorus.commit",
  /** One atomic commit sent to KV. */
  kvCommit: "chorus.kv.commit",
  /** One read sent to KV. */
  kvRead: "chorus.kv.read",
} as const;

/** Ends `span` as failed with `error`. */
export function failSpan(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: String((error as Error)?.message) });
}

/**
 * Runs `fn` inside a new span (the active one while `fn` runs, so spans it starts are its
 * children), records a throw, and ends the span. When nothing records, `fn` just runs.
 * @param parent the context to start the span in; default the active one
 */
export async function inSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
  parent?: Context,
): Promise<T> {
  const span = tracer.startSpan(name, { attributes }, parent);
  if (!span.isRecording()) return fn(span);
  try {
    return await context.with(trace.setSpan(parent ?? context.active(), span), () => fn(span));
  } catch (e) {
    failSpan(span, e);
    throw e;
  } finally {
    span.end();
  }
}

/** The active context, to start a later span in (e.g. after a wait in a mailbox). */
export function activeContext(): Context {
  return context.active();
}
