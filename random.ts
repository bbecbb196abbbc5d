/**
 * Unpredictable random values for ids and refs, drawn from `crypto.getRandomValues` a block at a
 * time and each byte used once. A live event makes thousands of socket ids and presence refs at
 * once; the `ulid` package's default source calls `getRandomValues` once per character, with an
 * array of its own each time (16 calls per id, about 18 µs). Not replayable: randomness that must
 * repeat from a seed (tests, load mixes) is `prng.ts`.
 * @module
 */
import { monotonicFactory, ulid } from "ulid";

const BLOCK = 4096;
let pool = new Uint8Array(0);
let at = 0;

/** One random byte, 0–255. */
export function randomByte(): number {
  if (at === pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(BLOCK));
    at = 0;
  }
  return pool[at++];
}

/**
 * Uniform in [0, 1) in steps of 1/256: the source `ulid` takes, which needs 5 bits a character
 * (`floor(x · 32)`), so each character stays uniform.
 */
export function randomFraction(): number {
  return randomByte() / 256;
}

/** A new ULID: the time (default now) and 80 random bits from {@linkcode randomByte}. */
export function newUlid(time?: number): string {
  return ulid(time, randomFraction);
}

/**
 * A ULID source whose ids increase strictly within this process, even within one millisecond
 * (`ulid`'s `monotonicFactory` over {@linkcode randomFraction}).
 */
export function monotonicUlid(): (time?: number) => string {
  return monotonicFactory(randomFraction);
}
