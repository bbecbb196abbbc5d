/**
 * A mailbox runs an actor's messages one at a time, in arrival order. Consecutive messages that
 * may be handled together are handed over together: writes, so everything that queued while the
 * previous commit was in flight goes out in one; reads, so one confirmation serves them all.
 * @module
 */

import { log } from "../log.ts";

/** Options of {@linkcode Mailbox}. */
export interface MailboxOptions<M> {
  /** Whether a message may join a batch with its neighbours (default: never). */
  batchable?: (message: M) => boolean;
  /**
   * The group of a batchable message: a batch holds consecutive messages of one group only
   * (default: all batchable messages are one group).
   */
  group?: (message: M) => unknown;
  /** Cost of a message toward {@linkcode maxWeight} (default 1). */
  weight?: (message: M) => number;
  /** Largest total weight of one batch (default 256). */
  maxWeight?: number;
}

/**
 * Serialises message handling. The handler receives one message, or a run of consecutive
 * batchable messages, and the next batch waits until it settles.
 */
export class Mailbox<M> {
  readonly #handler: (batch: M[]) => Promise<void> | void;
  readonly #batchable: (message: M) => boolean;
  readonly #group: (message: M) => unknown;
  readonly #weight: (message: M) => number;
  readonly #maxWeight: number;
  #queue: M[] = [];
  #head = 0;
  #running = false;
  #idleWaiters: (() => void)[] = [];

  constructor(handler: (batch: M[]) => Promise<void> | void, options: MailboxOptions<M> = {}) {
    this.#handler = handler;
    this.#batchable = options.batchable ?? (() => false);
    this.#group = options.group ?? (() => undefined);
    this.#weight = options.weight ?? (() => 1);
    this.#maxWeight = options.maxWeight ?? 256;
  }

  /** Messages waiting (not counting the batch being handled). */
  get depth(): number {
    return this.#queue.length - this.#head;
  }

  /** The message the next batch starts with, if one is queued. */
  get next(): M | undefined {
    return this.#head < this.#queue.length ? this.#queue[this.#head] : undefined;
  }

  /** True when nothing is queued or running. */
  get idle(): boolean {
    return !this.#running && this.depth === 0;
  }

  /** Queues a message; handling starts at once if the mailbox is idle. */
  post(message: M): void {
    this.#queue.push(message);
    if (!this.#running) this.#run();
  }

  /** Resolves when the mailbox is next idle. */
  drained(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #take(): M[] {
    const first = this.#queue[this.#head++];
    const batch = [first];
    if (this.#batchable(first)) {
      const group = this.#group(first);
      let weight = this.#weight(first);
      while (this.#head < this.#queue.length) {
        const next = this.#queue[this.#head];
        if (!this.#batchable(next) || this.#group(next) !== group) break;
        const w = this.#weight(next);
        if (weight + w > this.#maxWeight) break;
        weight += w;
        batch.push(next);
        this.#head++;
      }
    }
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (this.#head < this.#queue.length) {
      const batch = this.#take();
      try {
        await this.#handler(batch);
      } catch (error) {
        // The handler settles its own messages; a throw here must not stop the mailbox.
        log.warn("mailbox handler threw; its batch may be left unanswered", {
          error,
          messages: batch.length,
        });
      }
    }
    this.#queue = [];
    this.#head = 0;
    this.#running = false;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
