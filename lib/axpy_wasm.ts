/**
 * A WebAssembly SIMD `axpy` (`dst[i] += w * src[i]`) on a given memory, bitwise equal to the
 * JavaScript loop `dst[d + i] += w * src[s + i]` over `Float32Array`s: JavaScript computes
 * `w * src[i]` exactly in float64, adds in float64 and rounds to float32 when it stores; the
 * kernel does the same with `f64x2` lanes (promote, multiply, add, demote), four floats per step.
 * It is about five times faster than the JavaScript loop, so the `js` RoIAlign engine
 * (`roi_align_js.ts`) uses it whenever its arrays live on the wasm backend's heap, without any
 * change to its results.
 *
 * The module is assembled here from its instructions (a few hundred bytes), so it needs no build
 * step: {@linkcode axpyModuleBytes} gives the bytes for a shared (threaded build) or an ordinary
 * memory, and {@linkcode axpyKernel} instantiates them on a memory.
 *
 * @example
 * ```ts
 * import { axpyKernel } from "./axpy_wasm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const axpy = axpyKernel(memory);
 * const heap = new Float32Array(memory.buffer);
 * heap.set([1, 2, 3, 4], 0); // dst at byte 0
 * heap.set([10, 20, 30, 40], 4); // src at byte 16
 * axpy(0, 16, 0.5, 4); // heap[0..4] = 6, 12, 18, 24
 * ```
 *
 * @module
 */
import { Fn, instantiateOn, op, wasmModule } from "./wasm_asm.ts";

/** `dst[i] += w * src[i]` for `0 <= i < n`; `dst`, `src` are byte addresses in the memory. */
export type AxpyKernel = (dst: number, src: number, w: number, n: number) => void;

/** `axpy(dst, src, w, n)`: four floats per step in float64 lanes, then the last `n & 3` singly. */
function axpyFn(): Fn {
  const f = new Fn("axpy", { dst: "i32", src: "i32", w: "f32", n: "i32" });
  f.local("end", "i32");
  f.local("wv", "v128");
  f.local("s", "v128");
  f.local("d", "v128");
  // end = dst + (n & ~3) * 4; wv = f64x2.splat(w)
  f.emit(f.get("dst"), f.get("n"), op.i32Const(-4), op.i32And, op.i32Const(2), op.i32Shl);
  f.emit(op.i32Add, f.set("end"), f.get("w"), op.f64PromoteF32, op.f64x2Splat, f.set("wv"));
  const high = (v: string) => [
    ...f.get(v),
    ...f.get(v),
    ...op.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]),
  ];
  f.whileBelow("dst", "end", () => {
    f.emit(f.get("dst")); // the store's address
    f.emit(f.get("src"), op.v128Load(2), f.set("s"), f.get("dst"), op.v128Load(2), f.set("d"));
    // lanes 0-1 and 2-3: demote(promote(dst) + promote(src) * w)
    for (const part of [(v: string) => f.get(v), high]) {
      f.emit(part("d"), op.f64x2PromoteLowF32x4, part("s"), op.f64x2PromoteLowF32x4);
      f.emit(f.get("wv"), op.f64x2Mul, op.f64x2Add, op.f32x4DemoteF64x2Zero);
    }
    f.emit(op.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]));
    f.emit(op.v128Store(2), f.advance("dst", 16), f.advance("src", 16));
  });
  // the last n & 3 floats one by one (end = dst + (n & 3) * 4)
  f.emit(f.get("dst"), f.get("n"), op.i32Const(3), op.i32And, op.i32Const(2), op.i32Shl);
  f.emit(op.i32Add, f.set("end"));
  f.whileBelow("dst", "end", () => {
    f.emit(f.get("dst"), f.get("dst"), op.f32Load(2), op.f64PromoteF32);
    f.emit(f.get("src"), op.f32Load(2), op.f64PromoteF32, f.get("w"), op.f64PromoteF32);
    f.emit(op.f64Mul, op.f64Add, op.f32DemoteF64, op.f32Store(2));
    f.emit(f.advance("dst", 4), f.advance("src", 4));
  });
  return f;
}

/**
 * The kernel module's bytes. It imports `env.memory`: a shared memory of at most 65536 pages (the
 * threaded wasm build's heap) when `shared`, else any ordinary memory; it exports `axpy`.
 */
export function axpyModuleBytes(shared: boolean): Uint8Array {
  return wasmModule([axpyFn()], shared);
}

/** The kernel on `memory` (instantiated once per memory). */
export function axpyKernel(memory: WebAssembly.Memory): AxpyKernel {
  return instantiateOn(memory, "axpy", axpyModuleBytes).axpy as AxpyKernel;
}
