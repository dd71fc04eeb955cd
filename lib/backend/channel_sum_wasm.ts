/**
 * The sum over every axis but the last (`tf.sum(x, [0, …, r-2])`: the bias gradients of
 * convolutions, per-channel sums of NHWC activations and filters) as a WebAssembly SIMD kernel on
 * the wasm heap, for `wasm_kernels.ts`. Each channel is accumulated in float32, element after
 * element in memory order — exactly what tfjs-wasm's own `Sum` does after it transposes the
 * channels to the front — four channels per vector, so the result is bitwise the same without the
 * transpose (a full copy of the input).
 *
 * @example
 * ```ts
 * import { channelSumKernel } from "./channel_sum_wasm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const sum = channelSumKernel(memory);
 * // sum(x, rows, C, out): byte addresses; out[c] = x[0][c] + x[1][c] + … (C a multiple of 4)
 * ```
 *
 * @module
 */
import { Fn, instantiateOn, op, wasmModule } from "../wasm_asm.ts";

/** `(x, rows, C, out)`: `out[c] = Σ_r x[r][c]` in float32, in order; `C` a multiple of 4. */
export type ChannelSumKernel = (x: number, rows: number, C: number, out: number) => void;

function channelSumFn(): Fn {
  const f = new Fn("channelSum", { x: "i32", rows: "i32", C: "i32", out: "i32" });
  for (const l of ["row", "end", "o", "oEnd"]) f.local(l, "i32");
  // out = 0
  f.emit(f.get("C"), op.i32Const(2), op.i32Shl, f.set("row"));
  f.emit(f.get("out"), f.set("o"), f.get("out"), f.get("row"), op.i32Add, f.set("oEnd"));
  f.whileBelow("o", "oEnd", () => {
    f.emit(f.get("o"), op.v128Zero, op.v128Store(2), f.advance("o", 16));
  });
  f.emit(f.get("x"), f.get("rows"), f.get("row"), op.i32Mul, op.i32Add, f.set("end"));
  f.whileBelow("x", "end", () => {
    f.emit(f.get("out"), f.set("o"));
    f.whileBelow("o", "oEnd", () => {
      f.emit(f.get("o"), f.get("o"), op.v128Load(2), f.get("x"), op.v128Load(2), op.f32x4Add);
      f.emit(op.v128Store(2), f.advance("o", 16), f.advance("x", 16));
    });
  });
  return f;
}

/** The module's bytes for a shared or an ordinary memory (exports `channelSum`). */
export function channelSumModuleBytes(shared: boolean): Uint8Array {
  return wasmModule([channelSumFn()], shared);
}

/** The kernel on `memory` (instantiated once per memory). */
export function channelSumKernel(memory: WebAssembly.Memory): ChannelSumKernel {
  return instantiateOn(memory, "channel_sum", channelSumModuleBytes)
    .channelSum as ChannelSumKernel;
}
