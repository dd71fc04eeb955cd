/**
 * The fused Adam update (`adam_kernel.ts`) as a WebAssembly SIMD kernel on the wasm backend's
 * heap: two parameters per `f64x2` vector, every operation the same float64 operation in the same
 * order as the JavaScript loop (`adamUpdateArrays`), each result rounded to float32 once when
 * stored, so both give bitwise the same parameters and moments.
 *
 * @example
 * ```ts
 * import { adamKernel } from "./adam_wasm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const adam = adamKernel(memory);
 * // adam(p, g, m, v, pOut, mOut, vOut, pairs, wd, beta1, c1, beta2, c2, stepSize, rootBc2, eps)
 * ```
 *
 * @module
 */
import { Fn, instantiateOn, op, wasmModule } from "../wasm_asm.ts";

/**
 * `(p, g, m, v, pOut, mOut, vOut, pairs, weightDecay, beta1, 1-β₁, beta2, 1-β₂, stepSize,
 * √(1-β₂ᵗ), eps)`: updates `2 * pairs` float32 parameters; the first seven are byte addresses.
 */
export type AdamKernel = (...args: number[]) => void;

const ARRAYS = ["p", "g", "m", "v", "pOut", "mOut", "vOut"];
const SCALARS = ["wd", "beta1", "c1", "beta2", "c2", "stepSize", "rootBc2", "eps"];

function adamFn(): Fn {
  const params: Record<string, "i32" | "f64"> = {};
  for (const a of ARRAYS) params[a] = "i32";
  params.pairs = "i32";
  for (const s of SCALARS) params[s] = "f64";
  const f = new Fn("adam", params);
  f.local("end", "i32");
  for (const s of SCALARS) f.local(`${s}V`, "v128");
  for (const l of ["pi", "gi", "mi", "vi"]) f.local(l, "v128");
  for (const s of SCALARS) f.emit(f.get(s), op.f64x2Splat, f.set(`${s}V`));
  f.emit(f.get("p"), f.get("pairs"), op.i32Const(3), op.i32Shl, op.i32Add, f.set("end"));
  const pair = (ptr: string) => [
    ...f.get(ptr),
    ...op.v128Load64Zero(2),
    ...op.f64x2PromoteLowF32x4,
  ];
  const store = (ptr: string, value: string) =>
    f.emit(f.get(ptr), f.get(value), op.f32x4DemoteF64x2Zero, op.v128Store64Lane0(2));
  const V = (s: string) => f.get(`${s}V`);
  f.whileBelow("p", "end", () => {
    f.emit(pair("p"), f.set("pi"));
    // gi = g + wd * pi
    f.emit(pair("g"), V("wd"), f.get("pi"), op.f64x2Mul, op.f64x2Add, f.set("gi"));
    // mi = beta1 * m + c1 * gi
    f.emit(V("beta1"), pair("m"), op.f64x2Mul, V("c1"), f.get("gi"), op.f64x2Mul, op.f64x2Add);
    f.emit(f.set("mi"));
    // vi = beta2 * v + (c2 * gi) * gi
    f.emit(V("beta2"), pair("v"), op.f64x2Mul, V("c2"), f.get("gi"), op.f64x2Mul, f.get("gi"));
    f.emit(op.f64x2Mul, op.f64x2Add, f.set("vi"));
    store("mOut", "mi");
    store("vOut", "vi");
    // pOut = pi - (stepSize * mi) / (sqrt(vi) / rootBc2 + eps)
    f.emit(f.get("pOut"), f.get("pi"), V("stepSize"), f.get("mi"), op.f64x2Mul);
    f.emit(f.get("vi"), op.f64x2Sqrt, V("rootBc2"), op.f64x2Div, V("eps"), op.f64x2Add);
    f.emit(op.f64x2Div, op.f64x2Sub, op.f32x4DemoteF64x2Zero, op.v128Store64Lane0(2));
    for (const a of ARRAYS) f.emit(f.advance(a, 8));
  });
  return f;
}

/** The module's bytes for a shared or an ordinary memory (exports `adam`). */
export function adamModuleBytes(shared: boolean): Uint8Array {
  return wasmModule([adamFn()], shared);
}

/** The Adam kernel on `memory` (instantiated once per memory). */
export function adamKernel(memory: WebAssembly.Memory): AdamKernel {
  return instantiateOn(memory, "adam", adamModuleBytes).adam as AdamKernel;
}
