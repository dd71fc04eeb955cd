/**
 * A small seeded pseudo-random number generator (xoshiro128**) whose complete state can be
 * saved into a checkpoint and restored, so that a resumed training run draws the same
 * samples (balanced sampler, data order, RoI-batch padding) as an uninterrupted one.
 *
 * The generator is deterministic across platforms: it uses only 32-bit integer arithmetic.
 * It does not reproduce PyTorch's random streams (nothing can across frameworks); code that
 * needs randomness takes an `Rng` so that it can be seeded and tested.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = new Rng(42);
 * const order = rng.randperm(10);          // Int32Array, a permutation of 0..9
 * const saved = rng.getState();            // number[] (4 uint32 words)
 * const a = rng.uniform();
 * rng.setState(saved);
 * console.log(a === rng.uniform());        // true
 * ```
 *
 * @module
 */

/** splitmix32 step, used to expand a seed into the four state words. */
function splitmix32(x: number): [number, number] {
  x = (x + 0x9e3779b9) >>> 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return [x, z];
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/**
 * Seeded xoshiro128** generator with a restorable state.
 *
 * All draws are derived from {@link Rng.nextUint32}; the state is four uint32 words
 * (never all zero), read with {@link Rng.getState} and written with {@link Rng.setState}.
 */
export class Rng {
  #s: Uint32Array = new Uint32Array(4);

  /**
   * Seeds the generator (splitmix32 expansion of the seed into four state words).
   * @param seed any finite number (its integer part modulo 2^32 and its high bits are mixed in);
   *   the same seed always gives the same stream
   */
  constructor(seed = 0) {
    if (!Number.isFinite(seed)) throw new Error(`Rng: seed must be a finite number, got ${seed}`);
    const lo = Math.trunc(seed) >>> 0;
    const hi = Math.trunc(Math.trunc(seed) / TWO_POW_32) >>> 0;
    let x = (lo ^ Math.imul(hi, 0x27d4eb2d)) >>> 0;
    for (let i = 0; i < 4; i++) {
      const [nx, z] = splitmix32(x);
      x = nx;
      this.#s[i] = z;
    }
    if ((this.#s[0] | this.#s[1] | this.#s[2] | this.#s[3]) === 0) this.#s[0] = 1;
  }

  /** Next raw 32-bit output, an integer in [0, 2^32). */
  nextUint32(): number {
    const s = this.#s;
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / TWO_POW_53;
  }

  /**
   * Uniform integer in [lo, hi) (unbiased, by rejection).
   * @param lo inclusive lower bound (integer)
   * @param hi exclusive upper bound (integer, hi > lo, hi - lo <= 2^32)
   */
  int(lo: number, hi: number): number {
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || hi <= lo || hi - lo > TWO_POW_32) {
      throw new Error(`Rng.int: need integers lo < hi with hi - lo <= 2^32, got [${lo}, ${hi})`);
    }
    const range = hi - lo;
    // Largest multiple of range that fits in 2^32: reject draws at or above it.
    const limit = TWO_POW_32 - (TWO_POW_32 % range);
    let x = this.nextUint32();
    while (x >= limit) x = this.nextUint32();
    return lo + (x % range);
  }

  /**
   * Normal deviate (Box-Muller, one draw per call so that the state stays four words).
   * @param mean mean of the distribution (default 0)
   * @param std standard deviation (default 1)
   */
  normal(mean = 0, std = 1): number {
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Shuffles `array` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(array: T): T {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(0, i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A uniformly random permutation of 0..n-1, like `torch.randperm(n)`: Int32Array [n]. */
  randperm(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0) throw new Error(`Rng.randperm: n must be an integer >= 0`);
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }

  /**
   * `k` distinct integers drawn uniformly from 0..n-1 without replacement, in random order
   * (distributed like `randperm(n)[:k]`): Int32Array [k]. Costs O(n) memory, O(k) draws.
   */
  choice(n: number, k: number): Int32Array {
    if (!Number.isInteger(n) || n < 0 || !Number.isInteger(k) || k < 0 || k > n) {
      throw new Error(`Rng.choice: need integers 0 <= k <= n, got n=${n}, k=${k}`);
    }
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = 0; i < k; i++) {
      const j = this.int(i, n);
      const tmp = p[i];
      p[i] = p[j];
      p[j] = tmp;
    }
    return p.slice(0, k);
  }

  /** The full generator state: four uint32 words (store them in a checkpoint). */
  getState(): number[] {
    return Array.from(this.#s);
  }

  /**
   * Restores a state returned by {@link Rng.getState}.
   * @throws Error if `state` is not four integers in [0, 2^32) or is all zero
   */
  setState(state: readonly number[]): void {
    if (
      !Array.isArray(state) || state.length !== 4 ||
      state.some((w) => !Number.isInteger(w) || w < 0 || w >= TWO_POW_32)
    ) {
      throw new Error(`Rng.setState: state must be 4 integers in [0, 2^32), got ${String(state)}`);
    }
    if (state.every((w) => w === 0)) throw new Error("Rng.setState: an all-zero state is invalid");
    for (let i = 0; i < 4; i++) this.#s[i] = state[i];
  }

  /** An independent copy with the same state. */
  clone(): Rng {
    const r = new Rng(0);
    r.setState(this.getState());
    return r;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
