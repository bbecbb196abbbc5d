/**
 * The products' side of the writers' channel (storage/one_writer.ts): a product API asks
 * {@linkcode HandOver.elsewhere} before a write, and when another worker writes, hands it the
 * whole call with {@linkcode HandOver.call}; that worker runs it on its own actors and answers
 * with {@linkcode HandOver.answer}. The worker that handed a write over then has its cached actors
 * of the written ids take the write in before their next read, so a client reads its own writes on
 * whichever worker took them.
 * @module
 */
import { NotCloneable, type OneWriter, type WriterAnswer } from "../storage/one_writer.ts";
import type { Registry } from "./registry.ts";

/** An actor a write changes: its kind and id. */
export interface Written {
  kind: string;
  id: string;
}

/** Writes handed over and taken over, for `/metrics`. */
export interface HandOverCounts {
  /** Calls this worker handed to the writer. */
  handedOver: number;
  /** Calls other workers handed to this one. */
  takenOver: number;
}

/** Routes product writes to the writer among the workers of one KV file. */
export class HandOver {
  readonly #writer: OneWriter;
  readonly #registry: Registry;
  /** Live counters. */
  readonly counts: HandOverCounts = { handedOver: 0, takenOver: 0 };

  /** Routes over `writer`; `registry` holds this worker's actors. */
  constructor(writer: OneWriter, registry: Registry) {
    this.#writer = writer;
    this.#registry = registry;
  }

  /** The worker that writes, when it is another one; null when writes run here. */
  elsewhere(): string | null {
    return this.#writer.writer();
  }

  /**
   * Hands `op` (named `<product>.<name>`) with structured-cloneable `args` to `writer`; once it
   * answers, this worker's loaded actors among `written` take the write in. Arguments that cannot
   * cross the channel (a value holding a function, say) are run `here` instead: correctness never
   * depended on where a write runs.
   */
  async call<T>(
    writer: string,
    op: string,
    written: Written[],
    args: unknown[],
    here: () => Promise<T>,
  ): Promise<T> {
    let answer: WriterAnswer;
    this.counts.handedOver++;
    try {
      answer = await this.#writer.call(writer, op, args);
    } catch (e) {
      if (!(e instanceof NotCloneable)) throw e;
      this.counts.handedOver--; // it never left
      return here();
    }
    written.forEach(({ kind, id }, i) => {
      const versionstamp = answer.versionstamps[i];
      if (versionstamp) this.#registry.peek(kind, id)?.writtenElsewhere(versionstamp);
    });
    return answer.result as T;
  }

  /** The answer to a handed-over write that returned `result` after changing `written`. */
  answer(written: Written[], result: unknown): WriterAnswer {
    this.counts.takenOver++;
    return {
      result,
      versionstamps: written.map(({ kind, id }) =>
        this.#registry.peek(kind, id)?.headVersionstamp ?? null
      ),
    };
  }

  /** The actors of `kind` with `ids`. */
  static of(kind: string, ids: string[]): Written[] {
    return ids.map((id) => ({ kind, id }));
  }
}
