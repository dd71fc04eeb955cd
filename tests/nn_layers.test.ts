// Layers with PyTorch semantics (lib/nn/layers.ts) against an independent float64 reference
// written from PyTorch's definitions, on fresh random inputs, on the wasm and cpu backends.
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import {
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  Linear,
  maxPool2d,
  type ParamLayout,
  tfShapeOf,
  tfToTorch,
  torchToTf,
} from "../lib/nn/mod.ts";
import { fusedBatchNormAvailable } from "../lib/nn/batch_norm_kernel.ts";

/** Seeded uniform [0,1) generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normals(n: number, r: () => number, mean = 0, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** Sets a layer parameter from PyTorch-layout values. */
function setTorch(v: tf.Variable, data: Float32Array, torchShape: number[], layout: ParamLayout) {
  const t = tf.tensor(torchToTf(data, torchShape, layout), tfShapeOf(torchShape, layout));
  v.assign(t);
  t.dispose();
}

/** Asserts |got - ref| <= tol[i] elementwise; reports the worst element. */
function assertClose(got: ArrayLike<number>, ref: ArrayLike<number>, tol: (i: number) => number) {
  assert.equal(got.length, ref.length, "length");
  let worst = -Infinity, at = -1;
  for (let i = 0; i < ref.length; i++) {
    const excess = Math.abs(got[i] - ref[i]) - tol(i);
    if (!(excess <= worst)) {
      worst = excess;
      at = i;
    }
  }
  assert.ok(
    worst <= 0,
    `element ${at}: got ${got[at]}, want ${ref[at]} (tolerance ${tol(at)})`,
  );
}

interface ConvCase {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  s: number;
  p: number;
  bias: boolean;
}

/** float64 reference of torch.nn.functional.conv2d on NHWC data with a torch-layout weight. */
function refConv2d(x: Float32Array, wt: Float32Array, b: Float32Array | null, c: ConvCase) {
  const ho = Math.floor((c.h + 2 * c.p - c.k) / c.s) + 1;
  const wo = Math.floor((c.w + 2 * c.p - c.k) / c.s) + 1;
  const out = new Float64Array(c.n * ho * wo * c.cout);
  const abs = new Float64Array(out.length);
  for (let n = 0; n < c.n; n++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let o = 0; o < c.cout; o++) {
          let s = b ? b[o] : 0, a = b ? Math.abs(b[o]) : 0;
          for (let ky = 0; ky < c.k; ky++) {
            const iy = oy * c.s - c.p + ky;
            if (iy < 0 || iy >= c.h) continue;
            for (let kx = 0; kx < c.k; kx++) {
              const ix = ox * c.s - c.p + kx;
              if (ix < 0 || ix >= c.w) continue;
              for (let ci = 0; ci < c.cin; ci++) {
                const t = x[((n * c.h + iy) * c.w + ix) * c.cin + ci] *
                  wt[((o * c.cin + ci) * c.k + ky) * c.k + kx];
                s += t;
                a += Math.abs(t);
              }
            }
          }
          const i = ((n * ho + oy) * wo + ox) * c.cout + o;
          out[i] = s;
          abs[i] = a;
        }
      }
    }
  }
  return { out, abs, shape: [c.n, ho, wo, c.cout] };
}

/** float64 reference of the conv2d gradients for upstream gradient g (NHWC). */
function refConv2dGrads(x: Float32Array, wt: Float32Array, g: Float32Array, c: ConvCase) {
  const ho = Math.floor((c.h + 2 * c.p - c.k) / c.s) + 1;
  const wo = Math.floor((c.w + 2 * c.p - c.k) / c.s) + 1;
  const dx = new Float64Array(x.length), dw = new Float64Array(wt.length);
  for (let n = 0; n < c.n; n++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        for (let o = 0; o < c.cout; o++) {
          const gv = g[((n * ho + oy) * wo + ox) * c.cout + o];
          for (let ky = 0; ky < c.k; ky++) {
            const iy = oy * c.s - c.p + ky;
            if (iy < 0 || iy >= c.h) continue;
            for (let kx = 0; kx < c.k; kx++) {
              const ix = ox * c.s - c.p + kx;
              if (ix < 0 || ix >= c.w) continue;
              for (let ci = 0; ci < c.cin; ci++) {
                const xi = ((n * c.h + iy) * c.w + ix) * c.cin + ci;
                const wi = ((o * c.cin + ci) * c.k + ky) * c.k + kx;
                dx[xi] += gv * wt[wi];
                dw[wi] += gv * x[xi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw };
}

const CONV_CASES: ConvCase[] = [
  { n: 2, h: 9, w: 10, cin: 5, cout: 4, k: 1, s: 1, p: 0, bias: true },
  { n: 1, h: 9, w: 8, cin: 6, cout: 7, k: 1, s: 2, p: 0, bias: false },
  { n: 2, h: 8, w: 8, cin: 3, cout: 5, k: 1, s: 2, p: 0, bias: true },
  { n: 2, h: 7, w: 10, cin: 4, cout: 6, k: 3, s: 1, p: 1, bias: true },
  { n: 1, h: 8, w: 8, cin: 4, cout: 3, k: 3, s: 2, p: 1, bias: false },
  { n: 2, h: 9, w: 11, cin: 3, cout: 4, k: 3, s: 2, p: 1, bias: true },
  { n: 1, h: 16, w: 16, cin: 3, cout: 4, k: 7, s: 2, p: 3, bias: false },
  { n: 1, h: 15, w: 12, cin: 3, cout: 2, k: 7, s: 2, p: 3, bias: true },
  { n: 1, h: 6, w: 5, cin: 2, cout: 3, k: 3, s: 1, p: 0, bias: true },
];

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`Conv2d matches a float64 conv2d with symmetric padding (${backend})`, async () => {
    await initBackend(backend);
    const r = rng(11);
    for (const c of CONV_CASES) {
      const conv = new Conv2d(c.cin, c.cout, c.k, { stride: c.s, padding: c.p, bias: c.bias });
      const wt = normals(c.cout * c.cin * c.k * c.k, r);
      const b = c.bias ? normals(c.cout, r) : null;
      setTorch(conv.weight, wt, [c.cout, c.cin, c.k, c.k], { kind: "conv" });
      if (b) conv.bias!.assign(tf.tensor1d(b));
      const x = normals(c.n * c.h * c.w * c.cin, r, 0.3);
      const ref = refConv2d(x, wt, b, c);
      const y = tf.tidy(() => conv.apply(tf.tensor4d(x, [c.n, c.h, c.w, c.cin])));
      assert.deepEqual(y.shape, ref.shape, `shape for ${JSON.stringify(c)}`);
      assertClose(y.dataSync(), ref.out, (i) => 1e-5 * ref.abs[i] + 1e-6);
      y.dispose();
      conv.dispose();
    }
  });

  Deno.test(`ConvTranspose2d k=s matches the PyTorch definition (${backend})`, async () => {
    await initBackend(backend);
    const r = rng(12);
    for (
      const [n, h, w, cin, cout, k] of [[2, 7, 5, 6, 4, 2], [1, 4, 4, 3, 5, 2], [1, 3, 2, 2, 3, 3]]
    ) {
      const ct = new ConvTranspose2d(cin, cout, k);
      const wt = normals(cin * cout * k * k, r); // torch [in, out, k, k]
      const b = normals(cout, r);
      setTorch(ct.weight, wt, [cin, cout, k, k], { kind: "convTranspose" });
      ct.bias.assign(tf.tensor1d(b));
      const x = normals(n * h * w * cin, r);
      const ref = new Float64Array(n * h * k * w * k * cout);
      const abs = new Float64Array(ref.length);
      for (let b0 = 0; b0 < n; b0++) {
        for (let i = 0; i < h; i++) {
          for (let j = 0; j < w; j++) {
            for (let a = 0; a < k; a++) {
              for (let bb = 0; bb < k; bb++) {
                for (let o = 0; o < cout; o++) {
                  let s = b[o], sa = Math.abs(b[o]);
                  for (let c = 0; c < cin; c++) {
                    const t = x[((b0 * h + i) * w + j) * cin + c] *
                      wt[((c * cout + o) * k + a) * k + bb];
                    s += t;
                    sa += Math.abs(t);
                  }
                  const idx = ((b0 * h * k + i * k + a) * w * k + j * k + bb) * cout + o;
                  ref[idx] = s;
                  abs[idx] = sa;
                }
              }
            }
          }
        }
      }
      const y = tf.tidy(() => ct.apply(tf.tensor4d(x, [n, h, w, cin])));
      assert.deepEqual(y.shape, [n, h * k, w * k, cout]);
      assertClose(y.dataSync(), ref, (i) => 1e-5 * abs[i] + 1e-6);
      y.dispose();
      ct.dispose();
    }
  });

  Deno.test(`BatchNorm2d train (batch stats, running update) and eval (${backend})`, async () => {
    await initBackend(backend);
    const r = rng(13);
    const [n, h, w, c] = [2, 5, 7, 6];
    const bn = new BatchNorm2d(c);
    const gamma = normals(c, r, 1, 0.3), beta = normals(c, r, 0, 0.5);
    const rm0 = normals(c, r), rv0 = normals(c, r, 2, 0.5).map(Math.abs);
    bn.weight.assign(tf.tensor1d(gamma));
    bn.bias.assign(tf.tensor1d(beta));
    bn.runningMean.assign(tf.tensor1d(rm0));
    bn.runningVar.assign(tf.tensor1d(rv0));
    const m = n * h * w;
    const rm = Float64Array.from(rm0), rv = Float64Array.from(rv0);
    bn.setTraining(true);
    for (let step = 0; step < 2; step++) {
      // channel c has mean 3c - 2 and std 0.5 + c so every channel's statistics differ
      const x = new Float32Array(m * c);
      for (let i = 0; i < m * c; i++) x[i] = 3 * (i % c) - 2 + (0.5 + (i % c)) * normals(1, r)[0];
      const mean = new Float64Array(c), varB = new Float64Array(c);
      for (let i = 0; i < m * c; i++) mean[i % c] += x[i] / m;
      for (let i = 0; i < m * c; i++) varB[i % c] += (x[i] - mean[i % c]) ** 2 / m;
      const y = tf.tidy(() => bn.apply(tf.tensor4d(x, [n, h, w, c])));
      const ref = new Float64Array(m * c);
      for (let i = 0; i < m * c; i++) {
        const k = i % c;
        ref[i] = (x[i] - mean[k]) / Math.sqrt(varB[k] + 1e-5) * gamma[k] + beta[k];
      }
      assertClose(y.dataSync(), ref, (i) => 2e-5 * (1 + Math.abs(ref[i])));
      y.dispose();
      for (let k = 0; k < c; k++) {
        rm[k] = 0.9 * rm[k] + 0.1 * mean[k];
        rv[k] = 0.9 * rv[k] + 0.1 * varB[k] * m / (m - 1); // unbiased variance
      }
      assertClose(bn.runningMean.dataSync(), rm, (k) => 1e-5 * (1 + Math.abs(rm[k])));
      assertClose(bn.runningVar.dataSync(), rv, (k) => 1e-5 * (1 + Math.abs(rv[k])));
    }
    bn.setTraining(false);
    const x = normals(m * c, r, 1, 2);
    const y = tf.tidy(() => bn.apply(tf.tensor4d(x, [n, h, w, c])));
    const ref = new Float64Array(m * c);
    for (let i = 0; i < m * c; i++) {
      const k = i % c;
      ref[i] = (x[i] - rm[k]) / Math.sqrt(rv[k] + 1e-5) * gamma[k] + beta[k];
    }
    assertClose(y.dataSync(), ref, (i) => 2e-5 * (1 + Math.abs(ref[i])));
    y.dispose();
    const before = bn.runningMean.dataSync().slice();
    tf.tidy(() => bn.apply(tf.tensor4d(x, [n, h, w, c])));
    assert.deepEqual(bn.runningMean.dataSync(), before, "eval mode must not touch the statistics");
    bn.dispose();
  });

  for (const [fused, act] of [[true, "linear"], [true, "relu"], [false, "relu"]] as const) {
    const how = `${fused ? "fused kernels" : "tfjs ops"}, ${act}`;
    Deno.test(`BatchNorm2d train-mode gradients match the analytic ones (${how}, ${backend})`, async () => {
      await initBackend(backend);
      const r = rng(14);
      const [n, h, w, c] = [2, 3, 4, 3];
      const m = n * h * w;
      const bn = new BatchNorm2d(c).setTraining(true);
      bn.fused = fused;
      assert.equal(fusedBatchNormAvailable(), true, `fused kernels registered on ${backend}`);
      const gamma = normals(c, r, 1, 0.3), beta = normals(c, r, 0, 0.5);
      bn.weight.assign(tf.tensor1d(gamma));
      bn.bias.assign(tf.tensor1d(beta));
      const x = normals(m * c, r, 0.5, 1.5), g0 = normals(m * c, r);
      const start = tf.memory().numTensors;
      const dx = tf.tidy(() =>
        tf.grad((xt: tf.Tensor) =>
          tf.sum(tf.mul(bn.apply(xt as tf.Tensor4D, act), tf.tensor4d(g0, [n, h, w, c])))
        )(tf.tensor4d(x, [n, h, w, c]))
      );
      const mean = new Float64Array(c), v = new Float64Array(c);
      for (let i = 0; i < m * c; i++) mean[i % c] += x[i] / m;
      for (let i = 0; i < m * c; i++) v[i % c] += (x[i] - mean[i % c]) ** 2 / m;
      // With a ReLU the upstream gradient passes only where the normalised output is positive.
      const g = g0.map((gi, i) => {
        const k = i % c, z = (x[i] - mean[k]) / Math.sqrt(v[k] + 1e-5) * gamma[k] + beta[k];
        return act === "relu" && z <= 0 ? 0 : gi;
      });
      if (act === "relu") assert.ok(g.some((gi, i) => gi !== g0[i]), "the ReLU masks something");
      const gm = new Float64Array(c), gxm = new Float64Array(c);
      for (let i = 0; i < m * c; i++) {
        const k = i % c, xh = (x[i] - mean[k]) / Math.sqrt(v[k] + 1e-5);
        gm[k] += g[i] / m;
        gxm[k] += g[i] * xh / m;
      }
      const ref = new Float64Array(m * c);
      for (let i = 0; i < m * c; i++) {
        const k = i % c, s = Math.sqrt(v[k] + 1e-5), xh = (x[i] - mean[k]) / s;
        ref[i] = gamma[k] / s * (g[i] - gm[k] - xh * gxm[k]);
      }
      assertClose(dx.dataSync(), ref, () => 1e-4);
      // Parameter gradients through the module's variables.
      const { value, grads } = tf.variableGrads(
        () =>
          tf.sum(
            tf.mul(bn.apply(tf.tensor4d(x, [n, h, w, c]), act), tf.tensor4d(g0, [n, h, w, c])),
          ),
        [bn.weight, bn.bias],
      );
      assertClose(grads[bn.weight.name].dataSync(), gxm.map((v) => v * m), () => 1e-4);
      assertClose(grads[bn.bias.name].dataSync(), gm.map((v) => v * m), () => 1e-4);
      // All three in one backward (the fused gradient kernels share one reduction pass), twice
      // with different upstream gradients so that a stale shared reduction would show.
      const x0 = tf.tensor4d(x, [n, h, w, c]);
      const xv = tf.variable(x0);
      for (const scale of [1, -2]) {
        const all = tf.variableGrads(
          () => tf.sum(tf.mul(bn.apply(xv, act), tf.mul(tf.tensor4d(g0, [n, h, w, c]), scale))),
          [xv, bn.weight, bn.bias],
        );
        assertClose(all.grads[xv.name].dataSync(), ref.map((v) => v * scale), () => 1e-4);
        assertClose(
          all.grads[bn.weight.name].dataSync(),
          gxm.map((v) => v * m * scale),
          () => 1e-4,
        );
        assertClose(all.grads[bn.bias.name].dataSync(), gm.map((v) => v * m * scale), () => 1e-4);
        tf.dispose([all.value, ...Object.values(all.grads)]);
      }
      tf.dispose([xv, x0]);
      tf.dispose([dx, value, ...Object.values(grads)]);
      assert.equal(tf.memory().numTensors, start, "no tensors leak");
      bn.dispose();
    });
  }

  Deno.test(`Conv2d gradients with symmetric padding match float64 (${backend})`, async () => {
    await initBackend(backend);
    if (!tf.getKernel("Conv2DBackpropFilter", tf.getBackend())) {
      console.warn(`skipping on ${backend}: no Conv2DBackpropFilter kernel registered`);
      return;
    }
    const r = rng(15);
    for (const c of CONV_CASES.filter((c) => c.s === 2)) {
      const conv = new Conv2d(c.cin, c.cout, c.k, { stride: c.s, padding: c.p, bias: false });
      const wt = normals(c.cout * c.cin * c.k * c.k, r);
      setTorch(conv.weight, wt, [c.cout, c.cin, c.k, c.k], { kind: "conv" });
      const x = normals(c.n * c.h * c.w * c.cin, r);
      const ho = Math.floor((c.h + 2 * c.p - c.k) / c.s) + 1;
      const wo = Math.floor((c.w + 2 * c.p - c.k) / c.s) + 1;
      const g = normals(c.n * ho * wo * c.cout, r);
      const { dx, dw } = refConv2dGrads(x, wt, g, c);
      const xt = tf.tensor4d(x, [c.n, c.h, c.w, c.cin]);
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(conv.apply(xt), tf.tensor(g, [c.n, ho, wo, c.cout]))) as tf.Scalar,
        [conv.weight],
      );
      const gx = tf.grad((t: tf.Tensor) =>
        tf.sum(tf.mul(conv.apply(t as tf.Tensor4D), tf.tensor(g, [c.n, ho, wo, c.cout])))
      )(xt);
      assertClose(gx.dataSync(), dx, (i) => 1e-4 * (1 + Math.abs(dx[i])));
      const dwTorch = tfToTorch(
        grads[conv.weight.name].dataSync() as Float32Array,
        [c.cout, c.cin, c.k, c.k],
        { kind: "conv" },
      );
      assertClose(dwTorch, dw, (i) => 1e-4 * (1 + Math.abs(dw[i])));
      tf.dispose([value, gx, xt, ...Object.values(grads)]);
      conv.dispose();
    }
  });

  Deno.test(`Linear and linearFromNCHW match PyTorch semantics (${backend})`, async () => {
    await initBackend(backend);
    const r = rng(16);
    // plain linear: y = x Wᵀ + b with torch W [out, in]
    const [rows, fin, fout] = [3, 7, 5];
    const lin = new Linear(fin, fout);
    const wt = normals(fout * fin, r), b = normals(fout, r), x = normals(rows * fin, r);
    setTorch(lin.weight, wt, [fout, fin], { kind: "linear" });
    lin.bias.assign(tf.tensor1d(b));
    const ref = new Float64Array(rows * fout), abs = new Float64Array(rows * fout);
    for (let i = 0; i < rows; i++) {
      for (let o = 0; o < fout; o++) {
        let s = b[o], a = Math.abs(b[o]);
        for (let k = 0; k < fin; k++) {
          s += x[i * fin + k] * wt[o * fin + k];
          a += Math.abs(x[i * fin + k] * wt[o * fin + k]);
        }
        ref[i * fout + o] = s;
        abs[i * fout + o] = a;
      }
    }
    const y = tf.tidy(() => lin.apply(tf.tensor2d(x, [rows, fin])));
    assertClose(y.dataSync(), ref, (i) => 1e-5 * abs[i] + 1e-6);
    y.dispose();
    lin.dispose();

    // linearFromNCHW: torch consumes the NCHW flatten k = c*H*W + y*W + x of a [C,H,W] map;
    // the toolkit feeds the NHWC flatten of the same map.
    const [R, C, H, W, O] = [4, 5, 3, 2, 6];
    const layout: ParamLayout = { kind: "linearFromNCHW", channels: C, height: H, width: W };
    const fc = new Linear(C * H * W, O, { layout });
    const w6 = normals(O * C * H * W, r), b6 = normals(O, r);
    setTorch(fc.weight, w6, [O, C * H * W], layout);
    fc.bias.assign(tf.tensor1d(b6));
    const feat = normals(R * H * W * C, r); // NHWC [R, H, W, C]
    const ref6 = new Float64Array(R * O), abs6 = new Float64Array(R * O);
    for (let i = 0; i < R; i++) {
      for (let o = 0; o < O; o++) {
        let s = b6[o], a = Math.abs(b6[o]);
        for (let c = 0; c < C; c++) {
          for (let yy = 0; yy < H; yy++) {
            for (let xx = 0; xx < W; xx++) {
              const t = w6[o * C * H * W + c * H * W + yy * W + xx] *
                feat[((i * H + yy) * W + xx) * C + c];
              s += t;
              a += Math.abs(t);
            }
          }
        }
        ref6[i * O + o] = s;
        abs6[i * O + o] = a;
      }
    }
    const y6 = tf.tidy(() => fc.apply(tf.tensor2d(feat, [R, H * W * C])));
    assertClose(y6.dataSync(), ref6, (i) => 1e-5 * abs6[i] + 1e-6);
    y6.dispose();
    // the exported torch weight is the original one, bit for bit
    assert.deepEqual(
      tfToTorch(fc.weight.dataSync() as Float32Array, [O, C * H * W], layout),
      w6,
    );
    fc.dispose();
  });

  Deno.test(`maxPool2d pads with -inf like nn.MaxPool2d (${backend})`, async () => {
    await initBackend(backend);
    const r = rng(17);
    for (
      const [n, h, w, c, k, s, p] of [
        [1, 8, 8, 3, 3, 2, 1],
        [2, 9, 7, 2, 3, 2, 1],
        [1, 10, 5, 2, 2, 2, 0],
        [1, 6, 6, 1, 3, 1, 1],
      ]
    ) {
      // strictly negative inputs: zero padding would show up as zeros in border outputs
      const x = normals(n * h * w * c, r, -5, 1).map((v) => -Math.abs(v) - 0.01);
      const ho = Math.floor((h + 2 * p - k) / s) + 1, wo = Math.floor((w + 2 * p - k) / s) + 1;
      const ref = new Float32Array(n * ho * wo * c);
      for (let b = 0; b < n; b++) {
        for (let oy = 0; oy < ho; oy++) {
          for (let ox = 0; ox < wo; ox++) {
            for (let ch = 0; ch < c; ch++) {
              let m = -Infinity;
              for (let ky = 0; ky < k; ky++) {
                for (let kx = 0; kx < k; kx++) {
                  const iy = oy * s - p + ky, ix = ox * s - p + kx;
                  if (iy >= 0 && iy < h && ix >= 0 && ix < w) {
                    m = Math.max(m, x[((b * h + iy) * w + ix) * c + ch]);
                  }
                }
              }
              ref[((b * ho + oy) * wo + ox) * c + ch] = m;
            }
          }
        }
      }
      const y = tf.tidy(() => maxPool2d(tf.tensor4d(x, [n, h, w, c]), k, s, p));
      assert.deepEqual(y.shape, [n, ho, wo, c], `shape k${k} s${s} p${p} ${h}x${w}`);
      assert.deepEqual(y.dataSync(), ref, `values k${k} s${s} p${p} ${h}x${w}`);
      y.dispose();
    }
  });
}

Deno.test("torchToTf / tfToTorch are inverse permutations for every layout", () => {
  const r = rng(18);
  const cases: [number[], ParamLayout][] = [
    [[4, 3, 2, 5], { kind: "conv" }],
    [[3, 4, 2, 2], { kind: "convTranspose" }],
    [[5, 7], { kind: "linear" }],
    [[3, 2 * 3 * 4], { kind: "linearFromNCHW", channels: 2, height: 3, width: 4 }],
    [[6], { kind: "identity" }],
  ];
  for (const [shape, layout] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const w = normals(n, r);
    const t = torchToTf(w, shape, layout);
    assert.deepEqual(tfToTorch(t, shape, layout), w, layout.kind);
    // a distinct-valued tensor is really permuted (except identity)
    if (layout.kind !== "identity") assert.notDeepEqual(t, w, layout.kind);
  }
  // conv: tf[kh][kw][in][out] = torch[out][in][kh][kw]
  const idx = Float32Array.from({ length: 4 * 3 * 2 * 5 }, (_, i) => i);
  const t = torchToTf(idx, [4, 3, 2, 5], { kind: "conv" });
  assert.equal(t[((1 * 5 + 3) * 3 + 2) * 4 + 1], ((1 * 3 + 2) * 2 + 1) * 5 + 3);
  assert.throws(() => torchToTf(idx, [4, 30], { kind: "conv" }), /rank-4/);
});

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`Conv2d without bias: the plain conv equals the fused op bitwise, gradients too (${backend})`, async () => {
    await initBackend(backend);
    const r = rng(backend === "wasm" ? 101 : 103);
    const conv = new Conv2d(3, 8, 7, { stride: 2, padding: 3, bias: false });
    conv.weight.assign(tf.tensor4d(normals(7 * 7 * 3 * 8, r), [7, 7, 3, 8]));
    const x = tf.tensor4d(normals(2 * 19 * 17 * 3, r), [2, 19, 17, 3]);
    const fused = (a: tf.Tensor, w: tf.Tensor) =>
      tf.fused.conv2d({
        x: a as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 2,
        pad: [[0, 0], [3, 3], [3, 3], [0, 0]],
      });
    const plain = (a: tf.Tensor, w: tf.Tensor) => {
      const saved = conv.weight;
      (conv as { weight: tf.Tensor }).weight = w;
      try {
        return conv.apply(a as tf.Tensor4D);
      } finally {
        (conv as { weight: tf.Tensor }).weight = saved;
      }
    };
    const dy = tf.tensor4d(normals(2 * 10 * 9 * 8, r), [2, 10, 9, 8]);
    const run = (f: (a: tf.Tensor, w: tf.Tensor) => tf.Tensor) =>
      tf.tidy(() =>
        [f(x, conv.weight), ...tf.grads(f)([x, conv.weight], dy)].map((t) => t.dataSync())
      );
    const [a, b] = [run(plain), run(fused)];
    a.forEach((v, k) => {
      assert.ok(v.some((e) => e !== 0));
      assert.deepEqual(v, b[k], `output ${k}`);
    });
    tf.dispose([x, dy]);
    conv.dispose();
  });
}
