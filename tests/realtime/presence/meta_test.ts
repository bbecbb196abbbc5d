import assert from "node:assert/strict";
import {
  addMeta,
  type KeyMetas,
  metaByRef,
  metaList,
  type PresenceMeta,
  randomRef,
  removeMeta,
} from "../../../realtime/presence/meta.ts";

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

const meta = (ref: string, extra: Record<string, unknown> = {}): PresenceMeta => ({
  ...extra,
  phx_ref: ref,
  online_at: 1,
});

Deno.test("presence state: a key with one meta holds the meta itself; a second makes a map, in order", () => {
  const state = new Map<string, KeyMetas>();
  const a = meta("a");
  addMeta(state, "ann", a);
  addMeta(state, "bob", meta("b"));
  assert.equal(state.get("ann"), a, "the meta itself, no map");
  addMeta(state, "ann", meta("c"));
  assert.ok(state.get("ann") instanceof Map);
  assert.deepEqual(metaList(state.get("ann")).map((m) => m.phx_ref), ["a", "c"]);
  assert.equal(metaByRef(state.get("ann"), "c")?.phx_ref, "c");
  assert.equal(metaByRef(state.get("ann"), "b"), undefined);
  assert.deepEqual([...state.keys()], ["ann", "bob"]);
  // The same phx_ref again replaces the meta, as a map keyed by phx_ref did.
  addMeta(state, "bob", meta("b", { typing: true }));
  assert.equal(metaByRef(state.get("bob"), "b")?.typing, true);
  assert.equal(metaList(state.get("bob")).length, 1);
});

Deno.test("presence state: removing goes back to the meta itself, keeps the key's place, and drops the key with its last meta", () => {
  const state = new Map<string, KeyMetas>();
  addMeta(state, "ann", meta("a"));
  addMeta(state, "ann", meta("c"));
  addMeta(state, "bob", meta("b"));
  assert.equal(removeMeta(state, "ann", "zzz"), undefined, "an unknown phx_ref changes nothing");
  assert.equal(removeMeta(state, "nobody", "a"), undefined);
  assert.equal(removeMeta(state, "ann", "a")?.phx_ref, "a");
  assert.equal((state.get("ann") as PresenceMeta).phx_ref, "c", "one left: the meta itself");
  assert.deepEqual([...state.keys()], ["ann", "bob"]);
  assert.equal(removeMeta(state, "bob", "a"), undefined, "another key's phx_ref");
  assert.equal(removeMeta(state, "bob", "b")?.phx_ref, "b");
  assert.equal(removeMeta(state, "ann", "c")?.phx_ref, "c");
  assert.equal(state.size, 0);
  assert.deepEqual(metaList(undefined), []);
});
