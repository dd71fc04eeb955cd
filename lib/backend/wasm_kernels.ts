/**
 * Training kernels for the tfjs `wasm` backend.
 *
 * tfjs-backend-wasm 4.22 ships fast forward kernels (XNNPACK convolutions and matrix products) but
 * its training story has holes: there is no `Conv2DBackpropFilter` (conv weight gradients) and no
 * `UnsortedSegmentSum` (gather gradients), its `Conv2DBackpropInput` is a naive loop (~1 GFLOP/s,
 * also the forward pass of `conv2dTranspose`), and a `BatchMatMul` with `transposeA`/`transposeB`
 * runs at a few percent of a plain one. {@linkcode registerWasmTrainingKernels} registers
 * replacements built only from the backend's own fast forward kernels:
 *
 * - `Conv2DBackpropFilter`: im2col as a matrix product. The input is transposed once to
 *   `[C, N, H, W]`; each filter tap is a (strided) slice of it, reshaped to `[C, N*OH*OW]`; the taps
 *   are stacked along the first axis and multiplied by `dy` as `[N*OH*OW, CO]`, which yields the
 *   `[KH, KW, C, CO]` gradient directly (plain, untransposed matrix product).
 * - `Conv2DBackpropInput`: a sum of forward convolutions. With stride `s` the input gradient splits
 *   into `s*s` phases (output rows/cols congruent to `r` mod `s`); each phase is a stride-1 forward
 *   convolution of `dy` with the matching taps of the spatially flipped, channel-transposed filter,
 *   so no multiplication by inserted zeros is done. The phases are interleaved with one transpose.
 * - `BatchMatMul` / `_FusedMatMul` with transposes: explicit `Transpose` + plain product.
 * - `UnsortedSegmentSum`: `ScatterNd` (which accumulates duplicates); ids outside
 *   `[0, numSegments)` are dropped as in TensorFlow.
 * - `Identity`: shares the input's data (reference counted, as on `cpu`) instead of copying it;
 *   tfjs clones every tensor a kernel saves for the backward pass, so the copies cost time and a
 *   second copy of every saved activation.
 * - `Sum` over every axis but the last (bias gradients, per-channel sums) of float32 data with a
 *   multiple of 4 channels: a SIMD kernel that accumulates each channel in the backend's own order
 *   (bitwise its result) without the backend's transpose of the whole input; other sums are the
 *   backend's own kernel.
 * - `MaxPoolGrad`: one pass over the pooling windows, routing each output gradient to the first
 *   maximum of its window (as tfjs' `cpu` backend and PyTorch do), four channels at a time in a
 *   WebAssembly SIMD kernel (`max_pool_grad_wasm.ts`; a JavaScript loop when the channels are not
 *   a multiple of 4). The backend's own kernel takes ~0.9 s for the ResNet stem's pool at 512 px.
 *
 * The data movement (the transposes, the im2col slabs, picking sub-filters, interleaving phases)
 * is done in JavaScript directly on the wasm heap: the backend's `StridedSlice`, 2-D and rank>4
 * `Transpose` kernels are slow enough to halve the throughput otherwise.
 *
 * Every kernel is a normal tfjs kernel, so gradients computed with `tf.grads` are the same
 * functions on every backend; the test suite checks each against the `cpu` backend.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { maxPoolWindowKernel } from "./max_pool_grad_wasm.ts";
import { transposeOnHeap } from "./transpose_wasm.ts";
import { channelSumKernel } from "./channel_sum_wasm.ts";
import { wasmBackendMemory } from "../wasm_asm.ts";

type Info = tf.TensorInfo;
type Attrs = tf.NamedAttrMap;
type KernelFn = (args: { inputs: unknown; backend: unknown; attrs?: Attrs }) => Info | Info[];

/** Marks kernel configs registered by this module (a global symbol, so it survives re-imports). */
const MARK: unique symbol = Symbol.for("covid-ssm.wasm-training-kernel") as never;

/** The kernels {@linkcode registerWasmTrainingKernels} registers on the `wasm` backend. */
export const WASM_TRAINING_KERNELS: readonly string[] = [
  "Conv2DBackpropFilter",
  "Conv2DBackpropInput",
  "BatchMatMul",
  "_FusedMatMul",
  "UnsortedSegmentSum",
  "MaxPoolGrad",
  "Identity",
  "Sum",
];

/** Most floats one im2col slab of `Conv2DBackpropFilter` may hold (taps are processed in groups). */
const MAX_SLAB_FLOATS = 8 * 1024 * 1024;

/** The parts of tfjs-backend-wasm's BackendWasm the kernels use. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(t: Info): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId): boolean;
}

interface MarkedConfig extends tf.KernelConfig {
  [MARK]?: { original: tf.KernelConfig | undefined };
}

/** Runs kernels of one backend directly (no engine bookkeeping) and frees intermediates. */
class KernelRunner {
  private temps: Info[] = [];
  constructor(
    private readonly backend: tf.KernelBackend,
    private readonly backendName: string,
  ) {}

  /** Calls the backend's original implementation of `name` (bypassing our wrappers). */
  call(name: string, inputs: unknown, attrs: Attrs = {}): Info {
    const out = this.fn(name)({ inputs, backend: this.backend, attrs });
    if (Array.isArray(out)) throw new Error(`kernel ${name} returned several outputs`);
    this.temps.push(out);
    return out;
  }

  private fn(name: string): KernelFn {
    const cfg = tf.getKernel(name, this.backendName) as MarkedConfig | undefined;
    const original = cfg?.[MARK] ? cfg[MARK].original : cfg;
    if (!original) {
      throw new Error(`kernel ${name} is not registered for backend '${this.backendName}'`);
    }
    return original.kernelFunc as unknown as KernelFn;
  }

  /** Allocates an uninitialised float32 tensor on the wasm heap. */
  alloc(shape: number[]): Info {
    const out = (this.backend as unknown as WasmBackendLike).makeOutput(shape, "float32");
    this.temps.push(out);
    return out;
  }

  /**
   * A Float32Array view of a tensor on the wasm heap. Views go stale when the heap grows, so take
   * them after the allocations of a step, and never keep them across kernel calls.
   */
  view(t: Info): Float32Array {
    return (this.backend as unknown as WasmBackendLike).typedArrayFromHeap(t) as Float32Array;
  }

  /** True when `t` was produced by this runner. */
  isTemp(t: Info): boolean {
    return this.temps.includes(t);
  }

  /** Removes `t` from the intermediates so that {@linkcode dispose} keeps it. */
  keep(t: Info): Info {
    const i = this.temps.lastIndexOf(t);
    if (i >= 0) this.temps.splice(i, 1);
    return t;
  }

  /** Frees every intermediate not kept. */
  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps = [];
  }

  reshape(x: Info, shape: number[]): Info {
    return this.call("Reshape", { x }, { shape });
  }
  slice(x: Info, begin: number[], size: number[]): Info {
    if (size.every((s, i) => s === x.shape[i]) && begin.every((b) => b === 0)) return x;
    return this.call("Slice", { x }, { begin, size });
  }

  concat(xs: Info[], axis: number): Info {
    if (xs.length === 1) return xs[0];
    return this.call("Concat", xs, { axis });
  }
  zeros(shape: number[]): Info {
    return this.call("Fill", {}, { shape, value: 0, dtype: "float32" });
  }
  matMul(a: Info, b: Info): Info {
    return this.call("BatchMatMul", { a, b }, { transposeA: false, transposeB: false });
  }
  conv2d(x: Info, filter: Info, pad: [[number, number], [number, number]]): Info {
    return this.call("Conv2D", { x, filter }, {
      strides: [1, 1],
      pad: [[0, 0], pad[0], pad[1], [0, 0]],
      dataFormat: "NHWC",
      dilations: [1, 1],
      dimRoundingMode: undefined as unknown as string,
    });
  }
}

/** Runs `body` with a fresh runner; everything but the returned tensor is freed. */
function withRunner(backend: tf.KernelBackend, body: (r: KernelRunner) => Info): Info {
  const r = new KernelRunner(backend, "wasm");
  try {
    const out = body(r);
    // Never hand an input back as the output: the engine would free it twice.
    return r.keep(r.isTemp(out) ? out : r.call("Identity", { x: out }));
  } finally {
    r.dispose();
  }
}

function assertNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== "NHWC" && dataFormat !== "channelsLast") {
    throw new Error(
      `${kernel} on wasm: dataFormat '${String(dataFormat)}' is not supported (use NHWC)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter

/** The NHWC geometry of a conv kernel's attributes (sizes, strides, leading padding). */
function convGeometry(
  inputShape: [number, number, number, number],
  filterShape: [number, number, number, number],
  attrs: Attrs,
) {
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filterShape,
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "same" | "valid" | number | tf.backend_util.ExplicitPadding,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    false,
    "channelsLast",
  );
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    c: info.inChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    co: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    top: info.padInfo.top,
    left: info.padInfo.left,
  };
}

function conv2DBackpropFilter(
  args: { inputs: { x: Info; dy: Info }; backend: tf.KernelBackend; attrs: Attrs },
): Info {
  const { inputs: { x, dy }, backend, attrs } = args;
  assertNHWC("Conv2DBackpropFilter", attrs.dataFormat);
  const filterShape = attrs.filterShape as [number, number, number, number];
  const { n, h, w, c, oh, ow, co, kh, kw, sh, sw, top, left } = convGeometry(
    x.shape as [number, number, number, number],
    filterShape,
    attrs,
  );
  const m = n * oh * ow;
  return withRunner(backend, (r) => {
    if (m === 0) return r.zeros(filterShape);
    const dy2 = r.reshape(dy, [m, co]);
    const plain = kh === 1 && kw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0 &&
      oh === h && ow === w;
    const xT = r.alloc([c, n * h * w]);
    transpose2d(r.view(x), r.view(xT), n * h * w, c);
    if (plain) return r.reshape(r.matMul(xT, dy2), filterShape);
    const tapsPerGroup = Math.max(1, Math.floor(MAX_SLAB_FLOATS / (c * m)));
    const parts: Info[] = [];
    const geom = { n, h, w, c, oh, ow, sh, sw, top, left };
    for (let t0 = 0; t0 < kh * kw; t0 += tapsPerGroup) {
      const t1 = Math.min(kh * kw, t0 + tapsPerGroup);
      const slab = r.alloc([(t1 - t0) * c, m]);
      const src = r.view(xT);
      const dst = r.view(slab);
      for (let t = t0; t < t1; t++) {
        im2colTap(src, dst, (t - t0) * c * m, Math.floor(t / kw), t % kw, geom);
      }
      parts.push(r.matMul(slab, dy2)); // [taps*C, CO]
    }
    return r.reshape(r.concat(parts, 0), filterShape);
  });
}

/** `dst[j*rows + i] = src[i*cols + j]` for a `[rows, cols]` matrix of the wasm heap. */
function transpose2d(src: Float32Array, dst: Float32Array, rows: number, cols: number): void {
  transposeOnHeap(wasmBackendMemory(tf.backend()), src, dst, rows, cols);
}

interface ConvGeom {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  sh: number;
  sw: number;
  top: number;
  left: number;
}

/**
 * Writes the rows of one filter tap `(i, j)` of the transposed im2col matrix:
 * `dst[off + (ch*N + b)*OH*OW + y*OW + x] = xpad[ch, b, y*sh + i, x*sw + j]` for the input
 * `src` in `[C, N, H, W]` layout (zero outside the image).
 */
function im2colTap(
  src: Float32Array,
  dst: Float32Array,
  off: number,
  i: number,
  j: number,
  g: ConvGeom,
): void {
  const { n, h, w, c, oh, ow, sh, sw, top, left } = g;
  // Output columns whose input column x*sw + j - left lies inside [0, w).
  const xLo = Math.max(0, Math.ceil((left - j) / sw));
  const xHi = Math.min(ow - 1, Math.floor((w - 1 - j + left) / sw));
  for (let ch = 0; ch < c; ch++) {
    for (let b = 0; b < n; b++) {
      const srcPlane = (ch * n + b) * h * w;
      let d = off + (ch * n + b) * oh * ow;
      for (let y = 0; y < oh; y++, d += ow) {
        const row = y * sh + i - top;
        if (row < 0 || row >= h || xHi < xLo) {
          dst.fill(0, d, d + ow);
          continue;
        }
        if (xLo > 0) dst.fill(0, d, d + xLo);
        if (xHi < ow - 1) dst.fill(0, d + xHi + 1, d + ow);
        const s0 = srcPlane + row * w + xLo * sw + j - left;
        if (sw === 1) {
          dst.set(src.subarray(s0, s0 + xHi - xLo + 1), d + xLo);
        } else {
          for (let x = xLo, s = s0; x <= xHi; x++, s += sw) dst[d + x] = src[s];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput

/** One output phase of a transposed convolution along one spatial axis. */
interface Phase1D {
  /** Output positions of this phase (`ceil((size - r) / s)`). */
  count: number;
  /** Filter taps used, in the order the stride-1 correlation needs them (flipped). */
  taps: number[];
  /** `dy` range read, inclusive, clipped to `[0, outSize)`. */
  from: number;
  to: number;
  /** Zero padding around that range for the stride-1 correlation. */
  padBefore: number;
  padAfter: number;
}

/**
 * Plans phase `r` of `dx[i] = sum_{o,k: o*s + k - p = i} dy[o] w[k]` for `i = s*q + r`:
 * taps `k = c + s*m` (`c = (r+p) mod s`), and `dx[s*q+r] = sum_m dy[q + d - m] w[c + s*m]`
 * with `d = floor((r+p)/s)`, i.e. a correlation of `dy` with the flipped taps.
 */
function planPhase(size: number, outSize: number, k: number, s: number, p: number, r: number) {
  const count = Math.max(0, Math.ceil((size - r) / s));
  const c = (((r + p) % s) + s) % s;
  const d = Math.floor((r + p) / s);
  const taps: number[] = [];
  for (let t = c; t < k; t += s) taps.push(t);
  taps.reverse();
  const nm = taps.length;
  const lo = d - nm + 1;
  const hi = count - 1 + d;
  const from = Math.max(0, lo);
  const to = Math.min(outSize - 1, hi);
  const phase: Phase1D = {
    count,
    taps,
    from,
    to,
    padBefore: from - lo,
    padAfter: hi - to,
  };
  const empty = count === 0 || nm === 0 || to < from;
  return { phase, empty };
}

/**
 * Writes `sub[a, b, o, ci] = filter[tapsH[a], tapsW[b], ci, o]`: the taps of one phase, flipped
 * (the taps lists are already in flipped order) and with the channel axes swapped.
 */
function pickSubFilter(
  f: Float32Array,
  fShape: number[],
  tapsH: number[],
  tapsW: number[],
  dst: Float32Array,
): void {
  const [, kw, ci, co] = fShape;
  let d = 0;
  for (const th of tapsH) {
    for (const tw of tapsW) {
      const base = (th * kw + tw) * ci * co;
      for (let o = 0; o < co; o++) {
        for (let i = 0; i < ci; i++) dst[d++] = f[base + i * co + o];
      }
    }
  }
}

function conv2DBackpropInput(
  args: { inputs: { dy: Info; filter: Info }; backend: tf.KernelBackend; attrs: Attrs },
): Info {
  const { inputs: { dy, filter }, backend, attrs } = args;
  assertNHWC("Conv2DBackpropInput", attrs.dataFormat);
  const inputShape = attrs.inputShape as [number, number, number, number];
  const { n, h, w, c, oh, ow, co, kh, kw, sh, sw, top, left } = convGeometry(
    inputShape,
    filter.shape as [number, number, number, number],
    attrs,
  );
  return withRunner(backend, (r) => {
    const phases: { rh: number; rw: number; out: Info; qh: number; qw: number }[] = [];
    let anyEmpty = false;
    for (let rh = 0; rh < sh; rh++) {
      const ph = planPhase(h, oh, kh, sh, top, rh);
      for (let rw = 0; rw < sw; rw++) {
        const pw = planPhase(w, ow, kw, sw, left, rw);
        if (ph.empty || pw.empty) {
          anyEmpty = true;
          continue;
        }
        const a = ph.phase;
        const b = pw.phase;
        const sub = r.alloc([a.taps.length, b.taps.length, co, c]);
        pickSubFilter(r.view(filter), filter.shape, a.taps, b.taps, r.view(sub));
        const dyc = r.slice(dy, [0, a.from, b.from, 0], [
          n,
          a.to - a.from + 1,
          b.to - b.from + 1,
          co,
        ]);
        const out = r.conv2d(dyc, sub, [[a.padBefore, a.padAfter], [b.padBefore, b.padAfter]]);
        phases.push({ rh, rw, out, qh: a.count, qw: b.count });
      }
    }
    if (sh === 1 && sw === 1 && phases.length === 1) return phases[0].out;
    const dx = r.alloc([n, h, w, c]);
    const dst = r.view(dx);
    if (anyEmpty) dst.fill(0);
    for (const p of phases) {
      const src = r.view(p.out);
      let s = 0;
      for (let b = 0; b < n; b++) {
        for (let y = 0; y < p.qh; y++) {
          const rowBase = ((b * h + y * sh + p.rh) * w + p.rw) * c;
          for (let x = 0; x < p.qw; x++, s += c) {
            const d = rowBase + x * sw * c;
            if (c >= 16) dst.set(src.subarray(s, s + c), d);
            else for (let k = 0; k < c; k++) dst[d + k] = src[s + k];
          }
        }
      }
    }
    return dx;
  });
}

// ---------------------------------------------------------------------------------------------
// Matrix products with transposes

/** Swaps the last two axes (batched 2-D transpose, done on the heap). */
function swapLast(r: KernelRunner, x: Info): Info {
  const k = x.shape.length;
  const rows = x.shape[k - 2];
  const cols = x.shape[k - 1];
  const batch = tf.util.sizeFromShape(x.shape.slice(0, k - 2));
  const xf = x.dtype === "float32" ? x : r.call("Cast", { x }, { dtype: "float32" });
  const out = r.alloc([...x.shape.slice(0, k - 2), cols, rows]);
  const src = r.view(xf);
  const dst = r.view(out);
  const size = rows * cols;
  for (let b = 0; b < batch; b++) {
    transpose2d(src.subarray(b * size, (b + 1) * size), dst.subarray(b * size), rows, cols);
  }
  return out;
}

function makeMatMul(kernelName: "BatchMatMul" | "_FusedMatMul") {
  return (
    args: { inputs: Record<string, Info>; backend: tf.KernelBackend; attrs: Attrs },
  ): Info => {
    const { inputs, backend, attrs } = args;
    const r = new KernelRunner(backend, "wasm");
    if (!attrs.transposeA && !attrs.transposeB) {
      return r.call(kernelName, inputs, attrs);
    }
    const [batch, m] = inputs.a.shape;
    const [batchB, n] = inputs.b.shape;
    if (
      kernelName === "BatchMatMul" && attrs.transposeB && !attrs.transposeA && batch === 1 &&
      batchB === 1 && inputs.a.shape.length === 3 && m < n
    ) {
      // a · bᵀ with the large operand b (a layer's weight): computed as (b · aᵀ)ᵀ, so that only
      // the small a is transposed and packed by XNNPACK, plus one transpose of the product. Each
      // element is the same dot product over k in the same order: bitwise the same result.
      return withRunner(backend, (rr) => {
        const product = rr.call("BatchMatMul", { a: inputs.b, b: swapLast(rr, inputs.a) }, {
          transposeA: false,
          transposeB: false,
        });
        return swapLast(rr, product);
      });
    }
    return withRunner(backend, (rr) => {
      const a = attrs.transposeA ? swapLast(rr, inputs.a) : inputs.a;
      const b = attrs.transposeB ? swapLast(rr, inputs.b) : inputs.b;
      return rr.call(kernelName, { ...inputs, a, b }, {
        ...attrs,
        transposeA: false,
        transposeB: false,
      });
    });
  };
}

// ---------------------------------------------------------------------------------------------
// UnsortedSegmentSum

function unsortedSegmentSum(
  args: {
    inputs: { x: Info; segmentIds: Info };
    backend: tf.KernelBackend;
    attrs: Attrs;
  },
): Info {
  const { inputs: { x, segmentIds }, backend, attrs } = args;
  const numSegments = attrs.numSegments as number;
  const idRank = segmentIds.shape.length;
  for (let i = 0; i < idRank; i++) {
    if (segmentIds.shape[i] !== x.shape[i]) {
      throw new Error(
        `UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
      );
    }
  }
  const rows = tf.util.sizeFromShape(segmentIds.shape);
  const inner = x.shape.slice(idRank);
  return withRunner(backend, (r) => {
    const outShape = [numSegments, ...inner];
    if (rows === 0 || numSegments === 0) return r.zeros(outShape);
    let ids = r.reshape(segmentIds, [rows, 1]);
    let upd = r.reshape(x, [rows, ...inner]);
    if (ids.dtype !== "int32") ids = r.call("Cast", { x: ids }, { dtype: "int32" });
    const idv = backend.readSync(ids.dataId) as Int32Array;
    let valid = 0;
    for (let i = 0; i < idv.length; i++) if (idv[i] >= 0 && idv[i] < numSegments) valid++;
    if (valid === 0) return r.zeros(outShape);
    if (valid < idv.length) {
      const keepIdx = new Int32Array(valid);
      for (let i = 0, j = 0; i < idv.length; i++) {
        if (idv[i] >= 0 && idv[i] < numSegments) keepIdx[j++] = i;
      }
      const keepT = r.call("Fill", {}, { shape: [valid], value: 0, dtype: "int32" });
      (backend as unknown as { typedArrayFromHeap(t: Info): Int32Array }).typedArrayFromHeap(keepT)
        .set(keepIdx);
      ids = r.call("GatherV2", { x: ids, indices: keepT }, { axis: 0, batchDims: 0 });
      upd = r.call("GatherV2", { x: upd, indices: keepT }, { axis: 0, batchDims: 0 });
    }
    if (upd.dtype !== "float32") upd = r.call("Cast", { x: upd }, { dtype: "float32" });
    const out = r.call("ScatterNd", { indices: ids, updates: upd }, { shape: outShape });
    return x.dtype === "float32" ? out : r.call("Cast", { x: out }, { dtype: x.dtype });
  });
}

// ---------------------------------------------------------------------------------------------
// MaxPoolGrad

function maxPoolGrad(
  args: { inputs: { dy: Info; input: Info }; backend: tf.KernelBackend; attrs: Attrs },
): Info {
  const { inputs: { dy, input }, backend, attrs } = args;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize as [number, number] | number,
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as "valid" | "same" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
  );
  if (input.dtype !== "float32" || dy.dtype !== "float32") {
    throw new Error(`MaxPoolGrad: float32 tensors only, got ${input.dtype} / ${dy.dtype}`);
  }
  const wb = backend as unknown as WasmBackendLike;
  const out = wb.makeOutput(input.shape, "float32");
  const { batchSize, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const kh = info.effectiveFilterHeight, kw = info.effectiveFilterWidth;
  const top = info.padInfo.top, left = info.padInfo.left;
  // Four channels at a time on the heap (SIMD) when C allows, else the JavaScript loop.
  const simd = C % 4 === 0;
  const tapsInfo = simd ? wb.makeOutput([kh * kw], "int32") : null;
  try {
    // Views after the allocations (a heap growth detaches earlier ones).
    const x = wb.typedArrayFromHeap(input) as Float32Array;
    const g = wb.typedArrayFromHeap(dy) as Float32Array;
    const dx = wb.typedArrayFromHeap(out) as Float32Array;
    dx.fill(0);
    const taps = tapsInfo ? wb.typedArrayFromHeap(tapsInfo) as Int32Array : null;
    const window = taps ? maxPoolWindowKernel(wasmBackendMemory(backend)) : null;
    const best = new Float32Array(C);
    const arg = new Int32Array(C);
    for (let b = 0; b < batchSize; b++) {
      const xb = b * H * W * C;
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const gBase = ((b * OH + oh) * OW + ow) * C;
          if (taps && window) {
            // The window's valid taps in row-major order, as byte offsets from the image base.
            let n = 0;
            for (let i = 0; i < kh; i += dh) {
              const h = oh * sh - top + i;
              if (h < 0 || h >= H) continue;
              for (let j = 0; j < kw; j += dw) {
                const w = ow * sw - left + j;
                if (w >= 0 && w < W) taps[n++] = (h * W + w) * C * 4;
              }
            }
            if (n > 0) {
              const base = 4 * xb;
              window(
                x.byteOffset + base,
                g.byteOffset + 4 * gBase,
                dx.byteOffset + base,
                taps.byteOffset,
                n,
                C,
              );
            }
            continue;
          }
          best.fill(-Infinity);
          arg.fill(-1);
          for (let i = 0; i < kh; i += dh) {
            const h = oh * sh - top + i;
            if (h < 0 || h >= H) continue;
            for (let j = 0; j < kw; j += dw) {
              const w = ow * sw - left + j;
              if (w < 0 || w >= W) continue;
              const base = xb + (h * W + w) * C;
              for (let c = 0; c < C; c++) {
                const v = x[base + c];
                // Strictly greater: the first maximum in row-major window order wins.
                if (v > best[c] || arg[c] < 0) {
                  best[c] = v;
                  arg[c] = base + c;
                }
              }
            }
          }
          for (let c = 0; c < C; c++) if (arg[c] >= 0) dx[arg[c]] += g[gBase + c];
        }
      }
    }
  } finally {
    if (tapsInfo) wb.disposeData(tapsInfo.dataId);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Identity

/** The backend's own kernels that the replacements fall back to (`Identity`, `Sum`). */
const originals = new Map<string, tf.KernelConfig>();

/** Runs the backend's own kernel `name`. */
function original(name: string, args: unknown): Info {
  const config = originals.get(name);
  if (!config) throw new Error(`${name}: the wasm backend's own kernel is not registered`);
  return config.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as Info;
}

/**
 * The output shares the input's heap data (its reference count goes up), as on tfjs' `cpu`
 * backend: tensor data is never written in place, so no copy is needed. The backend's own kernel
 * copies, and tfjs runs it on every tensor a kernel saves for the backward pass.
 */
function identity(args: { inputs: { x: Info }; backend: tf.KernelBackend }): Info {
  const { inputs: { x }, backend } = args;
  // Strings live outside the heap: the backend's own kernel.
  if (x.dtype === "string") return original("Identity", args);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

// ---------------------------------------------------------------------------------------------
// Sum

/**
 * `Sum` over every axis but the last, listed in ascending order, of a float32 tensor whose channels
 * are a multiple of 4 (bias gradients, per-channel sums): the SIMD kernel of `channel_sum_wasm.ts`,
 * bitwise the backend's own result without its transpose of the whole input. Every other sum: the
 * backend's kernel.
 */
function sum(args: { inputs: { x: Info }; backend: tf.KernelBackend; attrs: Attrs }): Info {
  const { inputs: { x }, backend, attrs } = args;
  const rank = x.shape.length;
  const C = x.shape[rank - 1] ?? 0;
  const size = tf.util.sizeFromShape(x.shape);
  // In the order given: the backend sums in the order of its axes list.
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape);
  const channelwise = x.dtype === "float32" && rank >= 2 && C > 0 && C % 4 === 0 && size > 0 &&
    axes.length === rank - 1 && axes.every((a, i) => a === i);
  if (!channelwise) return original("Sum", args);
  const wb = backend as unknown as WasmBackendLike;
  const outShape = attrs.keepDims ? [...new Array(rank - 1).fill(1), C] : [C];
  const out = wb.makeOutput(outShape, "float32");
  const src = wb.typedArrayFromHeap(x), dst = wb.typedArrayFromHeap(out);
  channelSumKernel(wasmBackendMemory(backend))(src.byteOffset, size / C, C, dst.byteOffset);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Registration

const IMPLEMENTATIONS: Record<string, (args: never) => Info> = {
  Conv2DBackpropFilter: conv2DBackpropFilter,
  Conv2DBackpropInput: conv2DBackpropInput,
  BatchMatMul: makeMatMul("BatchMatMul"),
  _FusedMatMul: makeMatMul("_FusedMatMul"),
  UnsortedSegmentSum: unsortedSegmentSum,
  MaxPoolGrad: maxPoolGrad,
  Identity: identity,
  Sum: sum,
};

/**
 * Registers the training kernels listed in {@linkcode WASM_TRAINING_KERNELS} on the `wasm`
 * backend, replacing missing or slow ones. Idempotent: a second call changes nothing.
 * `initBackend("wasm")` calls it; call it yourself only when you set up the wasm backend without
 * `initBackend`.
 *
 * @returns the names of the kernels registered by this call (empty when already registered)
 */
export function registerWasmTrainingKernels(): string[] {
  const added: string[] = [];
  for (const kernelName of WASM_TRAINING_KERNELS) {
    const existing = tf.getKernel(kernelName, "wasm") as MarkedConfig | undefined;
    if (existing?.[MARK]) continue;
    if (existing) tf.unregisterKernel(kernelName, "wasm");
    if (existing) originals.set(kernelName, existing);
    const config: MarkedConfig = {
      kernelName,
      backendName: "wasm",
      kernelFunc: IMPLEMENTATIONS[kernelName] as unknown as tf.KernelFunc,
      setupFunc: existing?.setupFunc,
      disposeFunc: existing?.disposeFunc,
      [MARK]: { original: existing },
    };
    tf.registerKernel(config);
    added.push(kernelName);
  }
  return added;
}

/** True when {@linkcode registerWasmTrainingKernels} has registered its kernels. */
export function wasmTrainingKernelsRegistered(): boolean {
  return WASM_TRAINING_KERNELS.every((k) =>
    Boolean((tf.getKernel(k, "wasm") as MarkedConfig | undefined)?.[MARK])
  );
}
