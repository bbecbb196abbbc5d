/**
 * The figures of a whole `deno serve --parallel` server in one scrape. The workers of one process
 * share a `BroadcastChannel`; the worker that takes a `/metrics` request asks its siblings for
 * their families over it and merges the answers (as prom-client's cluster aggregator does for
 * Node's cluster workers).
 *
 * Every figure a worker sends reaches every other worker, and each keeps the latest figures of
 * each sibling. A sibling that does not answer within the timeout (busy, or already stopped) is
 * counted with the last figures anyone saw from it, so a sum never goes backwards while the
 * process runs, whichever worker answers the scrape.
 * @module
 */
import type { MetricFamily } from "./metric_families.ts";

/** Options of {@linkcode MetricsSiblings}. */
export interface MetricsSiblingsOptions {
  /** The channel name shared by the workers of one process. */
  channel: string;
  /** This worker's id (its instance id). */
  id: string;
  /** This worker's families, read fresh for every answer. */
  families: () => Promise<MetricFamily[]>;
  /** How long a scrape waits for its siblings' answers. Default 250 ms. */
  timeoutMs?: number;
}

type Message =
  | { type: "hello"; from: string }
  | { type: "here"; from: string }
  | { type: "ask"; from: string; ask: number }
  | {
    type: "figures";
    from: string;
    seq: number;
    /** The ask answered, with the asker's id (absent: figures sent with a worker's own scrape). */
    ask?: { id: number; to: string };
    families: MetricFamily[];
  }
  | { type: "bye"; from: string };

/** What {@linkcode MetricsSiblings.gather} found. */
export interface Gathered {
  /** The families of every worker known: this one first, then each sibling's latest. */
  sets: MetricFamily[][];
  /** Siblings that answered this scrape. */
  fresh: number;
  /** Siblings counted with figures from an earlier answer (late, or stopped). */
  cached: number;
}

/** One worker's side of the metrics channel. */
export class MetricsSiblings {
  readonly #options: MetricsSiblingsOptions;
  readonly #channel: BroadcastChannel;
  /** Siblings seen, and whether they are still running. */
  readonly #live = new Set<string>();
  /** The latest figures of each sibling (never dropped: a stopped worker's counts still count). */
  readonly #latest = new Map<string, { seq: number; families: MetricFamily[] }>();
  readonly #waiting = new Map<number, { from: Set<string>; done: () => void }>();
  #asks = 0;
  #seq = 0;
  /** Builds of this worker's figures run one at a time, so their sequence is their order. */
  #building: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Joins the channel and says hello, so siblings started earlier are known at once. */
  constructor(options: MetricsSiblingsOptions) {
    this.#options = options;
    this.#channel = new BroadcastChannel(options.channel);
    this.#channel.onmessage = (e: MessageEvent<Message>) => this.#receive(e.data);
    this.#post({ type: "hello", from: options.id });
  }

  /** Siblings known to be running. */
  get siblings(): number {
    return this.#live.size;
  }

  /**
   * This worker's families and every sibling's: asks the running siblings, waits for their
   * answers up to the timeout, and fills in the latest known figures of the others.
   */
  async gather(): Promise<Gathered> {
    const own = await this.#build();
    if (this.#closed) return { sets: [own.families], fresh: 0, cached: 0 };
    // Ours go out too: whichever worker takes the next scrape then counts at least these.
    this.#post({ type: "figures", from: this.#options.id, seq: own.seq, families: own.families });
    const answered = new Set<string>();
    if (this.#live.size) {
      const ask = ++this.#asks;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(finish, this.#options.timeoutMs ?? 250);
        function finish() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiting.set(ask, {
          from: answered,
          done: () => [...this.#live].every((id) => answered.has(id)) && finish(),
        });
        this.#post({ type: "ask", from: this.#options.id, ask });
      });
      this.#waiting.delete(ask);
    }
    const sets = [own.families];
    for (const figures of this.#latest.values()) sets.push(figures.families);
    return { sets, fresh: answered.size, cached: this.#latest.size - answered.size };
  }

  /** Leaves the channel (siblings keep this worker's last figures). */
  close(): void {
    if (this.#closed) return;
    this.#post({ type: "bye", from: this.#options.id });
    this.#closed = true;
    for (const w of this.#waiting.values()) w.done();
    this.#channel.close();
  }

  #build(): Promise<{ seq: number; families: MetricFamily[] }> {
    const next = this.#building.then(async () => {
      const families = await this.#options.families();
      return { seq: ++this.#seq, families };
    });
    this.#building = next.catch(() => {});
    return next;
  }

  #post(message: Message): void {
    if (this.#closed) return;
    try {
      this.#channel.postMessage(message);
    } catch {
      // The channel closed under us (the worker is stopping): nothing to tell.
    }
  }

  #receive(m: Message): void {
    if (this.#closed || m.from === this.#options.id) return;
    if (m.type === "bye") {
      this.#live.delete(m.from);
      for (const w of this.#waiting.values()) w.done();
      return;
    }
    this.#live.add(m.from);
    if (m.type === "hello") this.#post({ type: "here", from: this.#options.id });
    else if (m.type === "ask") {
      this.#build().then(({ seq, families }) => {
        const ask = { id: m.ask, to: m.from };
        this.#post({ type: "figures", from: this.#options.id, seq, ask, families });
      }, () => {});
    } else if (m.type === "figures") {
      const known = this.#latest.get(m.from);
      if (!known || m.seq > known.seq) {
        this.#latest.set(m.from, { seq: m.seq, families: m.families });
      }
      if (m.ask?.to !== this.#options.id) return;
      const waiting = this.#waiting.get(m.ask.id);
      if (waiting) {
        waiting.from.add(m.from);
        waiting.done();
      }
    }
  }
}
