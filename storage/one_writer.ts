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
 *
 * Stopping takes two steps. {@linkcode OneWriter.leave} says "bye": the others stop handing writes
 * here (and elect the next writer) but still wait for the answers to calls already handed here;
 * {@linkcode OneWriter.close} says "closed", after which calls still waiting on this worker fail.
 * A worker that said bye is never counted again. A writer is taken as gone when it has not been
 * heard from for the timeout while calls wait on it: waiting calls ping it, and a live writer
 * answers a ping at once however long its writes take.
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
  /** Time source for liveness. */
  clock: Clock;
  /**
   * How long a writer with calls waiting on it may stay silent (no answer, no reply to a ping)
   * before it is taken as gone: its waiting calls fail with `unavailable` and the next worker
   * writes. Default 10 s.
   */
  timeoutMs?: number;
}

/** What the writer answers for a handed-over write. */
export interface WriterAnswer {
  /** The write's result, as the same call on the writer returned it. */
  result: unknown;
  /** The head versionstamps of the written ids after the write (null where not known). */
  versionstamps: (string | null)[];
}

/** Runs a handed-over write on this worker. */
export type WriterServe = (op: string, args: unknown[]) => Promise<WriterAnswer>;

/**
 * A call whose arguments cannot cross the channel (structured clone refused them): the caller
 * runs it itself, where the value needs no copy.
 */
export class NotCloneable extends Error {
  constructor(op: string, cause: unknown) {
    super(`Cannot hand "${op}" to the writer: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

/** An error as it crosses the channel. */
interface WireError {
  code?: ErrorCode;
  /** The class of an error that is not a `ChorusError` (`SyntaxError`, `TypeError`…). */
  name?: string;
  message: string;
  details?: Record<string, unknown>;
  headers?: Record<string, string>;
}

type Message =
  | { t: "hello" | "here" | "bye" | "closed"; from: string }
  | { t: "ping" | "bye-seen"; from: string; to: string }
  | { t: "alive"; from: string; left: boolean }
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
/** Longest a closing worker waits for its bye to be seen and its calls to be answered. */
export const QUIET_MS = 1_000;

/** This worker's side of the writers' channel. */
export class OneWriter {
  readonly #id: string;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #channel: BroadcastChannel;
  readonly #serve: WriterServe;
  /** The other workers known to be running. */
  readonly #others = new Set<string>();
  /** When each other worker was last heard from (those that said bye too, while they answer). */
  readonly #heardAt = new Map<string, number>();
  /** Workers that said bye: never counted again (instance ids are not reused). */
  readonly #departed = new Set<string>();
  /** The writer, when it is another worker (see {@linkcode writer}). */
  #writer: string | null = null;
  readonly #pending = new Map<number, Pending>();
  #calls = 0;
  #out: Message[] = [];
  #sweep?: TimerId;
  /** Workers that have not yet acknowledged this one's bye (any call they sent came before). */
  #byeUnseen = new Set<string>();
  /** Handed-over calls this worker is running. */
  #serving = 0;
  /** Called when the last bye is acknowledged or the last call served, while closing. */
  #quietWaiter?: () => void;
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
   * @throws {NotCloneable} when `args` cannot cross the channel
   * @throws {ChorusError} `unavailable` when the writer stops or goes silent: the write may or may
   *   not have happened
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
   * Says bye: the other workers stop handing writes here and elect the next writer, and this one
   * runs its own writes itself from now on. Calls already handed here are still answered until
   * {@linkcode close}.
   */
  leave(): void {
    if (this.#left) return;
    this.#byeUnseen = new Set(this.#others);
    this.#send({ t: "bye", from: this.#id });
    this.#flush();
    this.#left = true;
  }

  /**
   * Leaves (see {@linkcode leave}); waits, at most {@linkcode QUIET_MS}, until every other worker
   * has seen the bye (so no call is still on its way here) and the calls taken are answered; then
   * tells the others this worker answers nothing more and closes the channel. Calls still waiting
   * on another worker fail with `unavailable`.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.leave();
    if (this.#byeUnseen.size || this.#serving) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#quietWaiter = resolve;
        timer = setTimeout(resolve, QUIET_MS);
      });
      clearTimeout(timer);
      this.#quietWaiter = undefined;
    }
    if (this.#closed) return;
    this.#send({ t: "closed", from: this.#id });
    this.#flush();
    this.#closed = true;
    this.#channel.close();
    if (this.#sweep !== undefined) this.#clock.clearTimeout(this.#sweep);
    this.#sweep = undefined;
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
    if (out.length === 1) return this.#post(out[0]);
    try {
      this.#channel.postMessage({ t: "many", from: this.#id, list: out });
    } catch {
      // Something in the batch cannot be cloned: send each alone, so only that one fails.
      for (const m of out) this.#post(m);
    }
  }

  /** Posts one message; a call or answer that cannot be cloned fails alone. */
  #post(message: Message): void {
    try {
      this.#channel.postMessage(message);
    } catch (error) {
      if (message.t === "call") {
        const p = this.#pending.get(message.id);
        if (!p) return;
        this.#pending.delete(message.id);
        p.reject(new NotCloneable(message.op, error));
      } else if (message.t === "answer") {
        this.#post({
          t: "failed",
          from: this.#id,
          to: message.to,
          id: message.id,
          error: { code: "internal", message: `Cannot answer: ${(error as Error).message}` },
        });
      }
    }
  }

  #receive(message: Message): void {
    if (this.#closed) return;
    const from = message.from;
    if (from !== this.#id) this.#heardAt.set(from, this.#clock.now());
    switch (message.t) {
      case "many":
        for (const m of message.list) this.#receive(m);
        return;
      case "bye":
        // No new calls go there; calls already there still wait for their answers.
        this.#departed.add(from);
        if (this.#others.delete(from)) this.#elect();
        this.#send({ t: "bye-seen", from: this.#id, to: from });
        return;
      case "bye-seen":
        if (message.to === this.#id && this.#byeUnseen.delete(from)) this.#checkQuiet();
        return;
      case "closed":
        this.#heardAt.delete(from);
        this.#gone(from, "it stopped");
        return;
      case "answer":
      case "failed": {
        if (message.to !== this.#id) return;
        if (!this.#departed.has(from)) this.#heard(from);
        const p = this.#pending.get(message.id);
        if (!p) return;
        this.#pending.delete(message.id);
        if (message.t === "answer") p.resolve(message.answer);
        else p.reject(rebuild(message.error));
        return;
      }
    }
    if (message.t === "ping") {
      // Liveness only: a worker that left answers too, and is not counted again for it.
      if (message.to === this.#id) this.#send({ t: "alive", from: this.#id, left: this.#left });
      return;
    }
    if (message.t === "alive" && message.left) return;
    if (this.#departed.has(from)) return;
    this.#heard(from);
    switch (message.t) {
      case "hello":
        if (!this.#left) this.#send({ t: "here", from: this.#id });
        return;
      case "call":
        if (message.to === this.#id) this.#answer(message);
        return;
    }
  }

  /** Wakes a closing worker once nothing more can arrive and nothing is being served. */
  #checkQuiet(): void {
    if (this.#byeUnseen.size === 0 && this.#serving === 0) this.#quietWaiter?.();
  }

  async #answer(call: Extract<Message, { t: "call" }>): Promise<void> {
    this.#serving++;
    try {
      const answer = await this.#serve(call.op, call.args);
      this.#send({ t: "answer", from: this.#id, to: call.from, id: call.id, answer });
    } catch (e) {
      if (!(e instanceof ChorusError) || e.cause !== undefined) {
        // What caused it does not cross the channel: keep it in this worker's log.
        log.warn("a write handed over by another worker failed", { error: e, op: call.op });
      }
      const error: WireError = e instanceof ChorusError
        ? { code: e.code, message: e.message, details: e.details, headers: e.headers }
        : {
          name: e instanceof Error ? e.name : "Error",
          message: e instanceof Error ? e.message : String(e),
        };
      this.#send({ t: "failed", from: this.#id, to: call.from, id: call.id, error });
    } finally {
      this.#serving--;
      this.#checkQuiet();
    }
  }

  /** A worker was heard from: it is running (again, if it had been taken as gone). */
  #heard(id: string): void {
    if (id === this.#id || this.#others.has(id)) return;
    this.#others.add(id);
    this.#elect();
  }

  /** A worker stopped or went silent: its waiting calls fail, and the next one writes. */
  #gone(id: string, why: string): void {
    if (this.#others.delete(id)) this.#elect();
    if (this.#byeUnseen.delete(id)) this.#checkQuiet();
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

  /**
   * While calls wait: pings each writer they wait on that has been quiet for a quarter of the
   * timeout, and takes as gone one quiet for the whole timeout. Re-arms while calls wait.
   */
  #expire(): void {
    this.#sweep = undefined;
    const now = this.#clock.now();
    const waitedOn = new Set<string>();
    for (const p of this.#pending.values()) waitedOn.add(p.writer);
    for (const writer of waitedOn) {
      const heard = this.#heardAt.get(writer) ?? -Infinity;
      const quiet = now - heard;
      if (quiet >= this.#timeoutMs) {
        log.warn("the writer went silent with writes handed to it; another worker writes now", {
          worker: writer,
          timeout_ms: this.#timeoutMs,
        });
        this.#gone(writer, `it was silent for ${this.#timeoutMs} ms`);
      } else if (quiet >= this.#timeoutMs / 4) {
        this.#send({ t: "ping", from: this.#id, to: writer });
      }
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

/** Standard error classes rebuilt by name, so the HTTP layer maps them as it would locally. */
const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  SyntaxError,
  TypeError,
  RangeError,
};

function rebuild(error: WireError): Error {
  if (error.code === undefined) {
    const error_ = new (ERROR_CLASSES[error.name ?? ""] ?? Error)(error.message);
    return error_;
  }
  return new ChorusError(error.code, error.message, {
    details: error.details,
    headers: error.headers,
  });
}
