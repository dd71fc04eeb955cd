/**
 * Fused training-mode batch norm for the `wasm` and `cpu` backends.
 *
 * Written with tfjs ops, a training-mode `BatchNorm2d` is about eight element-wise kernels and
 * two reductions forward and roughly twice that backward, each a full pass over the activation;
 * in the ResNet backbone at 512 px that is a large share of the segmentation step. Two kernels
 * replace them where the backend exposes its memory to JavaScript:
 *
 * - `SsmBatchNormTrain` (`x`, `weight`, `bias` → `y`, `mean`, `variance`): per-channel mean and
 *   biased variance of an NHWC tensor over `N·H·W` (two passes, float64 accumulators), then
 *   `y = (x − mean) / √(variance + ε) · weight + bias`, optionally followed by a ReLU;
 * - its registered gradient, the exact gradient of that expression with the statistics depending
 *   on `x` (`M = N·H·W`, `x̂ = (x − mean)/σ`): `SsmBatchNormTrainGradInput` computes
 *   `dx = weight/σ · (dy − Σdy/M − x̂·Σ(dy·x̂)/M)` (two passes), `SsmBatchNormTrainGradWeight`
 *   `Σ dy·x̂` and `SsmChannelSum` `Σ dy` (one pass each). Only the gradients the tape needs run.
 *
 * The kernel's inputs and statistics are kept for the backward pass by reference (no copies).
 * Results equal the composed ops up to float32 rounding (the tests compare both on fresh random
 * inputs, on `wasm` and `cpu`).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { batchNormTrain, fusedBatchNormAvailable } from "./batch_norm_kernel.ts";
 * const x = tf.randomNormal([1, 4, 4, 3]) as tf.Tensor4D;
 * if (fusedBatchNormAvailable()) {
 *   const { y, mean, variance } = batchNormTrain(x, tf.ones([3]), tf.zeros([3]), 1e-5);
 * }
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BatchNormLoops, jsLoops, wasmLoops } from "./batch_norm_loops.ts";
import { wasmBackendMemory } from "../wasm_asm.ts";

/** Forward kernel name. */
export const BN_TRAIN_KERNEL = "SsmBatchNormTrain";
/** Input-gradient kernel name. */
export const BN_GRAD_INPUT_KERNEL = "SsmBatchNormTrainGradInput";
/** Weight-gradient kernel name. */
export const BN_GRAD_WEIGHT_KERNEL = "SsmBatchNormTrainGradWeight";
/** Per-channel sum kernel name (the bias gradient). */
export const CHANNEL_SUM_KERNEL = "SsmChannelSum";

type Info = tf.TensorInfo;

/**
 * Memory access of one backend: typed-array views of tensors, output allocation, float64 scratch
 * (zeroed; on the heap for the wasm kernels) and the passes over the data for `C` channels.
 * Views are taken only after every allocation of a kernel (a wasm heap growth detaches earlier
 * ones).
 */
interface Memory {
  read(t: Info): Float32Array;
  alloc(shape: number[]): { info: Info; data: () => Float32Array };
  f64(n: number): { data: () => Float64Array; free(): void };
  loops(C: number): BatchNormLoops;
}

function wasmMemory(backend: unknown): Memory {
  const b = backend as {
    makeOutput(shape: number[], dtype: tf.DataType): Info;
    typedArrayFromHeap(t: Info): Float32Array;
    disposeData(dataId: tf.DataId): boolean;
  };
  return {
    read: (t) => b.typedArrayFromHeap(t),
    alloc: (shape) => {
      const info = b.makeOutput(shape, "float32");
      return { info, data: () => b.typedArrayFromHeap(info) };
    },
    f64: (n) => {
      // One float32 more than needed, to start on an 8-byte boundary.
      const info = b.makeOutput([2 * n + 1], "float32");
      return {
        data: () => {
          const v = b.typedArrayFromHeap(info);
          const at = v.byteOffset % 8 === 0 ? v.byteOffset : v.byteOffset + 4;
          return new Float64Array(v.buffer, at, n).fill(0);
        },
        free: () => void b.disposeData(info.dataId),
      };
    },
    // The SIMD kernels take channel pairs; an odd count takes the (equal) JavaScript loops.
    loops: (C) => (C % 2 === 0 ? wasmLoops(wasmBackendMemory(backend)) : jsLoops),
  };
}

function cpuMemory(backend: unknown): Memory {
  const b = backend as {
    data: { get(id: tf.DataId): { values: unknown } };
    makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): Info;
  };
  return {
    read: (t) => b.data.get(t.dataId).values as Float32Array,
    alloc: (shape) => {
      const values = new Float32Array(shape.reduce((a, d) => a * d, 1));
      return { info: b.makeTensorInfo(shape, "float32", values), data: () => values };
    },
    f64: (n) => {
      const values = new Float64Array(n);
      return { data: () => values, free: () => {} };
    },
    loops: () => jsLoops,
  };
}

function checkFloat(kernel: string, ts: Record<string, Info>): void {
  for (const [name, t] of Object.entries(ts)) {
    if (t.dtype !== "float32") {
      throw new Error(`${kernel}: ${name} must be float32, got ${t.dtype}`);
    }
  }
}

function channelsOf(kernel: string, x: Info, vectors: Record<string, Info>): number {
  if (x.shape.length !== 4) throw new Error(`${kernel}: x must be NHWC, got shape [${x.shape}]`);
  const c = x.shape[3];
  for (const [name, t] of Object.entries(vectors)) {
    if (t.shape.length !== 1 || t.shape[0] !== c) {
      throw new Error(`${kernel}: ${name} must have shape [${c}], got [${t.shape}]`);
    }
  }
  return c;
}

function forwardKernel(mem: (b: unknown) => Memory) {
  return (args: { inputs: unknown; backend: unknown; attrs?: unknown }): Info[] => {
    const { x, weight, bias } = args.inputs as { x: Info; weight: Info; bias: Info };
    checkFloat(BN_TRAIN_KERNEL, { x, weight, bias });
    const C = channelsOf(BN_TRAIN_KERNEL, x, { weight, bias });
    const { eps, relu } = args.attrs as { eps: number; relu?: boolean };
    const m = mem(args.backend);
    const y = m.alloc(x.shape), meanT = m.alloc([C]), varT = m.alloc([C]);
    const scratch = m.f64(5 * C);
    try {
      // Views after every allocation (a wasm heap growth detaches earlier ones).
      const X = m.read(x), W = m.read(weight), B = m.read(bias);
      const Y = y.data(), MEAN = meanT.data(), VAR = varT.data();
      const F = scratch.data();
      const [sum, mean, sq, scale, shift] = [0, 1, 2, 3, 4].map((k) =>
        F.subarray(k * C, (k + 1) * C)
      );
      const n = X.length / C;
      const loops = m.loops(C);
      loops.sums(X, null, C, sum);
      for (let c = 0; c < C; c++) mean[c] = sum[c] / n;
      loops.squaredDeviations(X, mean, C, sq);
      for (let c = 0; c < C; c++) {
        const variance = n > 0 ? sq[c] / n : 0;
        MEAN[c] = mean[c];
        VAR[c] = variance;
        scale[c] = W[c] / Math.sqrt(variance + eps);
        shift[c] = B[c] - mean[c] * scale[c];
      }
      loops.affine(X, Y, C, scale, shift, !!relu);
    } finally {
      scratch.free();
    }
    return [y.info, meanT.info, varT.info];
  };
}

interface GradInputs {
  dy: Info;
  x: Info;
  mean: Info;
  variance: Info;
  weight?: Info;
  /** The forward output when a ReLU was fused: gradients pass only where it is positive. */
  y?: Info;
}

/** Checks the backward inputs and returns the channel count. */
function gradChannels(kernel: string, ins: GradInputs): number {
  const { dy, x, mean, variance, weight } = ins;
  checkFloat(kernel, { dy, x, mean, variance, ...(weight ? { weight } : {}) });
  const C = channelsOf(kernel, x, { mean, variance, ...(weight ? { weight } : {}) });
  if (dy.shape.join() !== x.shape.join()) {
    throw new Error(`${kernel}: dy shape [${dy.shape}] differs from x [${x.shape}]`);
  }
  return C;
}

/**
 * The last reduction of Σ dy and Σ dy·x̂ per channel (float64; masked by the fused ReLU's `Y > 0`), keyed by the identities of the tensors it read
 * (tensor data is immutable and every tensor has its own data id). The three gradient kernels of
 * one batch-norm backward run one after the other on the same `dy`, so the second and the third
 * reuse the first one's pass over the data instead of repeating it.
 */
let lastReduction: {
  dy: tf.DataId;
  y: tf.DataId | null;
  x: tf.DataId;
  mean: tf.DataId;
  variance: tf.DataId;
  eps: number;
  db: Float64Array;
  dw: Float64Array;
} | null = null;

/** Σ dy and Σ dy·x̂ of a backward's inputs, shared between its gradient kernels. */
function sharedReduction(
  m: Memory,
  ins: GradInputs,
  eps: number,
  C: number,
): { db: Float64Array; dw: Float64Array; inv: Float64Array } {
  const y = ins.y ? ins.y.dataId : null;
  const r = lastReduction;
  if (
    r && r.dy === ins.dy.dataId && r.y === y && r.x === ins.x.dataId &&
    r.mean === ins.mean.dataId && r.variance === ins.variance.dataId && r.eps === eps
  ) {
    return { db: r.db, dw: r.dw, inv: invStd(m.read(ins.variance), eps) };
  }
  const scratch = m.f64(3 * C);
  let db: Float64Array, dw: Float64Array, inv: Float64Array;
  try {
    const F = scratch.data();
    inv = F.subarray(0, C);
    inv.set(invStd(m.read(ins.variance), eps));
    const X = m.read(ins.x), MEAN = m.read(ins.mean), G = m.read(ins.dy);
    const Y = ins.y ? m.read(ins.y) : null;
    m.loops(C).gradSums(G, Y, X, MEAN, inv, C, F.subarray(C, 2 * C), F.subarray(2 * C));
    // Copies: the scratch is freed.
    inv = inv.slice();
    db = F.slice(C, 2 * C);
    dw = F.slice(2 * C, 3 * C);
  } finally {
    scratch.free();
  }
  lastReduction = {
    dy: ins.dy.dataId,
    y,
    x: ins.x.dataId,
    mean: ins.mean.dataId,
    variance: ins.variance.dataId,
    eps,
    db,
    dw,
  };
  return { db, dw, inv };
}

function invStd(VAR: Float32Array, eps: number): Float64Array {
  return Float64Array.from(VAR, (v) => 1 / Math.sqrt(v + eps));
}

function gradInputKernel(mem: (b: unknown) => Memory) {
  return (args: { inputs: unknown; backend: unknown; attrs?: unknown }): Info => {
    const ins = args.inputs as GradInputs;
    if (!ins.weight) throw new Error(`${BN_GRAD_INPUT_KERNEL}: weight is required`);
    const C = gradChannels(BN_GRAD_INPUT_KERNEL, ins);
    const eps = (args.attrs as { eps: number }).eps;
    const m = mem(args.backend);
    const dx = m.alloc(ins.x.shape);
    const scratch = m.f64(3 * C);
    try {
      const { db, dw, inv } = sharedReduction(m, ins, eps, C);
      // Views after the allocations (a wasm heap growth detaches earlier ones).
      const X = m.read(ins.x), MEAN = m.read(ins.mean), G = m.read(ins.dy);
      const Y = ins.y ? m.read(ins.y) : null;
      const W = m.read(ins.weight);
      const F = scratch.data();
      const n = X.length / C;
      // dx = k·dy − k·db/n − k·x̂·dw/n with x̂ = (x − mean)·inv, i.e. dx = k·dy + a·x + b.
      const [k, a, b] = [0, 1, 2].map((i) => F.subarray(i * C, (i + 1) * C));
      for (let c = 0; c < C; c++) {
        k[c] = W[c] * inv[c];
        a[c] = -k[c] * inv[c] * dw[c] / n;
        b[c] = -k[c] * db[c] / n - a[c] * MEAN[c];
      }
      m.loops(C).gradInput(G, Y, X, C, k, a, b, dx.data());
    } finally {
      scratch.free();
    }
    return dx.info;
  };
}

function gradWeightKernel(mem: (b: unknown) => Memory) {
  return (args: { inputs: unknown; backend: unknown; attrs?: unknown }): Info => {
    const ins = args.inputs as GradInputs;
    const C = gradChannels(BN_GRAD_WEIGHT_KERNEL, ins);
    const eps = (args.attrs as { eps: number }).eps;
    const m = mem(args.backend);
    const out = m.alloc([C]);
    const { dw } = sharedReduction(m, ins, eps, C);
    out.data().set(dw);
    return out.info;
  };
}

function channelSumKernel(mem: (b: unknown) => Memory) {
  return (args: { inputs: unknown; backend: unknown }): Info => {
    const { x, y } = args.inputs as { x: Info; y?: Info };
    checkFloat(CHANNEL_SUM_KERNEL, { x, ...(y ? { y } : {}) });
    const C = x.shape[x.shape.length - 1] ?? 1;
    const m = mem(args.backend);
    const out = m.alloc([C]);
    // The bias gradient of a batch-norm backward: Σ dy is already in the shared reduction.
    const r = lastReduction;
    if (r && r.dy === x.dataId && r.y === (y ? y.dataId : null) && r.db.length === C) {
      out.data().set(r.db);
      return out.info;
    }
    const scratch = m.f64(C);
    try {
      const sum = scratch.data();
      const X = m.read(x), Y = y ? m.read(y) : null;
      // Per pixel row of C values (any rank: C is the last dimension).
      m.loops(C).sums(X, Y, C, sum);
      out.data().set(sum);
    } finally {
      scratch.free();
    }
    return out.info;
  };
}

/** Backends the fused kernels are registered for. */
export const FUSED_BATCH_NORM_BACKENDS: readonly string[] = ["wasm", "cpu"];

for (const [backendName, mem] of [["wasm", wasmMemory], ["cpu", cpuMemory]] as const) {
  for (
    const [kernelName, make] of [
      [BN_TRAIN_KERNEL, forwardKernel],
      [BN_GRAD_INPUT_KERNEL, gradInputKernel],
      [BN_GRAD_WEIGHT_KERNEL, gradWeightKernel],
      [CHANNEL_SUM_KERNEL, channelSumKernel],
    ] as const
  ) {
    if (!tf.getKernel(kernelName, backendName)) {
      tf.registerKernel({
        kernelName,
        backendName,
        kernelFunc: make(mem) as unknown as tf.KernelFunc,
      });
    }
  }
}

if (!tf.getGradient(BN_TRAIN_KERNEL)) {
  tf.registerGradient({
    kernelName: BN_TRAIN_KERNEL,
    inputsToSave: ["x", "weight"],
    outputsToSave: [true, true, true],
    gradFunc: (dys: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs?: tf.NamedAttrMap) => {
      const dy = Array.isArray(dys) ? dys[0] : dys;
      const [x, weight, out, mean, variance] = saved;
      const mask = attrs?.relu ? { y: out } : {};
      const engine = tf.engine();
      const grad = (name: string, inputs: Record<string, tf.Tensor>) => () =>
        engine.runKernel(name, { ...inputs, ...mask } as tf.NamedTensorMap, {
          eps: attrs?.eps ?? 0,
        }) as tf.Tensor;
      return {
        x: grad(BN_GRAD_INPUT_KERNEL, { dy, x, mean, variance, weight }),
        weight: grad(BN_GRAD_WEIGHT_KERNEL, { dy, x, mean, variance }),
        bias: grad(CHANNEL_SUM_KERNEL, { x: dy }),
      };
    },
  });
}

/** True when the active backend has the fused training-mode batch-norm kernels. */
export function fusedBatchNormAvailable(): boolean {
  const b = tf.getBackend();
  return [BN_TRAIN_KERNEL, BN_GRAD_INPUT_KERNEL, BN_GRAD_WEIGHT_KERNEL, CHANNEL_SUM_KERNEL].every(
    (k) => tf.getKernel(k, b) !== undefined,
  );
}

/** Output of {@linkcode batchNormTrain}. */
export interface BatchNormTrainOutput {
  /** Normalised, scaled and shifted input. */
  y: tf.Tensor4D;
  /** Per-channel batch mean (not differentiable). */
  mean: tf.Tensor1D;
  /** Per-channel biased batch variance (not differentiable). */
  variance: tf.Tensor1D;
}

/**
 * Training-mode batch norm of an NHWC tensor with the fused kernels: `y` is differentiable with
 * respect to `x`, `weight` and `bias`; `mean` and `variance` are the batch statistics (for the
 * running averages; no gradient flows through them). With `activation` `"relu"` the output is
 * `max(0, y)` and the gradient is masked accordingly (one pass less each way). The caller
 * disposes all three. Throws when the active backend has no fused kernels.
 */
export function batchNormTrain(
  x: tf.Tensor4D,
  weight: tf.Tensor,
  bias: tf.Tensor,
  eps: number,
  activation: "linear" | "relu" = "linear",
): BatchNormTrainOutput {
  if (!fusedBatchNormAvailable()) {
    throw new Error(`${BN_TRAIN_KERNEL}: no fused kernel for backend '${tf.getBackend()}'`);
  }
  const [y, mean, variance] = tf.engine().runKernel(
    BN_TRAIN_KERNEL,
    { x, weight, bias } as unknown as tf.NamedTensorMap,
    { eps, relu: activation === "relu" } as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
