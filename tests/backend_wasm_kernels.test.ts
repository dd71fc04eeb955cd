// The wasm training kernels against the cpu backend on fresh random inputs (max-abs error relative
// to the reference's max-abs <= 1e-4), through both direct kernel calls and tf.grads.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import { normalSource } from "./_util.ts";

const TOL = 1e-4;
const normals = normalSource(0x5eed);
const randn = normals.randn;

type Data = { shape: number[]; values: Float32Array };
const data = (...shape: number[]): Data => normals.data(...shape);

/** Runs `f` on wasm and on cpu with the same inputs and compares every output. */
async function compare(label: string, inputs: Data[], f: (...xs: tf.Tensor[]) => tf.Tensor[]) {
  const run = async (backend: "wasm" | "cpu") => {
    await initBackend(backend);
    return tf.tidy(() => {
      const xs = inputs.map((d) => tf.tensor(d.values, d.shape));
      return f(...xs).map((t) => ({ shape: t.shape, values: t.dataSync().slice() }));
    });
  };
  const got = await run("wasm");
  const want = await run("cpu");
  assert.equal(got.length, want.length);
  for (let k = 0; k < got.length; k++) {
    assert.deepEqual(got[k].shape, want[k].shape, `${label}: output ${k} shape`);
    let err = 0;
    let ref = 0;
    for (let i = 0; i < want[k].values.length; i++) {
      err = Math.max(err, Math.abs(got[k].values[i] - want[k].values[i]));
      ref = Math.max(ref, Math.abs(want[k].values[i]));
    }
    assert.ok(ref > 0, `${label}: reference output ${k} is all zeros`);
    assert.ok(
      err / ref <= TOL,
      `${label}: output ${k} relative error ${(err / ref).toExponential(2)} (seed ${normals.seed})`,
    );
  }
}

const pads = (p: number) => [[0, 0], [p, p], [p, p], [0, 0]] as tf.backend_util.ExplicitPadding;

// [H, W, C, CO, K, stride, pad]: kernels 1/3/7, strides 1/2, even and odd sizes.
const CONV_CASES: [number, number, number, number, number, number, number][] = [
  [7, 7, 3, 4, 3, 1, 1],
  [8, 8, 3, 5, 3, 2, 1],
  [9, 9, 3, 5, 3, 2, 1],
  [9, 8, 2, 3, 3, 2, 0],
  [11, 10, 3, 4, 7, 2, 3],
  [12, 12, 2, 3, 7, 2, 3],
  [6, 6, 4, 3, 1, 2, 0],
  [7, 7, 4, 3, 1, 2, 0],
  [5, 6, 4, 3, 1, 1, 0],
  [6, 5, 3, 2, 3, 1, 0],
];

Deno.test("conv2d input and filter gradients match cpu (kernels 1/3/7, strides 1/2)", async () => {
  for (const [h, w, c, co, k, s, p] of CONV_CASES) {
    const oh = Math.floor((h + 2 * p - k) / s) + 1;
    const ow = Math.floor((w + 2 * p - k) / s) + 1;
    await compare(
      `conv ${h}x${w}x${c}->${co} k${k} s${s} p${p}`,
      [data(2, h, w, c), data(k, k, c, co), data(2, oh, ow, co)],
      (x, f, dy) => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pads(p))
        );
        return g([x, f], dy);
      },
    );
  }
});

Deno.test("conv2d backprop kernels with 'same' padding and a single image match cpu", async () => {
  await compare("same s2", [data(1, 9, 8, 3), data(3, 3, 3, 4), data(1, 5, 4, 4)], (x, f, dy) => [
    tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
      strides: [2, 2],
      pad: "same",
      dataFormat: "NHWC",
      inputShape: x.shape,
    }) as tf.Tensor,
    tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      strides: [2, 2],
      pad: "same",
      dataFormat: "NHWC",
      filterShape: f.shape,
    }) as tf.Tensor,
  ]);
});

Deno.test("conv2dTranspose 2x2 stride 2: forward and gradients match cpu", async () => {
  await compare(
    "convT",
    [data(2, 5, 4, 6), data(2, 2, 3, 6), data(2, 10, 8, 3)],
    (x, f, dy) => {
      const fwd = (a: tf.Tensor, b: tf.Tensor) =>
        tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, [2, 10, 8, 3], 2, "valid");
      return [fwd(x, f), ...tf.grads(fwd)([x, f], dy)];
    },
  );
});

Deno.test("matMul with every transpose combination (forward and gradients) matches cpu", async () => {
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]]) {
    const a = ta ? data(2, 7, 5) : data(2, 5, 7);
    const b = tb ? data(2, 3, 7) : data(2, 7, 3);
    await compare(`matMul ${ta} ${tb}`, [a, b, data(2, 5, 3)], (x, y, dy) => {
      const f = (p: tf.Tensor, q: tf.Tensor) => tf.matMul(p, q, ta, tb);
      return [f(x, y), ...tf.grads(f)([x, y], dy)];
    });
  }
  await compare("fused matMul", [data(6, 5), data(4, 5), data(4)], (x, w, bias) => {
    const f = (p: tf.Tensor, q: tf.Tensor) =>
      tf.fused.matMul({
        a: p as tf.Tensor2D,
        b: q as tf.Tensor2D,
        transposeB: true,
        bias,
        activation: "relu",
      });
    return [f(x, w), ...tf.grads(f)([x, w])];
  });
});

Deno.test("gather gradients (UnsortedSegmentSum) match cpu, with repeated indices", async () => {
  await compare("gather", [data(6, 4), data(5, 4), data(6, 3)], (x, dy, y) => {
    const idx = tf.tensor1d([0, 2, 2, 5, 0], "int32");
    const g0 = tf.grad((t: tf.Tensor) => tf.gather(t, idx))(x, dy);
    const g1 = tf.grad((t: tf.Tensor) => tf.gather(t, tf.tensor1d([2, 0, 2], "int32"), 1))(y);
    const seg = tf.unsortedSegmentSum(x, tf.tensor1d([3, -1, 0, 3, 7, 1], "int32"), 4);
    return [g0, g1, seg];
  });
});

Deno.test("pooling, resize, batch-norm-as-ops, relu and a loss: gradients match cpu", async () => {
  await compare("pool/resize/bn", [data(2, 9, 8, 3), data(3), data(3)], (x, gamma, beta) => {
    const f = (t: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const m = tf.moments(t, [0, 1, 2]);
      const bn = tf.add(tf.mul(tf.div(tf.sub(t, m.mean), tf.sqrt(tf.add(m.variance, 1e-5))), g), b);
      const r = tf.relu(bn) as tf.Tensor4D;
      const padded = tf.pad(r, pads(1), -Infinity) as tf.Tensor4D;
      const mp1 = tf.maxPool(padded, 3, 2, "valid");
      const mp2 = tf.maxPool(r, 3, 2, 1);
      const ap = tf.avgPool(r, 2, 2, "valid");
      const up = tf.image.resizeBilinear(ap, [9, 8]);
      const up2 = tf.image.resizeBilinear(ap, [7, 5], false, true);
      return tf.addN([
        tf.sum(tf.square(mp1)),
        tf.sum(tf.mul(mp2, 0.5)),
        tf.sum(tf.mul(up, r)),
        tf.sum(tf.abs(up2)),
        tf.mean(tf.logSoftmax(tf.reshape(r, [2, -1]))),
      ]);
    };
    return [f(x, gamma, beta), ...tf.grads(f)([x, gamma, beta])];
  });
});

Deno.test("max-pool gradients match cpu, with ties, odd sizes and every padding", async () => {
  // Values rounded to a few levels so that windows hold equal maxima (the first one wins).
  const ties = (...shape: number[]): Data => {
    const d = data(...shape);
    return { shape, values: d.values.map((v) => Math.round(v * 1.5) / 1.5) };
  };
  for (const [h, w, c] of [[9, 8, 3], [16, 16, 5], [7, 11, 2], [9, 10, 4], [6, 7, 8]]) {
    await compare(`maxPool ${h}x${w}x${c}`, [ties(2, h, w, c)], (x) => {
      const f = (t: tf.Tensor) =>
        tf.addN([
          tf.sum(tf.mul(tf.maxPool(t as tf.Tensor4D, 3, 2, 1), 1.5)),
          tf.sum(tf.square(tf.maxPool(t as tf.Tensor4D, 2, 2, "valid"))),
          tf.sum(tf.sin(tf.maxPool(t as tf.Tensor4D, [3, 2], [1, 2], "same"))),
        ]);
      return [f(x), ...tf.grads(f)([x])];
    });
  }
});

Deno.test("the wasm kernels free their intermediates", async () => {
  await initBackend("wasm");
  const x = tf.tensor(randn(2 * 9 * 9 * 3), [2, 9, 9, 3]) as tf.Tensor4D;
  const f = tf.tensor(randn(3 * 3 * 3 * 4), [3, 3, 3, 4]) as tf.Tensor4D;
  const step = () =>
    tf.tidy(() =>
      tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, pads(1))
      )([x, f])
    );
  tf.dispose(step());
  const tensors = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) tf.dispose(step());
  assert.equal(tf.memory().numTensors, tensors);
  const backend = tf.backend() as unknown as { dataIdMap: { numDataIds(): number } };
  assert.equal(backend.dataIdMap.numDataIds(), tensors);
  tf.dispose([x, f]);
});

Deno.test("max-pool gradient: SIMD windows equal the JavaScript loop bitwise (ties, -Infinity)", async () => {
  // C = 12 takes the SIMD kernel; each channel alone (C = 1) takes the JavaScript loop. Channels
  // are independent, so the two must agree bit for bit, overlapping windows included.
  await initBackend("wasm");
  const [N, H, W, C] = [2, 13, 12, 12];
  const values = randn(N * H * W * C).map((v, i) =>
    i % 89 === 0 ? -Infinity : Math.round(v * 2) / 2
  );
  const cases: [number | [number, number], number | [number, number], "valid" | "same" | number][] =
    [[3, 2, 1], [2, 2, "valid"], [[3, 2], [1, 2], "same"]];
  tf.tidy(() => {
    const x = tf.tensor4d(values, [N, H, W, C]);
    for (const [k, s, p] of cases) {
      const grad = (t: tf.Tensor4D, dy: tf.Tensor) =>
        tf.grad((u: tf.Tensor) => tf.maxPool(u as tf.Tensor4D, k, s, p))(t, dy);
      const shape = tf.maxPool(x, k, s, p).shape;
      const dy = tf.tensor(randn(shape.reduce((a, b) => a * b, 1)), shape);
      const all = grad(x, dy).dataSync();
      assert.ok(all.some((v) => v !== 0));
      for (let c = 0; c < C; c++) {
        const one = grad(
          tf.slice(x, [0, 0, 0, c], [N, H, W, 1]),
          tf.slice(dy, [0, 0, 0, c], [-1, -1, -1, 1]),
        ).dataSync();
        for (let i = 0; i < one.length; i++) {
          if (!Object.is(all[i * C + c], one[i])) {
            assert.fail(`${k}/${s}/${p}, channel ${c}, ${i}: ${all[i * C + c]} vs ${one[i]}`);
          }
        }
      }
    }
  });
});

Deno.test("Sum over all axes but the last (SIMD) equals the backend's own Sum bitwise", async () => {
  await initBackend("wasm");
  const mark = Symbol.for("covid-ssm.wasm-training-kernel");
  const config = tf.getKernel("Sum", "wasm") as unknown as Record<
    symbol,
    { original: tf.KernelConfig }
  >;
  const own = config[mark].original;
  const backend = tf.backend();
  for (
    const [shape, axis, keepDims] of [
      [[1, 37, 29, 64], [0, 1, 2], false],
      [[3, 3, 24, 16], [0, 1, 2], true],
      [[3, 3, 24, 16], [2, 1, 0], true], // another order: the backend's kernel
      [[1000, 12], [0], false],
      [[2, 5, 8], [-3, -2], false],
    ] as [number[], number[], boolean][]
  ) {
    tf.tidy(() => {
      // Values of very different magnitudes, so that the order of the additions shows.
      const values = randn(shape.reduce((a, b) => a * b, 1)).map((v, i) => v * 10 ** ((i % 7) - 3));
      const x = tf.tensor(values, shape);
      const ours = tf.sum(x, axis, keepDims);
      const info = own.kernelFunc({ inputs: { x }, backend, attrs: { axis, keepDims } } as never);
      const theirs = tf.engine().makeTensorFromTensorInfo(info as tf.TensorInfo);
      assert.deepEqual(ours.shape, theirs.shape, `${shape}`);
      assert.deepEqual(ours.dataSync(), theirs.dataSync(), `${shape} over ${axis}`);
    });
  }
  // Other sums still go to the backend's kernel: a plain check of one.
  assert.deepEqual(Array.from(tf.sum(tf.tensor2d([[1, 2], [3, 4]]), 1).dataSync()), [3, 7]);
});

Deno.test("a · bᵀ with a large b (computed as (b · aᵀ)ᵀ) equals the explicit transpose bitwise", async () => {
  await initBackend("wasm");
  tf.tidy(() => {
    for (const [m, k, n] of [[5, 7, 33], [37, 128, 300], [1, 16, 9]]) {
      const a = tf.tensor2d(randn(m * k), [m, k]);
      const b = tf.tensor2d(randn(n * k), [n, k]);
      const viaKernel = tf.matMul(a, b, false, true).dataSync();
      const explicit = tf.matMul(a, tf.transpose(b)).dataSync();
      assert.deepEqual(viaKernel, explicit, `[${m}, ${k}] · [${n}, ${k}]ᵀ`);
    }
    // A batch of one a against a batch of two b (broadcast): the general path, still correct.
    {
      const a = tf.tensor3d(randn(3 * 4), [1, 3, 4]);
      const b = tf.tensor3d(randn(2 * 6 * 4), [2, 6, 4]);
      const viaKernel = tf.matMul(a, b, false, true);
      assert.deepEqual(viaKernel.shape, [2, 3, 6]);
      assert.deepEqual(viaKernel.dataSync(), tf.matMul(a, tf.transpose(b, [0, 2, 1])).dataSync());
    }
  });
});
