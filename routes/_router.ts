/**
 * The app's router: Hono's trie router, with its answers remembered per method and path, and
 * per path shape for paths that end in a parameter.
 *
 * Hono's faster RegExp router cannot hold Chorus's routes (`POST /kv/bulk/touch` beside
 * `POST /kv/:key/touch`, and the same for `incr`), and the trie router walks every level of
 * the path, its wildcard middleware included, on every request: about a fifth of the CPU of a
 * kv `GET` served from memory. Routes do not change once the app serves, so answers are kept:
 *
 * - **By path.** Clients ask for the same paths again and again (a hot key, a polled context):
 *   a map lookup instead of a walk. At most {@linkcode REMEMBERED_PATHS} answers, for paths of
 *   at most {@linkcode REMEMBERED_PATH_LENGTH} characters. When full, a walked answer takes the
 *   place of one chosen at random: forgetting the oldest would fail exactly the clients that
 *   cycle over more paths than fit (a poller walking 20,000 keys), since the oldest answer is
 *   always the one needed next. An answer made from its shape (below) is kept only while there
 *   is room: making it again costs less than making room for it.
 * - **By shape.** A path whose last segment is not a word of any route (`/api/v1/kv/cart:42`,
 *   where `kv` and `api` are words of routes and `cart:42` is not) gets the answer of any other
 *   path with the same beginning and a last segment that is not a word of a route either: no
 *   route can tell two such segments apart. So the first walk for `/api/v1/kv/<key>` serves
 *   every other key, with the parameters bound to the last segment set to the new one (in the
 *   form Hono's RegExp router answers in: shared handlers, a new array of values). At most
 *   {@linkcode REMEMBERED_SHAPES} beginnings are kept. Routes with constrained or optional
 *   parameters (`:id{[0-9]+}`, `:id?`) could tell segments apart: with any of them, no shape is
 *   kept.
 *
 * A remembered answer is shared by the requests that get it; Hono only reads it.
 * @module
 */
import type { ParamIndexMap, ParamStash, Result, Router } from "hono/router";
import { TrieRouter } from "hono/router/trie-router";

/** How many method-and-path answers are kept (each a few hundred bytes). */
export const REMEMBERED_PATHS = 10_000;
/** Longer paths are matched every time rather than kept. */
export const REMEMBERED_PATH_LENGTH = 256;
/** How many path beginnings (per method) keep the answer of their shape. */
export const REMEMBERED_SHAPES = 1_000;

/**
 * The answer for one path beginning, in the form where parameters are looked up in an array of
 * values (Hono's `ParamStash`, as its RegExp router answers): the handlers and their parameters'
 * indexes are shared by every path of the shape, so a request makes only that array, with its
 * last segment at index 0, rather than a copy of the answer and a parameter object per handler.
 */
interface Shape<T> {
  /** Every handler with its parameters' indexes into the stash. */
  handlers: [T, ParamIndexMap][];
  /** The stash with index 0 to fill: then the values of the parameters not bound to the last one. */
  stash: ParamStash;
}

/** Hono's trie router with a bounded memory of its answers (see the module doc). */
export class RememberingRouter<T> implements Router<T> {
  /** Shown by Hono in errors and inspection. */
  readonly name = "RememberingRouter";
  readonly #router = new TrieRouter<T>();
  /** Answers by method, then path (no method-and-path string is built per request). */
  readonly #answers = new Map<string, Map<string, Result<T>>>();
  /** Every remembered answer's place, so a random one can make room. */
  #slots: [Map<string, Result<T>>, string][] = [];
  /** Shapes by method, then path beginning (up to and with its last `/`). */
  readonly #shapes = new Map<string, Map<string, Shape<T>>>();
  /** Every literal segment of every route: a last segment among them may be routed apart. */
  readonly #words = new Set<string>();
  /** False once a route could tell two non-literal segments apart. */
  #shapesSafe = true;
  /** Answers found by walking the trie. */
  walks = 0;

  /** Answers kept now. */
  get remembered(): number {
    return this.#slots.length;
  }

  /** Adds a route; forgets every answer (a new route may change any of them). */
  add(method: string, path: string, handler: T): void {
    this.#answers.clear();
    this.#slots = [];
    this.#shapes.clear();
    for (const segment of path.split("/")) {
      if (segment.startsWith(":")) {
        if (/[{}?]/.test(segment)) this.#shapesSafe = false;
      } else if (segment !== "*") {
        if (/[:*{}?]/.test(segment)) this.#shapesSafe = false;
        this.#words.add(segment);
      }
    }
    this.#router.add(method, path, handler);
  }

  /** The handlers and params for `method` and `path`, remembered when the path is short. */
  match(method: string, path: string): Result<T> {
    if (path.length > REMEMBERED_PATH_LENGTH) return this.#walk(method, path);
    const answers = ofMethod(this.#answers, method);
    let answer = answers.get(path);
    if (answer === undefined) {
      answer = this.#byShape(method, path);
      if (answer === undefined) {
        answer = this.#walk(method, path);
        this.#remember(answers, path, answer);
      } else if (this.#slots.length < REMEMBERED_PATHS) {
        // An answer from its shape is cheap to make again: it never makes another one room.
        this.#remember(answers, path, answer);
      }
    }
    return answer;
  }

  #walk(method: string, path: string): Result<T> {
    this.walks++;
    return this.#router.match(method, path);
  }

  /** The answer of `path`'s shape, walking once per shape; undefined when it has none. */
  #byShape(method: string, path: string): Result<T> | undefined {
    if (!this.#shapesSafe) return undefined;
    const cut = path.lastIndexOf("/") + 1;
    const last = path.slice(cut);
    if (last === "" || this.#words.has(last)) return undefined;
    const start = path.slice(0, cut);
    const shapes = ofMethod(this.#shapes, method);
    const shape = shapes.get(start);
    if (shape === undefined) {
      const walked = this.#walk(method, path);
      // A segment of the beginning equal to the last one would look bound to it: not kept.
      if (shapes.size < REMEMBERED_SHAPES && !start.split("/").includes(last)) {
        shapes.set(start, shapeOf(walked, last));
      }
      return walked;
    }
    const stash = shape.stash.slice();
    stash[0] = last;
    return [shape.handlers, stash];
  }

  #remember(answers: Map<string, Result<T>>, path: string, answer: Result<T>): void {
    if (this.#slots.length < REMEMBERED_PATHS) this.#slots.push([answers, path]);
    else {
      const i = Math.floor(Math.random() * this.#slots.length);
      const [holder, forgotten] = this.#slots[i];
      holder.delete(forgotten);
      this.#slots[i] = [answers, path];
    }
    answers.set(path, answer);
  }
}

/**
 * The shape of a walked answer (the trie router's form) whose path ends in `last`: each parameter
 * equal to `last` is bound to stash index 0, every other one gets an index of its own holding its
 * value.
 */
function shapeOf<T>(walked: Result<T>, last: string): Shape<T> {
  const stash: ParamStash = [last];
  const handlers = (walked[0] as [T, Record<string, string>][]).map(([handler, params]) => {
    // The trie router's params have no prototype; nor do these indexes.
    const indexes: ParamIndexMap = Object.create(null);
    for (const name in params) {
      indexes[name] = params[name] === last ? 0 : stash.push(params[name]) - 1;
    }
    return [handler, indexes] as [T, ParamIndexMap];
  });
  return { handlers, stash };
}

/** The map of one method in `byMethod`, made on first use. */
function ofMethod<V>(byMethod: Map<string, Map<string, V>>, method: string): Map<string, V> {
  let map = byMethod.get(method);
  if (map === undefined) {
    map = new Map();
    byMethod.set(method, map);
  }
  return map;
}
