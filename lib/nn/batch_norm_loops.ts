/**
 * The passes over the data of the fused batch-norm kernels (`batch_norm_kernel.ts`), in two
 * implementations that give bitwise the same results:
 *
 * - {@linkcode jsLoops}: JavaScript loops over `Float32Array`s with float64 per-channel
 *   accumulators and float64 arithmetic, rounded to float32 when stored (the `cpu` backend's);
 * - {@linkcode wasmLoops}: the same arithmetic as WebAssembly SIMD kernels on the wasm backend's
 *   heap, two channels per `f64x2` vector. Each channel still accumulates its pixels one after
 *   the other in float64, and every product and sum is a separate float64 operation, so nothing
 *   is reordered or fused. They need every array to be a view of that heap and an even channel
 *   count.
 *
 * Data is NHWC, flattened: `X.length / C` pixels of `C` channels. `Y` is the forward output of a
 * fused ReLU; with it, gradients count only where `Y > 0`.
 *
 * @example
 * ```ts
 * import { jsLoops } from "./batch_norm_loops.ts";
 * const sum = new Float64Array(2);
 * jsLoops.sums(Float32Array.of(1, 2, 3, 4), null, 2, sum); // sum = [4, 6]
 * ```
 *
 * @module
 */
import { Fn, instantiateOn, op, wasmModule } from "../wasm_asm.ts";

/** The batch-norm passes (accumulators must be zero on entry). */
export interface BatchNormLoops {
  /** `acc[c] += x` over pixels (only where `Y > 0` when `Y` is given). */
  sums(X: Float32Array, Y: Float32Array | null, C: number, acc: Float64Array): void;
  /** `acc[c] += (x − mean[c])²` over pixels. */
  squaredDeviations(X: Float32Array, mean: Float64Array, C: number, acc: Float64Array): void;
  /** `out = x · scale[c] + shift[c]`, then `max(·, 0)` when `relu`. */
  affine(
    X: Float32Array,
    out: Float32Array,
    C: number,
    scale: Float64Array,
    shift: Float64Array,
    relu: boolean,
  ): void;
  /** `db[c] += g`, `dw[c] += g · (x − mean[c]) · inv[c]`, with `g = dy` masked by `Y > 0`. */
  gradSums(
    G: Float32Array,
    Y: Float32Array | null,
    X: Float32Array,
    mean: Float32Array,
    inv: Float64Array,
    C: number,
    db: Float64Array,
    dw: Float64Array,
  ): void;
  /** `dx = k[c] · g + a[c] · x + b[c]`, with `g = dy` masked by `Y > 0`. */
  gradInput(
    G: Float32Array,
    Y: Float32Array | null,
    X: Float32Array,
    C: number,
    k: Float64Array,
    a: Float64Array,
    b: Float64Array,
    DX: Float32Array,
  ): void;
}

/** The JavaScript passes. */
export const jsLoops: BatchNormLoops = {
  sums(X, Y, C, acc) {
    for (let i = 0; i < X.length; i += C) {
      for (let c = 0; c < C; c++) if (!Y || Y[i + c] > 0) acc[c] += X[i + c];
    }
  },
  squaredDeviations(X, mean, C, acc) {
    for (let i = 0; i < X.length; i += C) {
      for (let c = 0; c < C; c++) {
        const d = X[i + c] - mean[c];
        acc[c] += d * d;
      }
    }
  },
  affine(X, out, C, scale, shift, relu) {
    for (let i = 0; i < X.length; i += C) {
      for (let c = 0; c < C; c++) {
        const v = X[i + c] * scale[c] + shift[c];
        out[i + c] = !relu || v > 0 ? v : 0;
      }
    }
  },
  gradSums(G, Y, X, mean, inv, C, db, dw) {
    for (let i = 0; i < X.length; i += C) {
      for (let c = 0; c < C; c++) {
        const g = Y && !(Y[i + c] > 0) ? 0 : G[i + c];
        db[c] += g;
        dw[c] += g * (X[i + c] - mean[c]) * inv[c];
      }
    }
  },
  gradInput(G, Y, X, C, k, a, b, DX) {
    for (let i = 0; i < X.length; i += C) {
      for (let c = 0; c < C; c++) {
        const g = Y && !(Y[i + c] > 0) ? 0 : G[i + c];
        DX[i + c] = k[c] * g + a[c] * X[i + c] + b[c];
      }
    }
  },
};

// ---------------------------------------------------------------------------------------------
// The SIMD kernels: pixels outer, channel pairs inner; f32 data pointers advance 8 bytes per
// pair, per-channel f64 pointers 16 and restart at every pixel.

/**
 * A kernel `name(params…)` that walks the `n × C` floats at `x`: `f32` lists the other
 * per-element float32 pointers, `f64` the per-channel float64 ones (as `<name>0` parameters
 * restarted per pixel from `<name>`), `f32c` per-channel float32 ones; `pair` emits one channel
 * pair's work.
 */
function pixelKernel(
  name: string,
  f32: string[],
  f64: string[],
  f32c: string[],
  pair: (f: Fn) => void,
): Fn {
  const params: Record<string, "i32"> = { x: "i32", n: "i32", C: "i32" };
  for (const p of [...f32, ...f64, ...f32c]) params[p] = "i32";
  const f = new Fn(name, params);
  f.local("end", "i32");
  f.local("rowEnd", "i32");
  f.local("row", "i32");
  for (const p of [...f64, ...f32c]) f.local(`${p}0`, "i32");
  f.local("t", "v128");
  f.local("u", "v128");
  // row = C * 4 bytes, end = x + n * row
  f.emit(f.get("C"), op.i32Const(2), op.i32Shl, f.set("row"));
  f.emit(f.get("x"), f.get("n"), f.get("row"), op.i32Mul, op.i32Add, f.set("end"));
  f.whileBelow("x", "end", () => {
    f.emit(f.get("x"), f.get("row"), op.i32Add, f.set("rowEnd"));
    for (const p of [...f64, ...f32c]) f.emit(f.get(p), f.set(`${p}0`));
    f.whileBelow("x", "rowEnd", () => {
      pair(f);
      f.emit(f.advance("x", 8));
      for (const p of f32) f.emit(f.advance(p, 8));
      for (const p of f64) f.emit(f.advance(`${p}0`, 16));
      for (const p of f32c) f.emit(f.advance(`${p}0`, 8));
    });
  });
  return f;
}

/** Two float32 at `ptr`, as f64x2. */
const f32pair = (f: Fn, ptr: string): number[] => [
  ...f.get(ptr),
  ...op.v128Load64Zero(2),
  ...op.f64x2PromoteLowF32x4,
];

/** Two float32 at `ptr` where `Y > 0` (else +0), as f64x2. */
const maskedPair = (f: Fn, ptr: string, masked: boolean): number[] =>
  masked
    ? [
      ...f.get(ptr),
      ...op.v128Load64Zero(2),
      ...f.get("y"),
      ...op.v128Load64Zero(2),
      ...op.v128Zero,
      ...op.f32x4Gt,
      ...op.v128And,
      ...op.f64x2PromoteLowF32x4,
    ]
    : f32pair(f, ptr);

/** `*ptr (f64x2) += value` where `value` is left on the stack by `value`. */
function accumulate(f: Fn, ptr: string, value: number[]): void {
  f.emit(f.get(ptr), f.get(ptr), op.v128Load(3), value, op.f64x2Add, op.v128Store(3));
}

function kernels(): Fn[] {
  const fns: Fn[] = [];
  for (const masked of [false, true]) {
    const y = masked ? ["y"] : [];
    const tag = masked ? "Masked" : "";
    fns.push(
      pixelKernel(`sums${tag}`, y, ["acc"], [], (f) => {
        accumulate(f, "acc0", maskedPair(f, "x", masked));
      }),
      pixelKernel(`gradSums${tag}`, ["g", ...y], ["inv", "db", "dw"], ["mean"], (f) => {
        f.emit(maskedPair(f, "g", masked), f.set("t"));
        accumulate(f, "db0", f.get("t"));
        // dw += (g · (x − mean)) · inv
        const d = [...f32pair(f, "x"), ...f32pair(f, "mean0"), ...op.f64x2Sub];
        const inv = [...f.get("inv0"), ...op.v128Load(3)];
        accumulate(f, "dw0", [...f.get("t"), ...d, ...op.f64x2Mul, ...inv, ...op.f64x2Mul]);
      }),
      pixelKernel(`gradInput${tag}`, ["g", ...y, "dx"], ["k", "a", "b"], [], (f) => {
        // dx = (k · g + a · x) + b
        f.emit(f.get("dx"), f.get("k0"), op.v128Load(3), maskedPair(f, "g", masked), op.f64x2Mul);
        f.emit(f.get("a0"), op.v128Load(3), f32pair(f, "x"), op.f64x2Mul, op.f64x2Add);
        f.emit(f.get("b0"), op.v128Load(3), op.f64x2Add, op.f32x4DemoteF64x2Zero);
        f.emit(op.v128Store64Lane0(2));
      }),
    );
  }
  for (const relu of [false, true]) {
    fns.push(pixelKernel(relu ? "affineRelu" : "affine", ["out"], ["scale", "shift"], [], (f) => {
      // out = x · scale + shift (then pmax(0, ·): v > 0 ? v : 0, NaN and −0 to +0)
      f.emit(f.get("out"));
      if (relu) f.emit(op.v128Zero);
      f.emit(f32pair(f, "x"), f.get("scale0"), op.v128Load(3), op.f64x2Mul);
      f.emit(f.get("shift0"), op.v128Load(3), op.f64x2Add);
      if (relu) f.emit(op.f64x2Pmax);
      f.emit(op.f32x4DemoteF64x2Zero, op.v128Store64Lane0(2));
    }));
  }
  fns.push(pixelKernel("squaredDeviations", [], ["mean", "acc"], [], (f) => {
    f.emit(f32pair(f, "x"), f.get("mean0"), op.v128Load(3), op.f64x2Sub, f.set("u"));
    accumulate(f, "acc0", [...f.get("u"), ...f.get("u"), ...op.f64x2Mul]);
  }));
  return fns;
}

/** The kernels' module bytes for a shared or an ordinary memory. */
export function batchNormModuleBytes(shared: boolean): Uint8Array {
  return wasmModule(kernels(), shared);
}

type K = (...args: number[]) => void;

/**
 * The SIMD passes on `memory` (the wasm backend's heap). Every array passed must be a view of
 * it, float64 arrays 8-byte aligned; `C` must be even.
 */
export function wasmLoops(memory: WebAssembly.Memory): BatchNormLoops {
  const k = instantiateOn(memory, "batch_norm", batchNormModuleBytes) as Record<string, K>;
  const at = (a: Float32Array | Float64Array) => a.byteOffset;
  const pixels = (X: Float32Array, C: number) => {
    if (C % 2 !== 0) throw new Error(`batch norm (wasm SIMD): channels must be even, got ${C}`);
    return X.length / C;
  };
  return {
    sums(X, Y, C, acc) {
      const n = pixels(X, C);
      if (Y) k.sumsMasked(at(X), n, C, at(Y), at(acc));
      else k.sums(at(X), n, C, at(acc));
    },
    squaredDeviations(X, mean, C, acc) {
      k.squaredDeviations(at(X), pixels(X, C), C, at(mean), at(acc));
    },
    affine(X, out, C, scale, shift, relu) {
      (relu ? k.affineRelu : k.affine)(at(X), pixels(X, C), C, at(out), at(scale), at(shift));
    },
    gradSums(G, Y, X, mean, inv, C, db, dw) {
      const n = pixels(X, C);
      if (Y) k.gradSumsMasked(at(X), n, C, at(G), at(Y), at(inv), at(db), at(dw), at(mean));
      else k.gradSums(at(X), n, C, at(G), at(inv), at(db), at(dw), at(mean));
    },
    gradInput(G, Y, X, C, ka, a, b, DX) {
      const n = pixels(X, C);
      if (Y) k.gradInputMasked(at(X), n, C, at(G), at(Y), at(DX), at(ka), at(a), at(b));
      else k.gradInput(at(X), n, C, at(G), at(DX), at(ka), at(a), at(b));
    },
  };
}
