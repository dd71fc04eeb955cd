/**
 * The `js` engine of {@linkcode roiAlign}: the box plans (per-axis sample weights in torchvision's
 * float32 arithmetic) and the sparse separable loops, forward over a range of boxes and backward
 * over a band of feature rows. Plain functions on typed arrays with no imports, so that the same
 * code runs on the main thread and, as source text, in the worker threads of
 * `roi_align_workers.ts`.
 *
 * @module
 */

/** Rounds to float32. */
export const f32: (x: number) => number = Math.fround;

/**
 * `dst[d + i] += w * src[s + i]` for `0 <= i < n` in JavaScript: the engine's one inner loop, as
 * an {@linkcode Axpy}.
 */
export function axpyLoop(
  dst: Float32Array,
  d: number,
  src: Float32Array,
  s: number,
  w: number,
  n: number,
): void {
  for (let i = 0; i < n; i++) dst[d + i] += w * src[s + i];
}

/**
 * The engine's inner loop: {@linkcode axpyLoop} or, for arrays on a wasm memory,
 * {@linkcode heapAxpy} (bitwise the same).
 */
export type Axpy = typeof axpyLoop;

/**
 * The {@linkcode Axpy} of a wasm kernel `(dstByte, srcByte, w, n)` (`axpy_wasm.ts`), for arrays
 * that are views of the kernel's memory (their byte offsets are its addresses).
 */
export function heapAxpy(k: (dst: number, src: number, w: number, n: number) => void): Axpy {
  return (dst, d, src, s, w, n) => k(dst.byteOffset + 4 * d, src.byteOffset + 4 * s, w, n);
}

/**
 * Scratch of at least `n` floats: `scratch` when it is large enough (e.g. a view of the wasm
 * memory, as {@linkcode heapAxpy} needs), else a new array (the JavaScript loop's case).
 */
export function scratchOf(scratch: Float32Array | undefined, n: number): Float32Array {
  if (scratch && scratch.length >= n) return scratch;
  if (scratch) throw new Error(`roiAlign: scratch of ${scratch.length} floats, ${n} needed`);
  return new Float32Array(n);
}

/**
 * An upper bound of {@linkcode scratchFloats} for any box of `g`, known before planning: a box
 * uses at most two pixel columns per sample and no more than its level's width.
 */
export function scratchBound(g: PoolGeometry): number {
  const C = g.shapes.length ? g.shapes[0][3] : 0;
  const width = Math.max(0, ...g.shapes.map((sh) => sh[2]));
  const cols = g.samplingRatio > 0 ? Math.min(width, 2 * g.ow * g.samplingRatio) : width;
  return g.oh * cols * C;
}

/** Floats of scratch the engine needs for `plans` (one box's first pass). */
export function scratchFloats(
  plans: BoxPlan[],
  oh: number,
  C: number,
  r0 = 0,
  r1 = plans.length,
): number {
  let n = 0;
  for (let r = r0; r < r1; r++) n = Math.max(n, oh * plans[r].xs.used.length * C);
  return n;
}

/** Sampling of one box along one axis, in torchvision's float32 arithmetic. */
export interface AxisSampling {
  /** Position of the first and the last sample (feature coordinates). */
  first: number;
  last: number;
  /** Whether all samples are inside `[-1, size]`. */
  allValid: boolean;
  /** Per-sample 1 / 0 validity. */
  valid: Uint8Array;
  /** Pixel window `[lo, lo + len)` touched by valid samples, and weights `[out, len]` (incl. 1/g). */
  lo: number;
  len: number;
  w: Float32Array;
  /** Window-relative indices (ascending) of the pixels with a nonzero weight for some output. */
  used: Int32Array;
}

/** Everything needed to pool one box. */
export interface BoxPlan {
  image: number;
  level: number;
  gy: number;
  gx: number;
  ys: AxisSampling;
  xs: AxisSampling;
}

export function sampleAxis(
  start: number,
  bin: number,
  n: number,
  g: number,
  size: number,
): AxisSampling {
  const m = Math.max(n * g, 0);
  const valid = new Uint8Array(m);
  const i0 = new Int32Array(m);
  const lerp = new Float32Array(m);
  let lo = Infinity, hi = -Infinity, allValid = true, first = 0, last = 0;
  for (let p = 0; p < n; p++) {
    const base = f32(start + f32(p * bin));
    for (let i = 0; i < g; i++) {
      const k = p * g + i;
      const v = f32(base + f32(f32((i + 0.5) * bin) / g));
      if (k === 0) first = v;
      last = v;
      if (v < -1 || v > size) {
        allValid = false;
        continue;
      }
      valid[k] = 1;
      let y = v <= 0 ? 0 : v;
      let y0 = Math.trunc(y);
      let y1 = y0 + 1;
      if (y0 >= size - 1) {
        y0 = y1 = size - 1;
        y = y0;
      }
      i0[k] = y0;
      lerp[k] = f32(y - y0);
      lo = Math.min(lo, y0);
      hi = Math.max(hi, y1);
    }
  }
  if (lo > hi) {
    return {
      first,
      last,
      allValid,
      valid,
      lo: 0,
      len: 0,
      w: new Float32Array(0),
      used: new Int32Array(0),
    };
  }
  const len = hi - lo + 1;
  const acc = new Float64Array(n * len);
  for (let k = 0; k < m; k++) {
    if (!valid[k]) continue;
    const row = Math.floor(k / g) * len;
    const a = i0[k] - lo;
    const l = lerp[k];
    acc[row + a] += f32(1 - l) / g;
    if (l !== 0) acc[row + a + 1] += l / g; // l is 0 for samples clamped to the last pixel
  }
  const w = Float32Array.from(acc);
  const hit = new Uint8Array(len);
  for (let k = 0; k < w.length; k++) if (w[k] !== 0) hit[k % len] = 1;
  const used: number[] = [];
  for (let j = 0; j < len; j++) if (hit[j]) used.push(j);
  return { first, last, allValid, valid, lo, len, w, used: Int32Array.from(used) };
}

export function planBox(
  coords: ArrayLike<number>,
  image: number,
  level: number,
  scale: number,
  featH: number,
  featW: number,
  oh: number,
  ow: number,
  samplingRatio: number,
  aligned: boolean,
): BoxPlan {
  const s = f32(scale);
  const off = aligned ? 0.5 : 0;
  const x1 = f32(f32(f32(coords[0]) * s) - off), y1 = f32(f32(f32(coords[1]) * s) - off);
  const x2 = f32(f32(f32(coords[2]) * s) - off), y2 = f32(f32(f32(coords[3]) * s) - off);
  let rw = f32(x2 - x1), rh = f32(y2 - y1);
  if (!aligned) {
    rw = Math.max(rw, 1);
    rh = Math.max(rh, 1);
  }
  const bw = f32(rw / ow), bh = f32(rh / oh);
  const gy = samplingRatio > 0 ? samplingRatio : Math.ceil(f32(rh / oh));
  const gx = samplingRatio > 0 ? samplingRatio : Math.ceil(f32(rw / ow));
  // No samples at all when either grid is empty (torchvision then outputs 0).
  const empty = gy <= 0 || gx <= 0;
  return {
    image,
    level,
    gy,
    gx,
    ys: sampleAxis(y1, bh, oh, empty ? 0 : gy, featH),
    xs: sampleAxis(x1, bw, ow, empty ? 0 : gx, featW),
  };
}

/**
 * Pools boxes `r0 <= r < r1` of `plans` into `out` (`[R, oh, ow, C]`, this range zeroed first),
 * with `ax` as the inner loop and `scratch` (at least {@linkcode scratchFloats}) as the
 * intermediate rows (a new array when absent).
 */
export function forwardRange(
  feats: Float32Array[],
  shapes: number[][],
  plans: BoxPlan[],
  oh: number,
  ow: number,
  C: number,
  out: Float32Array,
  r0: number,
  r1: number,
  ax: Axpy = axpyLoop,
  scratch?: Float32Array,
): void {
  const box = oh * ow * C;
  out.fill(0, r0 * box, r1 * box);
  const tmp = scratchOf(scratch, scratchFloats(plans, oh, C, r0, r1));
  for (let r = r0; r < r1; r++) {
    const pl = plans[r];
    const { ys, xs } = pl;
    if (ys.len === 0 || xs.len === 0) continue;
    const [, H, W] = shapes[pl.level];
    const F = feats[pl.level];
    // Only the columns some output samples are pooled (wide boxes skip the ones between samples).
    const used = xs.used;
    const nu = used.length;
    const dense = nu === xs.len;
    const span = nu * C;
    tmp.fill(0, 0, oh * span);
    for (let ph = 0; ph < oh; ph++) {
      const dst = ph * span;
      for (let j = 0; j < ys.len; j++) {
        const w = ys.w[ph * ys.len + j];
        if (w === 0) continue;
        const row = ((pl.image * H + ys.lo + j) * W + xs.lo) * C;
        if (dense) ax(tmp, dst, F, row, w, span);
        else for (let u = 0; u < nu; u++) ax(tmp, dst + u * C, F, row + used[u] * C, w, C);
      }
    }
    for (let ph = 0; ph < oh; ph++) {
      for (let pw = 0; pw < ow; pw++) {
        const o = ((r * oh + ph) * ow + pw) * C;
        for (let u = 0; u < nu; u++) {
          const w = xs.w[pw * xs.len + used[u]];
          if (w === 0) continue;
          ax(out, o, tmp, ph * span + u * C, w, C);
        }
      }
    }
  }
}

/**
 * Accumulates the gradient of every box into `grads` (one `[N, H, W, C]` array per level), but
 * only into the feature rows `bands[level][0] <= y < bands[level][1]`, which are zeroed first.
 * Bands that cover every row give the full gradient; disjoint bands can be filled by different
 * threads, each adding the boxes in the same order, so the result does not depend on the split.
 * `ax` and `scratch` as in {@linkcode forwardRange}.
 */
export function backwardBand(
  G: Float32Array,
  shapes: number[][],
  plans: BoxPlan[],
  oh: number,
  ow: number,
  grads: Float32Array[],
  bands: [number, number][],
  ax: Axpy = axpyLoop,
  scratch?: Float32Array,
): void {
  shapes.forEach(([N, H, W, C], l) => {
    const [lo, hi] = bands[l];
    if (hi <= lo) return;
    for (let b = 0; b < N; b++) grads[l].fill(0, (b * H + lo) * W * C, (b * H + hi) * W * C);
  });
  const C0 = shapes.length ? shapes[0][3] : 0;
  const tmp = scratchOf(scratch, scratchFloats(plans, oh, C0));
  plans.forEach((pl, r) => {
    const { ys, xs } = pl;
    if (ys.len === 0 || xs.len === 0) return;
    const [lo, hi] = bands[pl.level];
    const j0 = Math.max(0, lo - ys.lo), j1 = Math.min(ys.len, hi - ys.lo);
    if (j1 <= j0) return;
    const [, H, W, C] = shapes[pl.level];
    const dF = grads[pl.level];
    const used = xs.used;
    const nu = used.length;
    const dense = nu === xs.len;
    const span = nu * C;
    tmp.fill(0, 0, oh * span);
    for (let ph = 0; ph < oh; ph++) {
      for (let pw = 0; pw < ow; pw++) {
        const g = ((r * oh + ph) * ow + pw) * C;
        for (let u = 0; u < nu; u++) {
          const w = xs.w[pw * xs.len + used[u]];
          if (w !== 0) ax(tmp, ph * span + u * C, G, g, w, C);
        }
      }
    }
    for (let j = j0; j < j1; j++) {
      const row = ((pl.image * H + ys.lo + j) * W + xs.lo) * C;
      for (let ph = 0; ph < oh; ph++) {
        const w = ys.w[ph * ys.len + j];
        if (w === 0) continue;
        const src = ph * span;
        if (dense) ax(dF, row, tmp, src, w, span);
        else for (let u = 0; u < nu; u++) ax(dF, row + used[u] * C, tmp, src + u * C, w, C);
      }
    }
  });
}

/** The boxes of one RoIAlign call and its pooling settings. */
export interface PoolGeometry {
  /** `[R*4]` x1 y1 x2 y2 per box (image coordinates). */
  coords: Float32Array;
  /** Image index per box. */
  images: Int32Array;
  /** Feature level per box. */
  levels: Int32Array;
  /** Spatial scale per level. */
  scales: number[];
  /** `[N, H, W, C]` per level. */
  shapes: number[][];
  /** Output height. */
  oh: number;
  /** Output width. */
  ow: number;
  /** Samples per bin and axis (`<= 0`: adaptive). */
  samplingRatio: number;
  /** torchvision's `aligned`. */
  aligned: boolean;
}

/**
 * The plans of boxes `r0 <= r < r1` (default: every box; see {@linkcode planBox}), at their
 * indices of the returned array.
 */
export function planAll(g: PoolGeometry, r0 = 0, r1: number = g.images.length): BoxPlan[] {
  const plans: BoxPlan[] = new Array(g.images.length);
  for (let r = r0; r < r1; r++) {
    const l = g.levels[r];
    plans[r] = planBox(
      g.coords.subarray(r * 4, r * 4 + 4),
      g.images[r],
      l,
      g.scales[l],
      g.shapes[l][1],
      g.shapes[l][2],
      g.oh,
      g.ow,
      g.samplingRatio,
      g.aligned,
    );
  }
  return plans;
}
