import assert from "node:assert/strict";
import { TrieRouter } from "hono/router/trie-router";
import {
  REMEMBERED_PATH_LENGTH,
  REMEMBERED_PATHS,
  RememberingRouter,
} from "../../routes/_router.ts";

/** The same routes, middleware included, in both routers: the shapes Chorus registers. */
function routers() {
  const plain = new TrieRouter<string>();
  const remembering = new RememberingRouter<string>();
  const routes: [string, string, string][] = [
    ["ALL", "*", "edge"],
    ["ALL", "/api/v1/*", "auth"],
    ["POST", "/api/*", "body"],
    ["PUT", "/api/*", "body"],
    ["GET", "/api/v1/kv/:key", "get"],
    ["PUT", "/api/v1/kv/:key", "put"],
    ["POST", "/api/v1/kv/bulk/touch", "bulk touch"],
    ["POST", "/api/v1/kv/:key/touch", "touch"],
    ["GET", "/api/v1/contexts/:id/sync", "sync"],
  ];
  for (const [method, path, handler] of routes) {
    plain.add(method, path, handler);
    remembering.add(method, path, handler);
  }
  return { plain, remembering };
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
        remembering.match(method, path),
        plain.match(method, path),
        `${method} ${path}`,
      );
    }
  }
  assert.equal(remembering.remembered, asked.length);
});

Deno.test("[router] keeps a bounded number of answers, forgetting the oldest, and never long paths", () => {
  const { plain, remembering } = routers();
  for (let i = 0; i < REMEMBERED_PATHS + 50; i++) remembering.match("GET", `/api/v1/kv/k${i}`);
  assert.equal(remembering.remembered, REMEMBERED_PATHS);
  // Forgotten and remembered paths alike still get the right answer.
  for (const i of [0, 49, 50, REMEMBERED_PATHS + 49]) {
    const path = `/api/v1/kv/k${i}`;
    assert.deepEqual(remembering.match("GET", path), plain.match("GET", path));
  }
  const long = `/api/v1/kv/${"x".repeat(REMEMBERED_PATH_LENGTH)}`;
  const before = remembering.remembered;
  assert.deepEqual(remembering.match("GET", long), plain.match("GET", long));
  assert.equal(remembering.remembered, before);
});

Deno.test("[router] a route added later is found: adding forgets what was remembered", () => {
  const { plain, remembering } = routers();
  assert.equal(remembering.match("GET", "/api/v1/late")[0].length, 2); // middleware only
  plain.add("GET", "/api/v1/late", "late");
  remembering.add("GET", "/api/v1/late", "late");
  assert.equal(remembering.remembered, 0);
  assert.deepEqual(remembering.match("GET", "/api/v1/late"), plain.match("GET", "/api/v1/late"));
  assert.ok(remembering.match("GET", "/api/v1/late")[0].some(([h]) => h === "late"));
});
