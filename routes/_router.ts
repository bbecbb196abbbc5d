/**
 * The app's router: Hono's trie router, with its answers remembered per method and path.
 *
 * Hono's faster RegExp router cannot hold Chorus's routes (`POST /kv/bulk/touch` beside
 * `POST /kv/:key/touch`, and the same for `incr`), and the trie router walks every level of
 * the path, its wildcard middleware included, on every request: about a fifth of the CPU of a
 * kv `GET` served from memory. Routes do not change once the app serves, and clients ask for
 * the same paths again and again (a hot key, a polled context), so an answer is kept and
 * reused: a map lookup instead of a walk. The memory is bounded: at most
 * {@linkcode REMEMBERED_PATHS} answers, the oldest forgotten first, and only for paths of at
 * most {@linkcode REMEMBERED_PATH_LENGTH} characters, so unique long paths cannot grow it.
 * A remembered answer is shared by the requests that get it; Hono only reads it.
 * @module
 */
import type { Result, Router } from "hono/router";
import { TrieRouter } from "hono/router/trie-router";

/** How many method-and-path answers are kept (each a few hundred bytes). */
export const REMEMBERED_PATHS = 10_000;
/** Longer paths are matched every time rather than kept. */
export const REMEMBERED_PATH_LENGTH = 256;

/** Hono's trie router with a bounded memory of its answers (see the module doc). */
export class RememberingRouter<T> implements Router<T> {
  /** Shown by Hono in errors and inspection. */
  readonly name = "RememberingRouter";
  readonly #router = new TrieRouter<T>();
  readonly #answers = new Map<string, Result<T>>();

  /** Answers kept now. */
  get remembered(): number {
    return this.#answers.size;
  }

  /** Adds a route; forgets every answer (a new route may change any of them). */
  add(method: string, path: string, handler: T): void {
    this.#answers.clear();
    this.#router.add(method, path, handler);
  }

  /** The handlers and params for `method` and `path`, remembered when the path is short. */
  match(method: string, path: string): Result<T> {
    if (path.length > REMEMBERED_PATH_LENGTH) return this.#router.match(method, path);
    const key = `${method} ${path}`;
    let answer = this.#answers.get(key);
    if (answer === undefined) {
      answer = this.#router.match(method, path);
      if (this.#answers.size >= REMEMBERED_PATHS) {
        this.#answers.delete(this.#answers.keys().next().value!);
      }
      this.#answers.set(key, answer);
    }
    return answer;
  }
}
