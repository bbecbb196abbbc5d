import assert from "node:assert/strict";
import { randomRef } from "../../../realtime/presence/meta.ts";

Deno.test("randomRef: 16 url-safe base64 characters (12 random bytes), never repeated", () => {
  const seen = new Set<string>();
  const firsts = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const ref = randomRef();
    assert.match(ref, /^[A-Za-z0-9_-]{16}$/);
    seen.add(ref);
    firsts.add(ref[0]);
  }
  assert.equal(seen.size, 5000);
  assert.equal(firsts.size, 64, "every base64url character appears in the first position");
});
