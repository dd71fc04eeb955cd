/**
 * Differentiable RoIAlign with the exact semantics of `torchvision.ops.roi_align` (and
 * `MultiScaleRoIAlign`), on NHWC feature maps.
 *
 * For every box the output bin `(ph, pw)` is the mean of `gy x gx` bilinear samples taken at
 * `start + bin * (p + (i + 0.5) / g)` per axis, where `start = x1 * spatialScale` (minus 0.5 when
 * `aligned`), the box size is forced to at least one feature pixel when not `aligned`, a sample is 0
 * when it lies outside `[-1, size]` on either axis, and a sample is clamped to the first / last pixel
 * inside that range. Sample positions are computed with torchvision's float32 arithmetic, so even
 * samples that land exactly on -1 or `size` are decided the same way.
 *
 * The sampling grid is a product grid and bilinear interpolation is separable, so each box is
 * `out[:, :, c] = By · F[:, :, c] · Bxᵀ` with sparse per-axis weight matrices `By [oh, H]` and
 * `Bx [ow, W]` (sample averaging and the out-of-range rule folded in). They are built on the CPU from
 * the box coordinates. Two engines evaluate this:
 *
 * - `"js"` (default on `cpu` and `wasm`): sparse loops over each box's pixel window, forward and
 *   backward, on the feature / gradient data read back once per call. On `wasm` the data stays on
 *   the backend's heap and the inner loop is a WebAssembly SIMD kernel (`axpy_wasm.ts`), bitwise
 *   equal to the JavaScript loop the `cpu` backend runs.
 * - `"tensor"` (default elsewhere, e.g. `webgpu`): forward with `tf.image.cropAndResize` on the map
 *   padded by two replicated pixels (so clamping is free and extrapolation never hides a valid sample),
 *   an exact validity mask where needed and `tf.avgPool`; backward with two plain `tf.matMul` calls
 *   per chunk of boxes (`dF = Σ_r By_rᵀ · (G_r · Bx_r)`).
 *
 * Boxes receive no gradient, as in torchvision.
 *
 * @example
 * ```ts
 * const pooled = roiAlign(features, boxes, { outputSize: 7, spatialScale: 1 / 16, samplingRatio: 2 });
 * ```
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import {
  type Axpy,
  axpyLoop,
  backwardBand,
  type BoxPlan,
  f32,
  forwardRange,
  heapAxpy,
  planAll,
  type PoolGeometry,
  scratchBound,
  scratchFloats,
} from "./roi_align_js.ts";
import { axpyKernel } from "./axpy_wasm.ts";
import { wasmBackendMemory } from "./wasm_asm.ts";
import {
  backwardParallel,
  forwardParallel,
  type HeapScratch,
  PARALLEL_MIN_FLOATS,
  roiAlignThreads,
} from "./roi_align_workers.ts";

/** Which implementation evaluates RoIAlign (both give the same numbers). */
export type RoIAlignEngine = "auto" | "js" | "tensor";

/** Options of {@linkcode roiAlign}; defaults are those of the SSM box head. */
export interface RoIAlignConfig {
  /** Output `[height, width]`, or one number for a square output. Default 7. */
  outputSize?: number | readonly [number, number];
  /** Factor from box (image) coordinates to feature coordinates. Default 1. */
  spatialScale?: number;
  /** Samples per bin and axis; `<= 0` means adaptive `ceil(roiSize / outputSize)`. Default 2. */
  samplingRatio?: number;
  /** torchvision's `aligned`: half-pixel offset and no 1-pixel minimum box size. Default false. */
  aligned?: boolean;
  /**
   * Image (batch) index of each box into the features' first dimension. Default: all 0. Not allowed
   * with `[R, 5]` boxes, whose first column holds the index (torchvision's roi format).
   */
  boxIndices?: ArrayLike<number> | tf.Tensor1D;
  /** Implementation; `auto` picks `js` on the `cpu`/`wasm` backends, `tensor` otherwise. */
  engine?: RoIAlignEngine;
}

/** Boxes as a `[R, 4]` (x1, y1, x2, y2) or `[R, 5]` (batch index first) tensor or array of rows. */
export type RoIBoxes = tf.Tensor2D | readonly (readonly number[])[];

// ---------------------------------------------------------------------------------------------
// "tensor" engine: cropAndResize forward, matMul backward.

const PAD = 2;
const CHUNK_ELEMENTS = 1 << 23;

/** Edge-replicates `PAD` pixels on every side of an NHWC map. */
function replicatePad(x: tf.Tensor4D): tf.Tensor4D {
  const [, H, W] = x.shape;
  const rows = tf.concat([
    ...Array(PAD).fill(tf.slice(x, [0, 0, 0, 0], [-1, 1, -1, -1])),
    x,
    ...Array(PAD).fill(tf.slice(x, [0, H - 1, 0, 0], [-1, 1, -1, -1])),
  ], 1);
  return tf.concat([
    ...Array(PAD).fill(tf.slice(rows, [0, 0, 0, 0], [-1, -1, 1, -1])),
    rows,
    ...Array(PAD).fill(tf.slice(rows, [0, 0, W - 1, 0], [-1, -1, 1, -1])),
  ], 2) as tf.Tensor4D;
}

function forwardTensor(
  feats: tf.Tensor4D[],
  plans: BoxPlan[],
  oh: number,
  ow: number,
  C: number,
): tf.Tensor4D {
  const R = plans.length;
  if (R === 0) return tf.zeros([0, oh, ow, C]);
  const groups = new Map<string, number[]>();
  plans.forEach((pl, r) => {
    const key = pl.ys.len === 0 || pl.xs.len === 0 ? "empty" : `${pl.level}:${pl.gy}:${pl.gx}`;
    groups.get(key)?.push(r) ?? groups.set(key, [r]);
  });
  const padded = new Map<number, tf.Tensor4D>();
  const parts: tf.Tensor[] = [];
  const order: number[] = [];
  for (const [key, idx] of groups) {
    if (key === "empty") {
      parts.push(tf.zeros([idx.length, oh, ow, C]));
      order.push(...idx);
      continue;
    }
    const { level, gy, gx } = plans[idx[0]];
    if (!padded.has(level)) padded.set(level, replicatePad(feats[level]));
    const fp = padded.get(level)!;
    const [, Hp, Wp] = fp.shape;
    const ch = oh * gy, cw = ow * gx;
    const step = Math.max(1, Math.floor(CHUNK_ELEMENTS / (ch * cw * C)));
    for (let a = 0; a < idx.length; a += step) {
      const chunk = idx.slice(a, a + step);
      const boxes = new Float32Array(chunk.length * 4);
      const ind = new Int32Array(chunk.length);
      let needMask = false;
      chunk.forEach((r, k) => {
        const { ys, xs, image } = plans[r];
        boxes.set([
          (ys.first + PAD) / (Hp - 1),
          (xs.first + PAD) / (Wp - 1),
          (ys.last + PAD) / (Hp - 1),
          (xs.last + PAD) / (Wp - 1),
        ], k * 4);
        ind[k] = image;
        needMask ||= !ys.allValid || !xs.allValid;
      });
      parts.push(tf.tidy(() => {
        // A single box is sent twice: tfjs-webgpu misreads a one-element box index tensor.
        const k = Math.max(chunk.length, 2);
        const b4 = chunk.length > 1 ? boxes : Float32Array.of(...boxes, ...boxes);
        const bi = chunk.length > 1 ? ind : Int32Array.of(ind[0], ind[0]);
        let crops: tf.Tensor4D = tf.image.cropAndResize(
          fp,
          tf.tensor2d(b4, [k, 4]),
          tf.tensor1d(bi, "int32"),
          [ch, cw],
          "bilinear",
          0,
        );
        if (k > chunk.length) crops = tf.slice(crops, 0, chunk.length);
        if (needMask) {
          const mask = new Float32Array(chunk.length * ch * cw);
          chunk.forEach((r, k) => {
            const { ys, xs } = plans[r];
            for (let i = 0; i < ch; i++) {
              for (let j = 0; j < cw; j++) mask[(k * ch + i) * cw + j] = ys.valid[i] & xs.valid[j];
            }
          });
          crops = tf.mul(crops, tf.tensor4d(mask, [chunk.length, ch, cw, 1]));
        }
        return gy * gx > 1 ? tf.avgPool(crops, [gy, gx], [gy, gx], "valid") : crops;
      }));
      order.push(...chunk);
    }
  }
  const cat = parts.length === 1 ? parts[0] : tf.concat(parts, 0);
  if (order.every((r, k) => r === k)) return cat as tf.Tensor4D;
  const inverse = new Int32Array(R);
  order.forEach((r, k) => (inverse[r] = k));
  return tf.gather(cat, tf.tensor1d(inverse, "int32"), 0) as tf.Tensor4D;
}

function backwardTensor(
  dy: tf.Tensor4D,
  shapes: number[][],
  plans: BoxPlan[],
  oh: number,
  ow: number,
): tf.Tensor4D[] {
  return shapes.map(([N, H, W, C], level) => {
    const perImage: tf.Tensor[] = [];
    for (let n = 0; n < N; n++) {
      const idx: number[] = [];
      plans.forEach((pl, r) => {
        if (pl.level === level && pl.image === n && pl.ys.len > 0 && pl.xs.len > 0) idx.push(r);
      });
      let acc: tf.Tensor = tf.zeros([H, W * C]);
      const step = Math.max(1, Math.floor(CHUNK_ELEMENTS / (oh * W * C)));
      for (let a = 0; a < idx.length; a += step) {
        const chunk = idx.slice(a, a + step);
        const Rc = chunk.length;
        const contiguous = chunk.every((r, k) => r === chunk[0] + k);
        const next = tf.tidy(() => {
          const g = contiguous
            ? tf.slice(dy, [chunk[0], 0, 0, 0], [Rc, -1, -1, -1])
            : tf.gather(dy, tf.tensor1d(Int32Array.from(chunk), "int32"), 0);
          // BxT[(r, ph), x, pw] = Bx_r[pw, x]; ByT[y, (r, ph)] = By_r[ph, y].
          const bxT = new Float32Array(Rc * oh * W * ow);
          const byT = new Float32Array(H * Rc * oh);
          chunk.forEach((r, k) => {
            const { ys, xs } = plans[r];
            for (let ph = 0; ph < oh; ph++) {
              const base = (k * oh + ph) * W * ow;
              for (let pw = 0; pw < ow; pw++) {
                for (let j = 0; j < xs.len; j++) {
                  bxT[base + (xs.lo + j) * ow + pw] = xs.w[pw * xs.len + j];
                }
              }
              for (let j = 0; j < ys.len; j++) {
                byT[(ys.lo + j) * Rc * oh + k * oh + ph] = ys.w[ph * ys.len + j];
              }
            }
          });
          const v = tf.matMul(tf.tensor3d(bxT, [Rc * oh, W, ow]), tf.reshape(g, [Rc * oh, ow, C]));
          const byTt = tf.tensor2d(byT, [H, Rc * oh]);
          return tf.add(acc, tf.matMul(byTt, tf.reshape(v, [Rc * oh, W * C])));
        });
        acc.dispose();
        acc = next;
      }
      perImage.push(tf.reshape(acc, [1, H, W, C]));
    }
    return (perImage.length === 1 ? perImage[0] : tf.concat(perImage, 0)) as tf.Tensor4D;
  });
}

// ---------------------------------------------------------------------------------------------
// Shared driver.

interface PoolSpec {
  oh: number;
  ow: number;
  samplingRatio: number;
  aligned: boolean;
  engine: RoIAlignEngine;
}

/** Pools every box from its level's map; differentiable w.r.t. all maps (one customGrad). */
function pool(
  feats: tf.Tensor4D[],
  coords: Float32Array,
  images: Int32Array,
  levels: Int32Array,
  scales: number[],
  spec: PoolSpec,
): tf.Tensor4D {
  const shapes = feats.map((f) => f.shape.slice());
  const C = shapes[0][3];
  const { oh, ow } = spec;
  const geometry: PoolGeometry = {
    coords,
    images,
    levels,
    scales,
    shapes,
    oh,
    ow,
    samplingRatio: spec.samplingRatio,
    aligned: spec.aligned,
  };
  // Plans are made when first needed: a forward pass split between threads plans each thread's
  // own boxes there, in parallel.
  let planned: BoxPlan[] | null = null;
  const plans = (): BoxPlan[] => (planned ??= planAll(geometry));
  const R = images.length;
  const engine = spec.engine === "auto"
    ? (["cpu", "wasm"].includes(tf.getBackend()) ? "js" : "tensor")
    : spec.engine;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const inputs = args.slice(0, feats.length) as tf.Tensor4D[];
    let value: tf.Tensor4D;
    if (engine === "js") {
      const outShape = [R, oh, ow, C];
      const parallel = roiAlignThreads() > 1 && R * oh * ow * C >= PARALLEL_MIN_FLOATS;
      const scratch = parallel ? scratchBound(geometry) : scratchFloats(plans(), oh, C);
      const io = jsIo([outShape], scratch, parallel ? roiAlignThreads() : 1);
      try {
        const data = inputs.map((t) => io.read(t, "the features"));
        const [out] = io.outputs;
        if (parallel) {
          forwardParallel(data, geometry, C, out, io.heap);
        } else {
          forwardRange(data, shapes, plans(), oh, ow, C, out, 0, R, io.ax, io.scratch[0]);
        }
      } catch (e) {
        io.discard();
        throw e;
      } finally {
        io.release();
      }
      value = io.tensors()[0] as tf.Tensor4D;
    } else {
      value = forwardTensor(inputs, plans(), oh, ow, C);
    }
    const gradFunc = (dy: tf.Tensor4D): tf.Tensor[] => {
      if (engine === "tensor") return backwardTensor(dy, shapes, plans(), oh, ow);
      const parallel = roiAlignThreads() > 1 && dy.size >= PARALLEL_MIN_FLOATS;
      const io = jsIo(shapes, scratchFloats(plans(), oh, C), parallel ? roiAlignThreads() : 1);
      try {
        const G = io.read(dy, "the gradient");
        if (parallel) {
          backwardParallel(G, geometry, plans(), io.outputs, io.heap);
        } else {
          const all = shapes.map((sh) => [0, sh[1]] as [number, number]);
          backwardBand(G, shapes, plans(), oh, ow, io.outputs, all, io.ax, io.scratch[0]);
        }
      } catch (e) {
        io.discard();
        throw e;
      } finally {
        io.release();
      }
      return io.tensors();
    };
    return { value, gradFunc };
  });
  return op(...feats) as tf.Tensor4D;
}

/** The parts of tfjs-backend-wasm's backend the `js` engine uses to work on the heap. */
interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  disposeData(dataId: tf.DataId): boolean;
}

/**
 * Inputs, outputs and scratch of one `js` engine call. On `wasm` the outputs and `threads`
 * scratch arrays of `scratchFloats` are allocated on the wasm heap, every array is a view of it (no
 * copies; with the threaded build the heap is shared memory, which the worker threads use in
 * place), and `ax` is the wasm SIMD kernel (`axpy_wasm.ts`). Elsewhere inputs are read back,
 * outputs are new arrays, there is no scratch (the engine allocates its own) and `ax` is the
 * JavaScript loop; both give bitwise the same results. `outputs` holds one array per shape in
 * `outShapes`; `tensors()` wraps them, once written.
 */
function jsIo(outShapes: number[][], scratchFloats: number, threads: number): {
  read(t: tf.Tensor, what: string): Float32Array;
  outputs: Float32Array[];
  ax: Axpy;
  scratch: (Float32Array | undefined)[];
  /** The heap's memory and per-thread scratch, for the worker threads (`wasm` only). */
  heap?: HeapScratch;
  tensors(): tf.Tensor[];
  /** Frees the outputs (when the computation failed). */
  discard(): void;
  /** Frees the scratch (always, once the computation is over). */
  release(): void;
} {
  const size = (sh: number[]) => sh.reduce((a, b) => a * b, 1);
  if (tf.getBackend() === "wasm") {
    const heap = tf.backend() as unknown as WasmHeap;
    const memory = wasmBackendMemory(heap);
    const infos = outShapes.map((sh) => heap.makeOutput(sh, "float32"));
    const scratchInfos = Array.from(
      { length: threads },
      () => heap.makeOutput([Math.max(scratchFloats, 1)], "float32"),
    );
    // Views only after every allocation (a heap growth detaches earlier ones).
    const scratch = scratchInfos.map((i) => heap.typedArrayFromHeap(i));
    return {
      read: (t) => heap.typedArrayFromHeap(t),
      outputs: infos.map((i) => heap.typedArrayFromHeap(i)),
      ax: heapAxpy(axpyKernel(memory)),
      scratch,
      heap: { memory, scratch },
      tensors: () => infos.map((i) => tf.engine().makeTensorFromTensorInfo(i)),
      discard: () => infos.forEach((i) => heap.disposeData(i.dataId)),
      release: () => scratchInfos.forEach((i) => heap.disposeData(i.dataId)),
    };
  }
  const outputs = outShapes.map((sh) => new Float32Array(size(sh)));
  return {
    read: readSync,
    outputs,
    ax: axpyLoop,
    scratch: [undefined],
    tensors: () => outputs.map((o, k) => tf.tensor(o, outShapes[k], "float32")),
    discard: () => {},
    release: () => {},
  };
}

/** `dataSync` with an error that says what to do where synchronous reads are impossible. */
function readSync(t: tf.Tensor, what: string): Float32Array {
  try {
    return t.dataSync() as Float32Array;
  } catch (e) {
    throw new Error(
      `roiAlign: the 'js' engine cannot read ${what} synchronously on the '${tf.getBackend()}' ` +
        `backend (${(e as Error).message}); use engine 'tensor'`,
    );
  }
}

function outputHW(size: number | readonly [number, number] | undefined, where: string): number[] {
  const hw = size === undefined ? [7, 7] : typeof size === "number" ? [size, size] : [...size];
  if (hw.length !== 2 || hw.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new Error(`${where}: outputSize must be a positive integer or [h, w], got ${size}`);
  }
  return hw;
}

function checkFeatures(f: tf.Tensor, where: string): void {
  if (f.rank !== 4 || f.shape.slice(1, 3).some((d) => d < 1)) {
    throw new Error(`${where}: features must be a rank-4 NHWC tensor [N,H,W,C], got [${f.shape}]`);
  }
  if (f.dtype !== "float32") throw new Error(`${where}: features must be float32, got ${f.dtype}`);
}

function readRows(boxes: RoIBoxes, where: string): { data: Float32Array; cols: number } {
  if (boxes instanceof tf.Tensor) {
    if (boxes.rank !== 2 || (boxes.shape[1] !== 4 && boxes.shape[1] !== 5)) {
      throw new Error(`${where}: boxes must have shape [R, 4] or [R, 5], got [${boxes.shape}]`);
    }
    let data: Float32Array;
    try {
      data = Float32Array.from(boxes.dataSync());
    } catch (e) {
      throw new Error(
        `${where}: cannot read the boxes tensor synchronously on the '${tf.getBackend()}' backend ` +
          `(${(e as Error).message}); pass boxes as arrays or use the async variant`,
      );
    }
    return { data, cols: boxes.shape[1] };
  }
  const cols = boxes.length ? boxes[0].length : 4;
  if ((cols !== 4 && cols !== 5) || boxes.some((b) => b.length !== cols)) {
    throw new Error(
      `${where}: every box row must have 4 (x1,y1,x2,y2) or 5 (idx,x1,y1,x2,y2) values`,
    );
  }
  return { data: Float32Array.from(boxes.flat()), cols };
}

/**
 * RoIAlign of `boxes` (image coordinates, x1 y1 x2 y2) on an NHWC feature map, exactly as
 * `torchvision.ops.roi_align(input, rois, outputSize, spatialScale, samplingRatio, aligned)`
 * computes it, but in NHWC: the result is `[R, oh, ow, C]`. Differentiable w.r.t. `features`
 * on every backend (boxes get no gradient).
 *
 * Boxes of several images: pass `[R, 5]` rows `(batchIndex, x1, y1, x2, y2)` or `boxIndices`;
 * otherwise every box is pooled from image 0.
 *
 * @param features `[N, H, W, C]` float32 feature map
 * @param boxes `[R, 4]` or `[R, 5]` boxes
 * @param config output size (7), spatial scale (1), sampling ratio (2), aligned (false), ...
 * @returns `[R, oh, ow, C]` pooled features
 * @throws Error naming the argument on malformed shapes, scales or indices
 */
export function roiAlign(
  features: tf.Tensor4D,
  boxes: RoIBoxes,
  config: RoIAlignConfig = {},
): tf.Tensor4D {
  const where = "roiAlign";
  checkFeatures(features, where);
  const [oh, ow] = outputHW(config.outputSize, where);
  const scale = config.spatialScale ?? 1;
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new Error(`${where}: spatialScale must be a positive finite number, got ${scale}`);
  }
  const samplingRatio = config.samplingRatio ?? 2;
  if (!Number.isInteger(samplingRatio)) {
    throw new Error(`${where}: samplingRatio must be an integer, got ${samplingRatio}`);
  }
  const { data, cols } = readRows(boxes, where);
  const R = data.length / cols;
  const coords = new Float32Array(R * 4);
  const images = new Int32Array(R);
  let given: ArrayLike<number> | null = null;
  if (config.boxIndices !== undefined) {
    if (cols === 5) throw new Error(`${where}: boxIndices given together with [R, 5] boxes`);
    given = config.boxIndices instanceof tf.Tensor
      ? config.boxIndices.dataSync()
      : config.boxIndices;
    if (given.length !== R) {
      throw new Error(`${where}: boxIndices has ${given.length} entries for ${R} boxes`);
    }
  }
  for (let r = 0; r < R; r++) {
    coords.set(data.subarray(r * cols + cols - 4, r * cols + cols), r * 4);
    const b = cols === 5 ? data[r * 5] : given ? given[r] : 0;
    if (!Number.isInteger(b) || b < 0 || b >= features.shape[0]) {
      throw new Error(
        `${where}: box ${r} has batch index ${b}, features have ${features.shape[0]}`,
      );
    }
    images[r] = b;
  }
  if (coords.some((v) => !Number.isFinite(v))) {
    throw new Error(`${where}: boxes contain NaN or Infinity`);
  }
  return pool([features], coords, images, new Int32Array(R), [scale], {
    oh,
    ow,
    samplingRatio,
    aligned: config.aligned ?? false,
    engine: config.engine ?? "auto",
  });
}

/** Reads a boxes / indices tensor asynchronously (works where synchronous reads do not). */
async function rowsAsync(boxes: RoIBoxes): Promise<number[][]> {
  if (!(boxes instanceof tf.Tensor)) return boxes as number[][];
  if (boxes.rank !== 2) {
    throw new Error(`roiAlign: boxes must have shape [R, 4] or [R, 5], got [${boxes.shape}]`);
  }
  return await boxes.array();
}

/**
 * {@linkcode roiAlign} that reads box (and box index) tensors asynchronously: use it on the webgpu
 * backend, where tensors cannot be read synchronously in Deno.
 *
 * @param features `[N, H, W, C]` float32 feature map
 * @param boxes `[R, 4]` or `[R, 5]` boxes
 * @param config as for {@linkcode roiAlign}
 * @returns `[R, oh, ow, C]` pooled features
 */
export async function roiAlignAsync(
  features: tf.Tensor4D,
  boxes: RoIBoxes,
  config: RoIAlignConfig = {},
): Promise<tf.Tensor4D> {
  const rows = await rowsAsync(boxes);
  const idx = config.boxIndices instanceof tf.Tensor
    ? Array.from(await config.boxIndices.data())
    : config.boxIndices;
  return roiAlign(features, rows, { ...config, boxIndices: idx });
}

/**
 * torchvision's `_infer_scale`: `2 ** round(log2(featureSize / imageSize))` (float32 log2, rounding
 * half to even). torchvision uses the heights.
 *
 * @param featureSize feature map height
 * @param imageSize largest image height of the batch
 * @returns the inferred power-of-two spatial scale
 */
export function inferScale(featureSize: number, imageSize: number): number {
  const l = f32(Math.log2(f32(featureSize / imageSize)));
  let k = Math.round(l);
  if (k - l === 0.5 && k % 2 !== 0) k -= 1; // half to even
  return 2 ** k;
}

/**
 * torchvision's `LevelMapper` (FPN paper eq. 1): box -> pyramid level
 * `floor(canonicalLevel + log2(sqrt(area) / canonicalScale) + eps)`, clamped to `[kMin, kMax]`,
 * returned relative to `kMin`.
 */
export class LevelMapper {
  /**
   * Creates a mapper for levels `kMin..kMax`.
   * @param kMin finest level (`-log2(scale)` of the first map)
   * @param kMax coarsest level
   * @param canonicalScale box size that maps to `canonicalLevel` (224)
   * @param canonicalLevel level of a `canonicalScale` box (4)
   * @param eps added before the floor (1e-6)
   */
  constructor(
    readonly kMin: number,
    readonly kMax: number,
    readonly canonicalScale: number = 224,
    readonly canonicalLevel: number = 4,
    readonly eps: number = 1e-6,
  ) {}

  /**
   * Maps boxes to levels.
   * @param boxes flat `[R*4]` x1 y1 x2 y2
   * @returns level index (0 = finest) per box
   */
  levels(boxes: ArrayLike<number>): Int32Array {
    const out = new Int32Array(boxes.length / 4);
    for (let r = 0; r < out.length; r++) {
      const area = f32(
        f32(f32(boxes[r * 4 + 2]) - f32(boxes[r * 4])) *
          f32(f32(boxes[r * 4 + 3]) - f32(boxes[r * 4 + 1])),
      );
      const s = f32(Math.sqrt(area));
      const lv = f32(
        f32(this.canonicalLevel + f32(Math.log2(f32(s / f32(this.canonicalScale))))) +
          f32(this.eps),
      );
      const k = Math.min(Math.max(Math.floor(lv), this.kMin), this.kMax);
      out[r] = Number.isNaN(lv) ? 0 : k - this.kMin;
    }
    return out;
  }
}

/** Options of {@linkcode MultiScaleRoIAlign}. */
export interface MultiScaleRoIAlignConfig {
  /** Names of the feature maps to pool from, finest first (e.g. `["0"]`). */
  featmapNames: string[];
  /** Output size (7 for boxes, 14 for masks). */
  outputSize: number | readonly [number, number];
  /** Samples per bin and axis (2). */
  samplingRatio: number;
  /** LevelMapper canonical scale (224). */
  canonicalScale?: number;
  /** LevelMapper canonical level (4). */
  canonicalLevel?: number;
  /** Implementation, see {@linkcode RoIAlignEngine}. */
  engine?: RoIAlignEngine;
}

/**
 * torchvision's `MultiScaleRoIAlign`: pools per-image box lists from one or several named NHWC maps.
 * Spatial scales are inferred on the first call from the map heights and the largest image height
 * (`2 ** round(log2(featH / imageH))`) and cached, as torchvision does. With one map every box uses
 * it; with several, {@linkcode LevelMapper} assigns each box a level.
 */
export class MultiScaleRoIAlign {
  /** Inferred scales (null until the first call). */
  scales: number[] | null = null;
  /** Level mapper (null until the first call). */
  mapper: LevelMapper | null = null;
  private readonly outputSize: number[];

  /**
   * Creates the pooler; scales are inferred on the first call.
   * @param config map names, output size and sampling ratio
   */
  constructor(readonly config: MultiScaleRoIAlignConfig) {
    if (!config.featmapNames?.length) {
      throw new Error("MultiScaleRoIAlign: featmapNames must name at least one map");
    }
    this.outputSize = outputHW(config.outputSize, "MultiScaleRoIAlign");
  }

  /**
   * Infers and caches the scales (torchvision's `setup_scales`).
   * @param features maps in `featmapNames` order
   * @param imageShapes per-image `[height, width]` (unpadded, after resizing)
   */
  setupScales(features: tf.Tensor4D[], imageShapes: readonly (readonly number[])[]): void {
    const maxH = Math.max(...imageShapes.map((s) => s[0]));
    this.scales = features.map((f) => inferScale(f.shape[1], maxH));
    const lvlMin = -Math.log2(this.scales[0]);
    const lvlMax = -Math.log2(this.scales[this.scales.length - 1]);
    this.mapper = new LevelMapper(
      Math.trunc(lvlMin),
      Math.trunc(lvlMax),
      this.config.canonicalScale,
      this.config.canonicalLevel,
    );
  }

  /**
   * Pools the boxes of every image (torchvision's `forward`).
   * @param features NHWC maps by name; maps not in `featmapNames` are ignored
   * @param boxes per-image `[K_i, 4]` boxes in image coordinates
   * @param imageShapes per-image `[height, width]`
   * @returns `[ΣK_i, oh, ow, C]`, image 0's boxes first
   */
  forward(
    features: Record<string, tf.Tensor4D>,
    boxes: readonly RoIBoxes[],
    imageShapes: readonly (readonly number[])[],
  ): tf.Tensor4D {
    const where = "MultiScaleRoIAlign";
    const maps = this.config.featmapNames.map((name) => {
      const f = features[name];
      if (!f) throw new Error(`${where}: feature map '${name}' is missing`);
      checkFeatures(f, `${where} map '${name}'`);
      return f;
    });
    if (boxes.length !== imageShapes.length || boxes.length > maps[0].shape[0]) {
      throw new Error(
        `${where}: ${boxes.length} box lists, ${imageShapes.length} image shapes, ` +
          `${maps[0].shape[0]} images in the maps`,
      );
    }
    if (!this.scales) this.setupScales(maps, imageShapes);
    const lists = boxes.map((b, i) => {
      const { data, cols } = readRows(b, `${where} boxes[${i}]`);
      if (cols !== 4) throw new Error(`${where}: boxes[${i}] must be [K, 4]`);
      return data;
    });
    const R = lists.reduce((s, l) => s + l.length / 4, 0);
    const coords = new Float32Array(R * 4);
    const images = new Int32Array(R);
    let r = 0;
    lists.forEach((l, i) => {
      coords.set(l, r * 4);
      images.fill(i, r, r + l.length / 4);
      r += l.length / 4;
    });
    const levels = maps.length === 1 ? new Int32Array(R) : this.mapper!.levels(coords);
    const [oh, ow] = this.outputSize;
    return pool(maps, coords, images, levels, this.scales!, {
      oh,
      ow,
      samplingRatio: this.config.samplingRatio,
      aligned: false,
      engine: this.config.engine ?? "auto",
    });
  }

  /**
   * {@linkcode MultiScaleRoIAlign.forward} that reads box tensors asynchronously (for webgpu).
   * @param features NHWC maps by name
   * @param boxes per-image `[K_i, 4]` boxes in image coordinates
   * @param imageShapes per-image `[height, width]`
   * @returns `[ΣK_i, oh, ow, C]`
   */
  async forwardAsync(
    features: Record<string, tf.Tensor4D>,
    boxes: readonly RoIBoxes[],
    imageShapes: readonly (readonly number[])[],
  ): Promise<tf.Tensor4D> {
    const rows = await Promise.all(boxes.map(rowsAsync));
    return this.forward(features, rows, imageShapes);
  }
}
