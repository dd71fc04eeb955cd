// The wasm SIMD passes of the fused batch norm are bitwise the JavaScript ones (float64 lanes,
// same per-channel order), with and without the ReLU mask (including Y = 0, −0 and NaN), and the
// fused batch-norm kernels on wasm give bitwise the cpu backend's forward and gradients.
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { type BatchNormLoops, jsLoops, wasmLoops } from "../lib/nn/batch_norm_loops.ts";
import { batchNormTrain } from "../lib/nn/batch_norm_kernel.ts";
import { normalSource } from "./_util.ts";

function assertSame(a: ArrayLike<number>, b: ArrayLike<number>, what: string, seed: number) {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) assert.fail(`${what}: ${i}: ${a[i]} vs ${b[i]} (seed ${seed})`);
  }
}

Deno.test("batch-norm passes: wasm SIMD equals JavaScript bitwise", () => {
  const src = normalSource(81);
  const memory = new WebAssembly.Memory({ initial: 64 });
  const wasm = wasmLoops(memory);
  let top = 0;
  // Arrays on the memory (8-byte aligned), as the kernels need.
  const f32 = (n: number) => {
    const a = new Float32Array(memory.buffer, top, n).fill(0);
    top += Math.ceil((n * 4) / 8) * 8;
    return a;
  };
  const f64 = (n: number) => {
    const a = new Float64Array(memory.buffer, top, n).fill(0);
    top += n * 8;
    return a;
  };
  for (const [P, C] of [[37, 6], [5, 64], [1, 2], [0, 4]]) {
    top = 0;
    const n = P * C;
    const X = f32(n), G = f32(n), Y = f32(n), M = f32(C);
    X.set(src.randn(n).map((v, i) => (i % 13 === 0 ? v * 1e6 : v)));
    G.set(src.randn(n));
    Y.set(src.randn(n).map((v, i) => (i % 7 === 0 ? 0 : i % 11 === 0 ? -0 : v)));
    if (n > 5) Y[5] = NaN;
    M.set(src.randn(C));
    const vec = () => Float64Array.from(src.randn(C), (v) => v * 1.7);
    const [mean, scale, shift, inv, k, a, b] = [0, 1, 2, 3, 4, 5, 6].map(() => {
      const v = f64(C);
      v.set(vec());
      return v;
    });
    const run = (loops: BatchNormLoops) => {
      const acc = [f64(C), f64(C), f64(C), f64(C), f64(C)];
      const outs = [f32(n), f32(n), f32(n), f32(n)];
      loops.sums(X, null, C, acc[0]);
      loops.sums(X, Y, C, acc[1]);
      loops.squaredDeviations(X, mean, C, acc[2]);
      loops.affine(X, outs[0], C, scale, shift, false);
      loops.affine(X, outs[1], C, scale, shift, true);
      loops.gradSums(G, Y, X, M, inv, C, acc[3], acc[4]);
      const dbPlain = f64(C), dwPlain = f64(C);
      loops.gradSums(G, null, X, M, inv, C, dbPlain, dwPlain);
      loops.gradInput(G, Y, X, C, k, a, b, outs[2]);
      loops.gradInput(G, null, X, C, k, a, b, outs[3]);
      return [...acc, dbPlain, dwPlain, ...outs].map((t) => t.slice());
    };
    const js = run(jsLoops), simd = run(wasm);
    js.forEach((r, i) => assertSame(simd[i], r, `[${P}, ${C}] output ${i}`, src.seed));
    if (P >= 5) assert.ok(js[1].some((v) => v !== 0) && js[4].some((v) => v !== 0));
  }
  assert.throws(() => wasm.sums(new Float32Array(memory.buffer, 0, 9), null, 3, f64(3)), /even/);
});

Deno.test("fused batch norm on wasm equals cpu bitwise (forward and gradients, ReLU)", async () => {
  const src = normalSource(83);
  const [N, H, W, C] = [2, 9, 11, 16];
  const x = src.randn(N * H * W * C), w = src.randn(C), bias = src.randn(C);
  const dy = src.randn(N * H * W * C);
  const results: Float32Array[][] = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    results.push(tf.tidy(() => {
      const xs = [tf.tensor4d(x, [N, H, W, C]), tf.tensor1d(w), tf.tensor1d(bias)];
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        batchNormTrain(a as tf.Tensor4D, b, c, 1e-5, "relu");
      const out = f(xs[0], xs[1], xs[2]);
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(tf.mul(f(a, b, c).y, tf.tensor4d(dy, [N, H, W, C])))
      )(xs);
      return [out.y, out.mean, out.variance, ...grads].map((t) => t.dataSync() as Float32Array);
    }));
  }
  const [cpu, wasm] = results;
  assert.ok(cpu[3].some((v) => v !== 0) && cpu[4].some((v) => v !== 0));
  cpu.forEach((r, i) => assertSame(wasm[i], r, `output ${i}`, src.seed));
});
