/**
 * One writer among the workers of one process that serve one KV file (`deno serve --parallel`).
 * Each worker has its own SQLite connection to the file, and SQLite lets one connection write at
 * a time: a worker that finds the file locked waits in SQLite's busy handler, which sleeps in
 * steps of milliseconds. Two workers writing at once therefore commit less than one alone
 * (measured: PUTs at half to two thirds of one worker's rate), and two workers writing the same
 * keys also find each other's cached actors stale. Here the workers find each other over a
 * `BroadcastChannel`, take the one started first (the smallest instance id, a ULID) as the writer,
 * and every other worker hands its writes to it and answers with the writer's result: kv writes
 * whole (`KvApi.serveHandedOver`: the writer's actor runs them, so no cache goes stale), every
 * other commit as its intent (`Store.serveHandedOver`: actors stay on their worker, and the writer
 * commits their intents together with its own).
 *
 * The writer only says where writes go, not what makes them correct: every write still commits
 * with its versionstamp checks, so workers that disagree for a moment (one starting, one
 * stopping) cost a conflict and a retry, never a lost or doubled write. A handed-over commit is
 * made where it arrives, never handed on, so no write can circle.
 *
 * Calls from one event-loop turn go out as one message: under load, a message carries many.
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";
import { ChorusError, type ErrorCode } from "../errors.ts";
import { log } from "../log.ts";

/** Options of {@linkcode OneWriter}. */
export interface OneWriterOptions {
  /** The channel name shared by the workers that serve one KV file. */
  channel: string;
  /** This worker's id (its instance id, a ULID): the smallest id known is the writer. */
  id: string;
  /** Time source for call deadlines. */
  clock: Clock;
  /**
   * How long a handed-over write may go unanswered before the writer is taken as gone: the call
   * fails with `unavailable` and this worker stops handing writes to it until it is heard from
   * again. Default 10 s.
   */
  timeoutMs?: number;
}

/** What the writer answers for a handed-over write. */
export interface WriterAnswer {
  /** The write's result, as the same call on the writer returned it. */
  result: unknown;
  /** The head versionstamps of the written keys after the write (null where not known). */
  versionstamps: (string | null)[];
}

/** Runs a handed-over write on this worker. */
export type WriterServe = (op: string, args: unknown[]) => Promise<WriterAnswer>;

/** An error as it crosses the channel. */
interface WireError {
  code?: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
}

type Message =
  | { t: "hello" | "here" | "bye"; from: string }
  | { t: "call"; from: string; to: string; id: number; op: string; args: unknown[] }
  | { t: "answer"; from: string; to: string; id: number; answer: WriterAnswer }
  | { t: "failed"; from: string; to: string; id: number; error: WireError }
  | { t: "many"; from: string; list: Message[] };

interface Pending {
  writer: string;
  op: string;
  at: number;
  resolve: (answer: WriterAnswer) => void;
  reject: (error: unknown) => void;
}

/** Default of {@linkcode OneWriterOptions.timeoutMs}. */
const TIMEOUT_MS = 10_000;

/** This worker's side of the writers' channel. */
export class OneWriter {
  readonly #id: string;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #channel: BroadcastChannel;
  readonly #serve: WriterServe;
  /** The other workers known to be running. */
  readonly #others = new Set<string>();
  /** The writer, when it is another worker (see {@linkcode writer}). */
  #writer: string | null = null;
  readonly #pending = new Map<number, Pending>();
  #calls = 0;
  #out: Message[] = [];
  #sweep?: TimerId;
  #left = false;
  #closed = false;

  /** Joins the channel and says hello, so workers started earlier are known at once. */
  constructor(options: OneWriterOptions, serve: WriterServe) {
    this.#id = options.id;
    this.#clock = options.clock;
    this.#timeoutMs = options.timeoutMs ?? TIMEOUT_MS;
    this.#serve = serve;
    this.#channel = new BroadcastChannel(options.channel);
    this.#channel.onmessage = (e: MessageEvent<Message>) => this.#receive(e.data);
    this.#send({ t: "hello", from: this.#id });
  }

  /** Other workers known to be running. */
  get peers(): number {
    return this.#others.size;
  }

  /**
   * The worker that writes, or null when it is this one (also when no other is known, or this one
   * is leaving): the worker with the smallest id, the one started first.
   */
  writer(): string | null {
    return this.#left ? null : this.#writer;
  }

  /**
   * Hands `op` with `args` (structured-cloneable) to `writer` and resolves with its answer;
   * rejects with the writer's error, rebuilt (a `ChorusError` keeps its code, details and headers).
   * @throws {ChorusError} `unavailable` when the writer stops or does not answer in time: the
   *   write may or may not have happened
   */
  call(writer: string, op: string, args: unknown[]): Promise<WriterAnswer> {
    const id = ++this.#calls;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { writer, op, at: this.#clock.now(), resolve, reject });
      this.#send({ t: "call", from: this.#id, to: writer, id, op, args });
      this.#sweep ??= this.#clock.setTimeout(() => this.#expire(), this.#timeoutMs / 4);
    });
  }

  /**
   * Says goodbye: the other workers stop handing writes here, and this one runs its own writes
   * itself from now on. Calls already handed here are still answered until {@linkcode close}.
   */
  leave(): void {
    if (this.#left) return;
    this.#send({ t: "bye", from: this.#id });
    this.#flush();
    this.#left = true;
  }

  /** Leaves (see {@linkcode leave}) and closes the channel; calls still waiting fail with `unavailable`. */
  close(): void {
    if (this.#closed) return;
    this.leave();
    this.#closed = true;
    this.#channel.close();
    if (this.#sweep !== undefined) this.#clock.clearTimeout(this.#sweep);
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id);
      p.reject(unanswered(p.op, "this instance is stopping"));
    }
  }

  /** Queues a message; the queue goes out once this turn's work is done, as one message. */
  #send(message: Message): void {
    if (this.#closed) return;
    this.#out.push(message);
    if (this.#out.length === 1) queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    const out = this.#out;
    if (out.length === 0 || this.#closed) return;
    this.#out = [];
    try {
      this.#channel.postMessage(
        out.length === 1 ? out[0] : { t: "many", from: this.#id, list: out },
      );
    } catch (error) {
      // A value that cannot be cloned: the calls in this message fail as the writer would fail
      // them had it received them (such a value is not JSON either).
      for (const m of out) {
        if (m.t !== "call") continue;
        const p = this.#pending.get(m.id);
        if (!p) continue;
        this.#pending.delete(m.id);
        p.reject(
          new ChorusError("invalid_request", `Cannot ${m.op}: ${(error as Error).message}`),
        );
      }
    }
  }

  #receive(message: Message): void {
    if (this.#closed) return;
    if (message.t === "bye") return this.#gone(message.from, "it stopped");
    this.#heard(message.from);
    switch (message.t) {
      case "many":
        for (const m of message.list) this.#receive(m);
        return;
      case "hello":
        this.#send({ t: "here", from: this.#id });
        return;
      case "call":
        if (message.to === this.#id) this.#answer(message);
        return;
      case "answer":
      case "failed": {
        if (message.to !== this.#id) return;
        const p = this.#pending.get(message.id);
        if (!p) return;
        this.#pending.delete(message.id);
        if (message.t === "answer") p.resolve(message.answer);
        else p.reject(rebuild(message.error));
        return;
      }
    }
  }

  async #answer(call: Extract<Message, { t: "call" }>): Promise<void> {
    try {
      const answer = await this.#serve(call.op, call.args);
      this.#send({ t: "answer", from: this.#id, to: call.from, id: call.id, answer });
    } catch (e) {
      const error: WireError = e instanceof ChorusError
        ? { code: e.code, message: e.message, details: e.details, headers: e.headers }
        : { message: e instanceof Error ? e.message : String(e) };
      this.#send({ t: "failed", from: this.#id, to: call.from, id: call.id, error });
    }
  }

  /** A worker was heard from: it is running (again). */
  #heard(id: string): void {
    if (id === this.#id || this.#others.has(id)) return;
    this.#others.add(id);
    this.#elect();
  }

  /** A worker stopped or stopped answering: its calls fail, and the next one writes. */
  #gone(id: string, why: string): void {
    if (this.#others.delete(id)) this.#elect();
    for (const [callId, p] of this.#pending) {
      if (p.writer !== id) continue;
      this.#pending.delete(callId);
      p.reject(unanswered(p.op, why));
    }
  }

  #elect(): void {
    let smallest = this.#id;
    for (const id of this.#others) if (id < smallest) smallest = id;
    this.#writer = smallest === this.#id ? null : smallest;
  }

  /** Fails the calls older than the timeout and forgets their writer; re-arms while calls wait. */
  #expire(): void {
    this.#sweep = undefined;
    const now = this.#clock.now();
    const late = new Set<string>();
    for (const p of this.#pending.values()) {
      if (now - p.at >= this.#timeoutMs) late.add(p.writer);
    }
    for (const writer of late) {
      log.warn("the writer did not answer a handed-over write in time; another worker writes now", {
        worker: writer,
        timeout_ms: this.#timeoutMs,
      });
      this.#gone(writer, `it did not answer within ${this.#timeoutMs} ms`);
    }
    if (this.#pending.size) {
      this.#sweep = this.#clock.setTimeout(() => this.#expire(), this.#timeoutMs / 4);
    }
  }
}

/** The error of a call whose writer went away: the write may have happened. */
function unanswered(op: string, why: string): ChorusError {
  return new ChorusError(
    "unavailable",
    `Cannot ${op}: the worker that writes gave no answer (${why}); the write may or may not have happened`,
    { headers: { "Retry-After": "1" } },
  );
}

function rebuild(error: WireError): Error {
  if (error.code === undefined) return new Error(error.message);
  return new ChorusError(error.code, error.message, {
    details: error.details,
    headers: error.headers,
  });
}
