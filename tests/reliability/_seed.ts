/**
 * The seeds the reliability tests start their generators (`Rng` in `prng.ts`) from, so every fuzz
 * run and fault schedule can be replayed from its seed.
 * @module
 */

/** The seed fuzz runs use unless `CHORUS_FUZZ_SEED` is set. */
export const DEFAULT_FUZZ_SEED = 0xC0_2105;

/**
 * The seed of a fuzz run: `CHORUS_FUZZ_SEED` (decimal or `0x` hex) when set, else `fallback`.
 * @throws {Error} when the variable is set but is not a 32-bit unsigned integer
 */
export function fuzzSeed(fallback = DEFAULT_FUZZ_SEED): { seed: number; fromEnv: boolean } {
  let text: string | undefined;
  try {
    text = Deno.env.get("CHORUS_FUZZ_SEED")?.trim();
  } catch {
    text = undefined; // no env permission: the default
  }
  if (!text) return { seed: fallback >>> 0, fromEnv: false };
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 0xFFFF_FFFF) {
    throw new Error(`CHORUS_FUZZ_SEED=${text}: expected an integer from 0 to 2^32-1`);
  }
  return { seed: n >>> 0, fromEnv: true };
}

/** A fresh random 32-bit seed (for the one random-seeded run, which prints it). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}
