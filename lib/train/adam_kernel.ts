/**
 * A fused Adam update kernel (`SsmAdamUpdate`) for the `wasm` and `cpu` backends.
 *
 * Written with tfjs ops, one Adam update is about a dozen element-wise kernels per parameter,
 * each allocating and sweeping a parameter-sized buffer; on `wasm` that costs ~15 ns per
 * parameter and update (about 0.27 s per training iteration of a 9M-parameter model, more than
 * its whole backbone forward pass at 96 px). This kernel does the update in one pass over the
 * backend's own memory: on `wasm` a WebAssembly SIMD kernel on the heap (`adam_wasm.ts`), on `cpu`
 * a JavaScript loop over its typed arrays, with bitwise the same results. It computes each element in float64 and rounds once, so its results equal the
 * composed float32 ops up to rounding (a few ulps). Backends without it (`webgpu`, the native
 * TensorFlow backends) keep the composed ops: see {@linkcode fusedAdamAvailable}.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { fusedAdamAvailable, fusedAdamUpdate } from "./adam_kernel.ts";
 * if (fusedAdamAvailable()) {
 *   const { param, m, v } = fusedAdamUpdate(tf.ones([3]), tf.ones([3]), tf.zeros([3]), tf.zeros([3]), {
 *     lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, step: 1,
 *   });
 * }
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type AdamKernel, adamKernel } from "./adam_wasm.ts";
import { wasmBackendMemory } from "../wasm_asm.ts";

/** Name of the fused kernel. */
export const ADAM_KERNEL = "SsmAdamUpdate";

/** Hyper-parameters of one fused update (`step` is the parameter's step count after it). */
export interface FusedAdamAttrs {
  /** Learning rate. */
  lr: number;
  /** β₁. */
  beta1: number;
  /** β₂. */
  beta2: number;
  /** ε. */
  eps: number;
  /** L2 weight decay added to the gradient. */
  weightDecay: number;
  /** Step count including this update (≥ 1), for the bias corrections. */
  step: number;
}

type Info = tf.TensorInfo;

/**
 * The update itself: reads `p, g, m, v`, writes `pOut, mOut, vOut` (which may not alias the
 * inputs). PyTorch's `Adam`: `g += wd·p; m = β₁m + (1-β₁)g; v = β₂v + (1-β₂)g²;
 * p -= lr/(1-β₁ᵗ) · m / (√v/√(1-β₂ᵗ) + ε)`. With `kernel` (`adam_wasm.ts`; every array a view of
 * its memory) the update runs there, with bitwise the same results.
 */
export function adamUpdateArrays(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  pOut: Float32Array,
  mOut: Float32Array,
  vOut: Float32Array,
  a: FusedAdamAttrs,
  kernel?: AdamKernel,
): void {
  const { beta1, beta2, eps, weightDecay } = a;
  const c1 = 1 - beta1, c2 = 1 - beta2;
  const stepSize = a.lr / (1 - beta1 ** a.step);
  const rootBc2 = Math.sqrt(1 - beta2 ** a.step);
  const n = p.length;
  let start = 0;
  if (kernel) {
    // Pairs of parameters in the SIMD kernel (arrays on its memory), an odd last one below.
    const pairs = n >> 1;
    const at = [p, g, m, v, pOut, mOut, vOut].map((t) => t.byteOffset);
    kernel(...at, pairs, weightDecay, beta1, c1, beta2, c2, stepSize, rootBc2, eps);
    start = 2 * pairs;
  }
  for (let i = start; i < n; i++) {
    const pi = p[i];
    const gi = g[i] + weightDecay * pi;
    const mi = beta1 * m[i] + c1 * gi;
    const vi = beta2 * v[i] + c2 * gi * gi;
    mOut[i] = mi;
    vOut[i] = vi;
    pOut[i] = pi - stepSize * mi / (Math.sqrt(vi) / rootBc2 + eps);
  }
}

interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): Info;
  typedArrayFromHeap(t: Info): Float32Array;
}

interface CpuBackendLike {
  data: { get(id: tf.DataId): { values: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): Info;
}

interface Inputs {
  param: Info;
  grad: Info;
  m: Info;
  v: Info;
}

function checkInputs({ param, grad, m, v }: Inputs): void {
  for (const [name, t] of [["grad", grad], ["m", m], ["v", v]] as const) {
    if (t.shape.length !== param.shape.length || t.shape.some((d, i) => d !== param.shape[i])) {
      throw new Error(
        `${ADAM_KERNEL}: ${name} shape [${t.shape}] differs from the parameter's [${param.shape}]`,
      );
    }
  }
  for (const t of [param, grad, m, v]) {
    if (t.dtype !== "float32") {
      throw new Error(`${ADAM_KERNEL}: float32 tensors only, got ${t.dtype}`);
    }
  }
}

function wasmKernel(args: { inputs: unknown; backend: unknown; attrs?: unknown }): Info[] {
  const inputs = args.inputs as Inputs;
  checkInputs(inputs);
  const b = args.backend as WasmBackendLike;
  const shape = inputs.param.shape;
  const outs = [
    b.makeOutput(shape, "float32"),
    b.makeOutput(shape, "float32"),
    b.makeOutput(
      shape,
      "float32",
    ),
  ];
  // Views are taken after every allocation: a heap growth would detach earlier ones.
  const [p, g, m, v] = [inputs.param, inputs.grad, inputs.m, inputs.v].map((t) =>
    b.typedArrayFromHeap(t)
  );
  const [pOut, mOut, vOut] = outs.map((t) => b.typedArrayFromHeap(t));
  const kernel = adamKernel(wasmBackendMemory(args.backend));
  adamUpdateArrays(p, g, m, v, pOut, mOut, vOut, args.attrs as unknown as FusedAdamAttrs, kernel);
  return outs;
}

function cpuKernel(args: { inputs: unknown; backend: unknown; attrs?: unknown }): Info[] {
  const inputs = args.inputs as Inputs;
  checkInputs(inputs);
  const b = args.backend as CpuBackendLike;
  const [p, g, m, v] = [inputs.param, inputs.grad, inputs.m, inputs.v].map((t) =>
    b.data.get(t.dataId).values as Float32Array
  );
  const n = p.length;
  const pOut = new Float32Array(n), mOut = new Float32Array(n), vOut = new Float32Array(n);
  adamUpdateArrays(p, g, m, v, pOut, mOut, vOut, args.attrs as unknown as FusedAdamAttrs);
  const shape = inputs.param.shape;
  return [pOut, mOut, vOut].map((a) => b.makeTensorInfo(shape, "float32", a));
}

/** Backends the fused kernel is registered for. */
export const FUSED_ADAM_BACKENDS: readonly string[] = ["wasm", "cpu"];

for (const [backendName, kernelFunc] of [["wasm", wasmKernel], ["cpu", cpuKernel]] as const) {
  if (!tf.getKernel(ADAM_KERNEL, backendName)) {
    tf.registerKernel({
      kernelName: ADAM_KERNEL,
      backendName,
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
    });
  }
}

/** True when the active backend has the fused update kernel. */
export function fusedAdamAvailable(): boolean {
  return tf.getKernel(ADAM_KERNEL, tf.getBackend()) !== undefined;
}

/**
 * One fused Adam update on the active backend: returns the new `param`, `m` and `v` (the inputs
 * are left as they are). Throws when the backend has no fused kernel.
 */
export function fusedAdamUpdate(
  param: tf.Tensor,
  grad: tf.Tensor,
  m: tf.Tensor,
  v: tf.Tensor,
  attrs: FusedAdamAttrs,
): { param: tf.Tensor; m: tf.Tensor; v: tf.Tensor } {
  if (!fusedAdamAvailable()) {
    throw new Error(`${ADAM_KERNEL}: no fused kernel for backend '${tf.getBackend()}'`);
  }
  const out = tf.engine().runKernel(
    ADAM_KERNEL,
    { param, grad, m, v } as unknown as tf.NamedTensorMap,
    attrs as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  return { param: out[0], m: out[1], v: out[2] };
}
