import assert from "node:assert/strict";
import { TrieRouter } from "hono/router/trie-router";
import type { Result } from "hono/router";
import {
  REMEMBERED_PATH_LENGTH,
  REMEMBERED_PATHS,
  RememberingRouter,
} from "../../routes/_router.ts";
import { mulberry32 } from "../../prng.ts";

/**
 * An answer with each handler's parameters spelled out, whichever of Hono's two forms it is in
 * (parameter objects, or indexes into a stash of values): what a route sees.
 */
function resolved(result: Result<string>): [string, Record<string, string>][] {
  const stash = result[1];
  return (result[0] as [string, Record<string, string | number>][]).map(([handler, params]) => {
    const out: Record<string, string> = {};
    for (const name in params) {
      out[name] = stash ? stash[params[name] as number] : params[name] as string;
    }
    return [handler, out];
  });
}

/** `routes` added to Hono's trie router and to the remembering one, to compare their answers. */
function routersWith(routes: [string, string, string][]) {
  const plain = new TrieRouter<string>();
  const remembering = new RememberingRouter<string>();
  for (const [method, path, handler] of routes) {
    plain.add(method, path, handler);
    remembering.add(method, path, handler);
  }
  return { plain, remembering };
}

/** The same routes, middleware included, in both routers: the shapes Chorus registers. */
function routers() {
  return routersWith([
    ["ALL", "*", "edge"],
    ["ALL", "/api/v1/*", "auth"],
    ["POST", "/api/*", "body"],
    ["PUT", "/api/*", "body"],
    ["GET", "/api/v1/kv/:key", "get"],
    ["PUT", "/api/v1/kv/:key", "put"],
    ["POST", "/api/v1/kv/bulk/touch", "bulk touch"],
    ["POST", "/api/v1/kv/:key/touch", "touch"],
    ["GET", "/api/v1/contexts/:id/sync", "sync"],
  ]);
}

const asked: [string, string][] = [
  ["GET", "/api/v1/kv/hot"],
  ["PUT", "/api/v1/kv/hot"],
  ["POST", "/api/v1/kv/bulk/touch"],
  ["POST", "/api/v1/kv/a%20b/touch"],
  ["GET", "/api/v1/contexts/c1/sync"],
  ["DELETE", "/api/v1/kv/hot"],
  ["GET", "/nowhere"],
];

Deno.test("[router] answers as Hono's trie router does, the first time and when remembered", () => {
  const { plain, remembering } = routers();
  for (let round = 0; round < 2; round++) {
    for (const [method, path] of asked) {
      assert.deepEqual(
        resolved(remembering.match(method, path)),
        resolved(plain.match(method, path)),
        `${method} ${path}`,
      );
    }
  }
  assert.equal(remembering.remembered, asked.length);
});

Deno.test("[router] keeps a bounded number of answers, making room at random, and never long paths", () => {
  const { plain, remembering } = routers();
  for (let i = 0; i < REMEMBERED_PATHS + 50; i++) remembering.match("GET", `/api/v1/kv/k${i}`);
  assert.equal(remembering.remembered, REMEMBERED_PATHS);
  // Forgotten and remembered paths alike still get the right answer.
  for (const i of [0, 49, 50, REMEMBERED_PATHS + 49]) {
    const path = `/api/v1/kv/k${i}`;
    assert.deepEqual(resolved(remembering.match("GET", path)), resolved(plain.match("GET", path)));
  }
  const long = `/api/v1/kv/${"x".repeat(REMEMBERED_PATH_LENGTH)}`;
  const before = remembering.remembered;
  assert.deepEqual(resolved(remembering.match("GET", long)), resolved(plain.match("GET", long)));
  assert.equal(remembering.remembered, before);
});

Deno.test("[router] a route added later is found: adding forgets what was remembered", () => {
  const { plain, remembering } = routers();
  assert.equal(remembering.match("GET", "/api/v1/late")[0].length, 2); // middleware only
  plain.add("GET", "/api/v1/late", "late");
  remembering.add("GET", "/api/v1/late", "late");
  assert.equal(remembering.remembered, 0);
  assert.deepEqual(
    resolved(remembering.match("GET", "/api/v1/late")),
    resolved(plain.match("GET", "/api/v1/late")),
  );
  assert.ok(remembering.match("GET", "/api/v1/late")[0].some(([h]) => h === "late"));
});

Deno.test("[router] a client cycling over more keys than fit walks the trie once per shape, not per request", () => {
  const { plain, remembering } = routers();
  const keys = REMEMBERED_PATHS + 1000;
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < keys; i++) remembering.match("GET", `/api/v1/kv/k${i}`);
  }
  // One walk for the shape /api/v1/kv/<key>; evicting the oldest answer instead would have
  // walked on every one of the 33,000 requests.
  assert.equal(remembering.walks, 1);
  assert.equal(remembering.remembered, REMEMBERED_PATHS);
  for (const i of [0, 777, keys - 1]) {
    const path = `/api/v1/kv/k${i}`;
    assert.deepEqual(resolved(remembering.match("GET", path)), resolved(plain.match("GET", path)));
  }
});

Deno.test("[router] answers as Hono's trie router does for every kind of path, across shapes and evictions", () => {
  const { plain, remembering } = routersWith([
    ["ALL", "*", "edge"],
    ["ALL", "/api/v1/*", "auth"],
    ["GET", "/api/v1/kv", "list"],
    ["GET", "/api/v1/kv/:key", "get"],
    ["PUT", "/api/v1/kv/:key", "put"],
    ["DELETE", "/api/v1/kv/:key", "delete"],
    ["POST", "/api/v1/kv/bulk", "bulk"],
    ["POST", "/api/v1/kv/bulk/touch", "bulk touch"],
    ["POST", "/api/v1/kv/:key/touch", "touch"],
    ["POST", "/api/v1/kv/:key/incr", "incr"],
    ["GET", "/api/v1/kv/:key/ttl", "ttl"],
    ["GET", "/api/v1/contexts/:id", "context"],
    ["GET", "/api/v1/contexts/:id/sync", "sync"],
    ["GET", "/api/v1/reels/:id", "reel"],
    ["GET", "/api/v1/reels/:id/updates", "updates"],
    ["GET", "/api/v1/reels/:id/comments/:cid", "comment"],
    ["GET", "/api/v1/users/:id/presence", "presence"],
    ["GET", "/docs/*", "docs"],
  ]);
  const random = mulberry32(0x7e57);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
  // Last segments that are words of routes, that equal a middle segment, and plain ones.
  const segments = [
    "bulk",
    "touch",
    "incr",
    "ttl",
    "sync",
    "kv",
    "api",
    "v1",
    "updates",
    "presence",
    "docs",
    "",
    "a b",
    "k:1",
    "x.json",
  ];
  const segment = () => random() < 0.5 ? pick(segments) : `s${Math.floor(random() * 30_000)}`;
  const shapes = [
    () => `/api/v1/kv/${segment()}`,
    () => `/api/v1/kv/${segment()}/${pick(["touch", "incr", "ttl", segment()])}`,
    () => `/api/v1/contexts/${segment()}/${pick(["sync", segment()])}`,
    () => `/api/v1/reels/${segment()}`,
    () => `/api/v1/reels/${segment()}/${pick(["updates", segment()])}`,
    () => {
      const id = segment();
      return `/api/v1/reels/${id}/comments/${random() < 0.5 ? id : segment()}`;
    },
    () => `/api/v1/users/${segment()}/presence`,
    () => `/api/v1/${segment()}/${segment()}`,
    () => `/docs/${segment()}`,
    () => `/${segment()}`,
    () => `/api/v1/kv/v1`,
    () => `/api/v1/reels/r1/r1`,
  ];
  for (let i = 0; i < 3 * REMEMBERED_PATHS; i++) {
    const method = pick(["GET", "PUT", "POST", "DELETE"]);
    const path = pick(shapes)();
    assert.deepEqual(
      resolved(remembering.match(method, path)),
      resolved(plain.match(method, path)),
      `${method} ${path}`,
    );
  }
  assert.ok(remembering.remembered <= REMEMBERED_PATHS);
});

Deno.test("[router] with a constrained parameter, no answer is taken from another path's shape", () => {
  const { plain, remembering } = routersWith([
    ["GET", "/items/:id{[0-9]+}", "number"],
    ["GET", "/items/:name", "name"],
  ]);
  for (const path of ["/items/12", "/items/ab", "/items/34", "/items/cd"]) {
    assert.deepEqual(
      resolved(remembering.match("GET", path)),
      resolved(plain.match("GET", path)),
      path,
    );
  }
  assert.equal(remembering.walks, 4);
});
