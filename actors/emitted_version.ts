/**
 * The version an actor last sent its subscribers. Events reach an actor twice over, from its own
 * commits and from catching up with other instances' (a commit's own watch notification, a reload
 * after a conflict), so each actor keeps this mark and sends only what lies beyond it: every event
 * once, in order.
 * @module
 */

/** The last version emitted to subscribers, and the filter that keeps back what was sent. */
export class EmittedVersion<E> {
  #last = 0;
  readonly #versionOf: (event: E) => number | undefined;

  /**
   * @param versionOf an event's version; undefined for an event outside the order (such as a
   *   coalesced view), which always goes out and leaves the mark where it is
   */
  constructor(versionOf: (event: E) => number | undefined) {
    this.#versionOf = versionOf;
  }

  /**
   * Starts the mark at the version first loaded: what came before an actor existed here is no
   * news to its subscribers. Later loads leave it alone.
   */
  loaded(version: number): void {
    if (this.#last === 0) this.#last = version;
  }

  /** The events newer than the last one emitted, in the order given; moves the mark past them. */
  fresh(events: E[]): E[] {
    const last = this.#last;
    const out = events.filter((e) => {
      const v = this.#versionOf(e);
      return v === undefined || v > last;
    });
    for (const e of out) {
      const v = this.#versionOf(e);
      if (v !== undefined && v > this.#last) this.#last = v;
    }
    return out;
  }

  /**
   * Moves the mark to `version` without events: nobody was listening while the versions up to it
   * came, so there is nothing to send for them later.
   */
  passed(version: number): void {
    if (version > this.#last) this.#last = version;
  }

  /**
   * Runs `reload` (another instance's change) without moving the mark, so the events in between
   * can still be sent: a first load during it would otherwise skip them.
   * @returns the mark, the version subscribers have seen up to
   */
  async reloading(reload: () => Promise<void>): Promise<number> {
    const before = this.#last;
    await reload();
    this.#last = before;
    return before;
  }
}
