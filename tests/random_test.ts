import assert from "node:assert/strict";
import { decodeTime, isValid } from "ulid";
import { monotonicUlid, newUlid, randomByte, randomFraction } from "../random.ts";

Deno.test("random: ULIDs are valid, carry their time and do not repeat across pool refills", () => {
  const at = Date.UTC(2026, 11, 3, 12, 0, 0);
  const seen = new Set<string>();
  // 2,000 ids draw 20,000 bytes: several blocks of the pool.
  for (let i = 0; i < 2000; i++) {
    const id = newUlid(at);
    assert.ok(isValid(id), id);
    assert.equal(decodeTime(id), at);
    seen.add(id);
  }
  assert.equal(seen.size, 2000);
  const now = Date.now();
  const fresh = decodeTime(newUlid());
  assert.ok(fresh >= now && fresh <= Date.now());
});

Deno.test("random: a monotonic source increases strictly within one millisecond", () => {
  const next = monotonicUlid();
  const at = Date.UTC(2026, 11, 3, 12, 0, 0);
  let last = next(at);
  for (let i = 0; i < 1000; i++) {
    const id = next(at);
    assert.ok(id > last, `${id} after ${last}`);
    assert.equal(decodeTime(id), at);
    last = id;
  }
});

Deno.test("random: bytes cover 0–255 evenly enough, and fractions stay in [0, 1)", () => {
  const counts = new Array(256).fill(0);
  const draws = 256 * 400;
  for (let i = 0; i < draws; i++) {
    const b = randomByte();
    assert.ok(Number.isInteger(b) && b >= 0 && b <= 255, String(b));
    counts[b]++;
  }
  // Each value is expected 400 times; a fixed or stuck source would put everything in a few.
  assert.ok(
    Math.min(...counts) > 250 && Math.max(...counts) < 550,
    `${Math.min(...counts)}–${Math.max(...counts)}`,
  );
  for (let i = 0; i < 10_000; i++) {
    const f = randomFraction();
    assert.ok(f >= 0 && f < 1, String(f));
  }
});
