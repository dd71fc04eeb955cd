// The SIMD transpose (whole 4x4 blocks in wasm, the rest in JavaScript) moves every element to
// its transposed place, for every shape class (multiples of 4 or not, tiles cut or whole, one row
// or column), on ordinary and shared memory, and writes nothing else.
import assert from "node:assert/strict";
import { transposeOnHeap } from "../lib/backend/transpose_wasm.ts";

const SHAPES = [[1, 1], [1, 9], [9, 1], [3, 5], [4, 4], [4, 8], [8, 4], [33, 70], [64, 130], [
  70,
  33,
], [37, 41]];

for (const shared of [false, true]) {
  Deno.test(`transposeOnHeap matches the definition (${shared ? "shared" : "ordinary"} memory)`, () => {
    const memory = new WebAssembly.Memory(
      shared ? { initial: 4, maximum: 65536, shared: true } : { initial: 4 },
    );
    for (const [rows, cols] of SHAPES) {
      const n = rows * cols;
      const heap = new Float32Array(memory.buffer);
      heap.fill(-7);
      // src at float 3 (12 bytes: not 16-byte aligned), dst after it with a guard float.
      const src = heap.subarray(3, 3 + n);
      const dst = heap.subarray(3 + n + 1, 3 + 2 * n + 1);
      for (let i = 0; i < n; i++) src[i] = i + 0.25;
      transposeOnHeap(memory, src, dst, rows, cols);
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          if (dst[j * rows + i] !== src[i * cols + j]) {
            assert.fail(`[${rows}, ${cols}] (${i}, ${j}): ${dst[j * rows + i]}`);
          }
        }
      }
      assert.equal(heap[3 + n], -7, "guard before dst");
      assert.equal(heap[3 + 2 * n + 1], -7, "guard after dst");
    }
  });
}
