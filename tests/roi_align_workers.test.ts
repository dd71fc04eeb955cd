// The js RoIAlign engine on worker threads gives bitwise the results of one thread (forward split
// by boxes, backward by bands of feature rows), on one and several maps, on wasm and cpu; the
// workers stop when the thread count goes back to 1.
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { MultiScaleRoIAlign, roiAlign } from "../lib/roi_align.ts";
import {
  PARALLEL_MIN_FLOATS,
  roiAlignThreads,
  setRoIAlignThreads,
} from "../lib/roi_align_workers.ts";
import { normalSource } from "./_util.ts";

/** Boxes of all sizes (tiny to wider than the map) in a `W x H` image, plus some partly outside. */
function boxes(next: () => number, R: number, W: number, H: number): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < R; r++) {
    const w = 2 + next() * (r % 5 === 0 ? 1.3 * W : W / 6);
    const h = 2 + next() * (r % 7 === 0 ? 1.3 * H : H / 6);
    const x = -0.1 * W + next() * 1.1 * W, y = -0.1 * H + next() * 1.1 * H;
    out.push([x, y, x + w, y + h]);
  }
  return out;
}

function valueAndGrad(
  f: (x: tf.Tensor4D[]) => tf.Tensor4D,
  xs: tf.Tensor4D[],
  dy: Float32Array,
): { out: Float32Array; grads: Float32Array[] } {
  return tf.tidy(() => {
    const g = tf.grads((...a: tf.Tensor[]) => {
      const y = f(a as tf.Tensor4D[]);
      return tf.sum(tf.mul(y, tf.tensor(dy, y.shape)));
    });
    const out = f(xs).dataSync() as Float32Array;
    return { out, grads: g(xs).map((t) => t.dataSync() as Float32Array) };
  });
}

function assertSame(a: Float32Array, b: Float32Array, what: string, seed: number): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) {
      assert.fail(`${what}: element ${i} differs, ${a[i]} vs ${b[i]} (seed ${seed})`);
    }
  }
}

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`roiAlign on 2 and 3 threads equals one thread bitwise (${backend})`, async () => {
    await initBackend(backend);
    const src = normalSource(backend === "wasm" ? 31 : 37);
    let s = src.seed;
    const next = () => ((s = (s * 16807) % 2147483647) / 2147483647);
    const [N, H, W, C] = [2, 24, 30, 48];
    const start = tf.memory().numTensors;
    const F = tf.tensor4d(src.randn(N * H * W * C), [N, H, W, C]);
    const rows = boxes(next, 160, 4 * W, 4 * H).map((b, r) => [r % N, ...b]);
    const cfg = { outputSize: 7, spatialScale: 0.25, samplingRatio: 2, engine: "js" } as const;
    const dy = src.randn(rows.length * 7 * 7 * C);
    assert.ok(dy.length >= PARALLEL_MIN_FLOATS, "large enough to be split");
    try {
      setRoIAlignThreads(1);
      const one = valueAndGrad(([f]) => roiAlign(f, rows, cfg), [F], dy);
      assert.ok(one.grads[0].some((v) => v !== 0));
      for (const n of [2, 3]) {
        setRoIAlignThreads(n);
        assert.equal(roiAlignThreads(), n);
        const many = valueAndGrad(([f]) => roiAlign(f, rows, cfg), [F], dy);
        assertSame(many.out, one.out, `forward, ${n} threads`, src.seed);
        assertSame(many.grads[0], one.grads[0], `gradient, ${n} threads`, src.seed);
      }
      // Adaptive sampling (a box's grid follows its size): the scratch bound still holds.
      const adaptive = { ...cfg, samplingRatio: 0 };
      setRoIAlignThreads(1);
      const oneA = valueAndGrad(([f]) => roiAlign(f, rows, adaptive), [F], dy);
      setRoIAlignThreads(2);
      const twoA = valueAndGrad(([f]) => roiAlign(f, rows, adaptive), [F], dy);
      assertSame(twoA.out, oneA.out, "forward, adaptive sampling", src.seed);
      assertSame(twoA.grads[0], oneA.grads[0], "gradient, adaptive sampling", src.seed);
    } finally {
      setRoIAlignThreads(1);
      F.dispose();
    }
    assert.equal(tf.memory().numTensors, start, "no tensors leak");
  });
}

Deno.test("MultiScaleRoIAlign over two maps on 2 threads equals one thread bitwise", async () => {
  await initBackend("wasm");
  const src = normalSource(41);
  let s = src.seed;
  const next = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const C = 32;
  const maps = {
    "0": tf.tensor4d(src.randn(64 * 64 * C), [1, 64, 64, C]),
    "1": tf.tensor4d(src.randn(32 * 32 * C), [1, 32, 32, C]),
  };
  const box = tf.tensor2d(boxes(next, 300, 256, 256));
  const pooler = () =>
    new MultiScaleRoIAlign({
      featmapNames: ["0", "1"],
      outputSize: 7,
      samplingRatio: 2,
      canonicalScale: 32,
      canonicalLevel: 2,
      engine: "js",
    });
  const dy = src.randn(300 * 7 * 7 * C);
  const run = () =>
    valueAndGrad(
      ([a, b]) => pooler().forward({ "0": a, "1": b }, [box], [[256, 256]]),
      [maps["0"], maps["1"]],
      dy,
    );
  try {
    setRoIAlignThreads(1);
    const one = run();
    assert.ok(one.grads[0].some((v) => v !== 0) && one.grads[1].some((v) => v !== 0));
    setRoIAlignThreads(2);
    const two = run();
    assertSame(two.out, one.out, "forward", src.seed);
    two.grads.forEach((g, l) => assertSame(g, one.grads[l], `gradient of map ${l}`, src.seed));
  } finally {
    setRoIAlignThreads(1);
    tf.dispose([maps["0"], maps["1"], box]);
  }
});

Deno.test("RoIAlign threads: 1-8, set by initBackend('wasm', { wasmThreads })", async () => {
  assert.throws(() => setRoIAlignThreads(0), /RoIAlign threads must be an integer from 1 to 8/);
  assert.throws(() => setRoIAlignThreads(2.5), /from 1 to 8, got 2.5/);
  await initBackend("wasm", { wasmThreads: 1 });
  assert.equal(roiAlignThreads(), 1);
});

Deno.test("roiAlign on wasm (SIMD kernel on the heap) equals cpu (JavaScript loop) bitwise", async () => {
  const src = normalSource(43);
  let s = src.seed;
  const next = () => ((s = (s * 16807) % 2147483647) / 2147483647);
  const [N, H, W, C] = [2, 20, 26, 36];
  const feat = src.randn(N * H * W * C);
  // Wide boxes too, so that both the dense and the sparse column loops run.
  const rows = boxes(next, 90, 4 * W, 4 * H).map((b, r) => [r % N, ...b]);
  const dy = src.randn(rows.length * 7 * 7 * C);
  const cfg = { outputSize: 7, spatialScale: 0.25, samplingRatio: 2, engine: "js" } as const;
  const results: { out: Float32Array; grads: Float32Array[] }[] = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const F = tf.tensor4d(feat, [N, H, W, C]);
    try {
      results.push(valueAndGrad(([f]) => roiAlign(f, rows, cfg), [F], dy));
    } finally {
      F.dispose();
    }
  }
  const [cpu, wasm] = results;
  assert.ok(cpu.out.some((v) => v !== 0) && cpu.grads[0].some((v) => v !== 0));
  assertSame(wasm.out, cpu.out, "forward", src.seed);
  assertSame(wasm.grads[0], cpu.grads[0], "gradient", src.seed);
});
