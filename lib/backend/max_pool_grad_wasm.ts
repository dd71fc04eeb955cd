/**
 * The window kernel of the wasm backend's `MaxPoolGrad` (`wasm_kernels.ts`) as WebAssembly SIMD,
 * four channels per step: for one output pixel it finds, per channel, the first maximum among the
 * window's taps (row-major order, strictly greater wins, so ties and NaN go as in the JavaScript
 * loop, tfjs' `cpu` backend and PyTorch) and adds the output gradient to that input element.
 * Float32 additions round once, exactly as the JavaScript `dx[i] += g` does, so the result is
 * bitwise that of the loop.
 *
 * @example
 * ```ts
 * import { maxPoolWindowKernel } from "./max_pool_grad_wasm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const window = maxPoolWindowKernel(memory);
 * // window(xBase, gAddr, dxBase, tapsAddr, tapCount, channels): byte addresses on `memory`
 * ```
 *
 * @module
 */
import { Fn, instantiateOn, op, wasmModule } from "../wasm_asm.ts";

/**
 * `(x, g, dx, taps, count, C)`: `taps` holds `count` (≥ 1) int32 byte offsets of the window's
 * valid input pixels from the image bases `x` and `dx`; `g` is the output pixel's `C` gradients
 * (`C` a multiple of 4). All are byte addresses.
 */
export type MaxPoolWindowKernel = (
  x: number,
  g: number,
  dx: number,
  taps: number,
  count: number,
  C: number,
) => void;

function windowFn(): Fn {
  const f = new Fn("window", { x: "i32", g: "i32", dx: "i32", taps: "i32", n: "i32", C: "i32" });
  for (const l of ["c", "cEnd", "t", "tEnd", "off", "addr"]) f.local(l, "i32");
  for (const l of ["best", "arg", "v", "m"]) f.local(l, "v128");
  const load = (off: string) => [
    ...f.get("x"),
    ...f.get(off),
    ...op.i32Add,
    ...f.get("c"),
    ...op.i32Add,
    ...op.v128Load(2),
  ];
  f.emit(f.get("C"), op.i32Const(2), op.i32Shl, f.set("cEnd"));
  f.emit(f.get("taps"), f.get("n"), op.i32Const(2), op.i32Shl, op.i32Add, f.set("tEnd"));
  f.whileBelow("c", "cEnd", () => {
    // the first tap, then every later one that is strictly greater
    f.emit(f.get("taps"), op.i32Load(2), f.set("off"));
    f.emit(load("off"), f.set("best"), f.get("off"), op.i32x4Splat, f.set("arg"));
    f.emit(f.get("taps"), op.i32Const(4), op.i32Add, f.set("t"));
    f.whileBelow("t", "tEnd", () => {
      f.emit(f.get("t"), op.i32Load(2), f.set("off"), load("off"), f.set("v"));
      f.emit(f.get("v"), f.get("best"), op.f32x4Gt, f.set("m"));
      f.emit(f.get("v"), f.get("best"), f.get("m"), op.v128Bitselect, f.set("best"));
      f.emit(f.get("off"), op.i32x4Splat, f.get("arg"), f.get("m"), op.v128Bitselect);
      f.emit(f.set("arg"), f.advance("t", 4));
    });
    for (let lane = 0; lane < 4; lane++) {
      // dx[arg + c + lane] += g[c + lane]
      f.emit(f.get("dx"), f.get("arg"), op.i32x4ExtractLane(lane), op.i32Add, f.get("c"));
      f.emit(op.i32Add, f.set("addr"), f.get("addr"), f.get("addr"), op.f32Load(2, 4 * lane));
      f.emit(f.get("g"), f.get("c"), op.i32Add, op.f32Load(2, 4 * lane), op.f32Add);
      f.emit(op.f32Store(2, 4 * lane));
    }
    f.emit(f.advance("c", 16));
  });
  return f;
}

/** The module's bytes for a shared or an ordinary memory (exports `window`). */
export function maxPoolGradModuleBytes(shared: boolean): Uint8Array {
  return wasmModule([windowFn()], shared);
}

/** The window kernel on `memory` (instantiated once per memory). */
export function maxPoolWindowKernel(memory: WebAssembly.Memory): MaxPoolWindowKernel {
  return instantiateOn(memory, "max_pool_grad", maxPoolGradModuleBytes)
    .window as MaxPoolWindowKernel;
}
