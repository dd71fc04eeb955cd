/**
 * A small seeded pseudo-random number generator (mulberry32) and seed mixing, so that the
 * synthetic data generator gives byte-identical output for the same seed on every platform.
 *
 * @example
 * ```ts
 * import { Mulberry32, mixSeed } from "./prng.ts";
 * const rng = new Mulberry32(mixSeed(42, 7));
 * const u = rng.next(); // in [0, 1)
 * ```
 * @module
 */

/** Mixes integers into one 32-bit seed (a splitmix-style avalanche over each part). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9 >>> 0;
  for (const p of parts) {
    h = (h ^ (p >>> 0)) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    h = (h + 0x6d2b79f5) >>> 0;
  }
  return h;
}

/** The mulberry32 generator: 32-bit state, uniform floats in [0, 1). */
export class Mulberry32 {
  /** Current 32-bit state. */
  state: number;

  /** Creates a generator from a 32-bit seed. */
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Next uniform float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal deviate (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles an array in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}
