/**
 * A cache-blocked 2-D float32 transpose in WebAssembly SIMD for the wasm training kernels
 * (`wasm_kernels.ts`: the transposes of matrix products and of the filter gradient's input):
 * 4x4 blocks are loaded as four vectors, transposed with eight shuffles and stored as four
 * vectors, tile by tile so that both sides stay in cache. Pure data movement, so the result is
 * bitwise that of a scalar loop; rows and columns beyond a multiple of 4 are left to the caller.
 *
 * @example
 * ```ts
 * import { transposeKernel } from "./transpose_wasm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const transpose = transposeKernel(memory);
 * // transpose(src, dst, rows, cols, rows4, cols4): byte addresses; the [rows4, cols4] corner
 * ```
 *
 * @module
 */
import { Fn, instantiateOn, op, wasmModule } from "../wasm_asm.ts";

/**
 * `(src, dst, rows, cols, rows4, cols4)`: `dst[j][i] = src[i][j]` for `i < rows4`, `j < cols4`
 * (multiples of 4) of a `[rows, cols]` matrix at byte address `src` into `[cols, rows]` at `dst`.
 */
export type TransposeKernel = (
  src: number,
  dst: number,
  rows: number,
  cols: number,
  rows4: number,
  cols4: number,
) => void;

/** Rows and columns of one tile (a multiple of 4). */
const TILE = 32;

function transposeFn(): Fn {
  const f = new Fn("transpose", {
    src: "i32",
    dst: "i32",
    rows: "i32",
    cols: "i32",
    rows4: "i32",
    cols4: "i32",
  });
  for (const l of ["ss", "ds", "i0", "j0", "i", "j", "iEnd", "jEnd", "s", "d"]) f.local(l, "i32");
  for (const l of ["r0", "r1", "r2", "r3", "t0", "t1", "t2", "t3"]) f.local(l, "v128");
  // row strides in bytes
  f.emit(f.get("cols"), op.i32Const(2), op.i32Shl, f.set("ss"));
  f.emit(f.get("rows"), op.i32Const(2), op.i32Shl, f.set("ds"));
  const min = (a: string, b: number, limit: string, out: string) => {
    // out = min(a + b, limit)
    f.emit(f.get(a), op.i32Const(b), op.i32Add, f.set(out));
    f.emit(op.block, f.get(out), f.get(limit), op.i32GeU, op.i32Eqz, op.brIf(0));
    f.emit(f.get(limit), f.set(out), op.end);
  };
  const lo = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
  const hi = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];
  const first = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  const second = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
  f.emit(op.i32Const(0), f.set("i0"));
  f.whileBelow("i0", "rows4", () => {
    min("i0", TILE, "rows4", "iEnd");
    f.emit(op.i32Const(0), f.set("j0"));
    f.whileBelow("j0", "cols4", () => {
      min("j0", TILE, "cols4", "jEnd");
      f.emit(f.get("i0"), f.set("i"));
      f.whileBelow("i", "iEnd", () => {
        f.emit(f.get("j0"), f.set("j"));
        f.whileBelow("j", "jEnd", () => {
          // s = src + i * ss + j * 4; d = dst + j * ds + i * 4
          f.emit(f.get("src"), f.get("i"), f.get("ss"), op.i32Mul, op.i32Add);
          f.emit(f.get("j"), op.i32Const(2), op.i32Shl, op.i32Add, f.set("s"));
          f.emit(f.get("dst"), f.get("j"), f.get("ds"), op.i32Mul, op.i32Add);
          f.emit(f.get("i"), op.i32Const(2), op.i32Shl, op.i32Add, f.set("d"));
          for (let k = 0; k < 4; k++) {
            f.emit(f.get("s"), op.v128Load(2), f.set(`r${k}`));
            if (k < 3) f.emit(f.advance("s", "ss"));
          }
          f.emit(f.get("r0"), f.get("r1"), op.shuffle(lo), f.set("t0"));
          f.emit(f.get("r0"), f.get("r1"), op.shuffle(hi), f.set("t1"));
          f.emit(f.get("r2"), f.get("r3"), op.shuffle(lo), f.set("t2"));
          f.emit(f.get("r2"), f.get("r3"), op.shuffle(hi), f.set("t3"));
          const out: [string, string, number[]][] = [
            ["t0", "t2", first],
            ["t0", "t2", second],
            ["t1", "t3", first],
            ["t1", "t3", second],
          ];
          out.forEach(([a, b, lanes], k) => {
            f.emit(f.get("d"), f.get(a), f.get(b), op.shuffle(lanes), op.v128Store(2));
            if (k < 3) f.emit(f.advance("d", "ds"));
          });
          f.emit(f.advance("j", 4));
        });
        f.emit(f.advance("i", 4));
      });
      f.emit(f.advance("j0", TILE));
    });
    f.emit(f.advance("i0", TILE));
  });
  return f;
}

/** The module's bytes for a shared or an ordinary memory (exports `transpose`). */
export function transposeModuleBytes(shared: boolean): Uint8Array {
  return wasmModule([transposeFn()], shared);
}

/** The transpose kernel on `memory` (instantiated once per memory). */
export function transposeKernel(memory: WebAssembly.Memory): TransposeKernel {
  return instantiateOn(memory, "transpose", transposeModuleBytes).transpose as TransposeKernel;
}

/**
 * `dst[j*rows + i] = src[i*cols + j]` for a `[rows, cols]` matrix, both views of `memory`: the
 * corner of whole 4x4 blocks in the SIMD kernel, the remaining rows and columns in JavaScript.
 */
export function transposeOnHeap(
  memory: WebAssembly.Memory,
  src: Float32Array,
  dst: Float32Array,
  rows: number,
  cols: number,
): void {
  const rows4 = rows & ~3, cols4 = cols & ~3;
  if (rows4 > 0 && cols4 > 0) {
    transposeKernel(memory)(src.byteOffset, dst.byteOffset, rows, cols, rows4, cols4);
  }
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    // Rows past the corner: every column; rows inside it: the last cols % 4 columns.
    for (let j = i < rows4 ? cols4 : 0; j < cols; j++) dst[j * rows + i] = src[base + j];
  }
}
