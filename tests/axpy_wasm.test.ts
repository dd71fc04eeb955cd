// The wasm SIMD axpy kernel is bitwise the JavaScript loop `dst[i] += w * src[i]` over
// Float32Arrays (float64 product and sum, one rounding to float32), on ordinary and shared memory,
// for every length (the 4-float steps and the 0-3 float tail) and unaligned addresses.
import assert from "node:assert/strict";
import { axpyKernel, axpyModuleBytes } from "../lib/axpy_wasm.ts";
import { normalSource } from "./_util.ts";

function check(memory: WebAssembly.Memory, seed: number): void {
  const src = normalSource(seed);
  const axpy = axpyKernel(memory);
  assert.equal(axpyKernel(memory), axpy, "one instance per memory");
  const heap = new Float32Array(memory.buffer);
  const cases = [0, 1, 2, 3, 4, 5, 7, 8, 255, 256, 1003];
  for (const n of cases) {
    for (const [d, s] of [[0, 2048], [3, 4097], [1500, 6001]]) {
      const dst = src.randn(n), x = src.randn(n);
      // Large and tiny values too, where a float32 product would round differently.
      for (let i = 0; i < n; i += 7) x[i] *= 1e30;
      for (let i = 3; i < n; i += 11) dst[i] *= 1e-30;
      heap.set(dst, d);
      heap.set(x, s);
      const w = Math.fround(src.randn(1)[0] * 3);
      const expected = dst.slice();
      for (let i = 0; i < n; i++) expected[i] += w * x[i];
      const before = heap[d + n];
      axpy(4 * d, 4 * s, w, n);
      for (let i = 0; i < n; i++) {
        if (!Object.is(heap[d + i], expected[i])) {
          assert.fail(`n ${n}, element ${i}: ${heap[d + i]} vs ${expected[i]} (seed ${src.seed})`);
        }
      }
      assert.ok(Object.is(heap[d + n], before), `n ${n}: nothing written past the end`);
      assert.deepEqual(heap.subarray(s, s + n), x, "the source is unchanged");
    }
  }
}

Deno.test("wasm axpy equals the JavaScript loop bitwise (ordinary memory)", () => {
  check(new WebAssembly.Memory({ initial: 1 }), 71);
});

Deno.test("wasm axpy equals the JavaScript loop bitwise (shared memory)", () => {
  check(new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }), 73);
});

Deno.test("wasm axpy module: valid bytes for both memory kinds", () => {
  for (const shared of [false, true]) {
    const bytes = axpyModuleBytes(shared);
    assert.ok(WebAssembly.validate(bytes as BufferSource), `shared ${shared}`);
    const mod = new WebAssembly.Module(bytes as BufferSource);
    assert.deepEqual(WebAssembly.Module.exports(mod).map((e) => e.name), ["axpy"]);
    assert.deepEqual(WebAssembly.Module.imports(mod).map((i) => `${i.module}.${i.name}`), [
      "env.memory",
    ]);
  }
});
