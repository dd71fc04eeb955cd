import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { initBackend } from "../lib/backend/mod.ts";
import { Adam } from "../lib/train/adam.ts";

await initBackend("wasm");

// Hand-computed torch.optim.Adam (weight decay added to the gradient), float64.
function reference(p0: number[], grads: number[][], cfg: { lr: number; wd: number }) {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  const p = [...p0], m = p0.map(() => 0), v = p0.map(() => 0);
  const out: number[][] = [];
  grads.forEach((g, t) => {
    const step = t + 1;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] + cfg.wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      const denom = Math.sqrt(v[i]) / Math.sqrt(1 - b2 ** step) + eps;
      p[i] -= (cfg.lr / (1 - b1 ** step)) * m[i] / denom;
    }
    out.push([...p]);
  });
  return out;
}

Deno.test("Adam follows torch.optim.Adam step by step (weight decay in the gradient)", () => {
  const p0 = [0.5, -1.25, 2, 0];
  const grads = [[0.1, -0.2, 0.3, 0], [0.05, 0.4, -0.1, 1e-3], [-0.3, 0.0, 0.2, -2]];
  for (const cfg of [{ lr: 1e-3, wd: 0 }, { lr: 1e-2, wd: 1e-3 }, { lr: 1e-5, wd: 1e-3 }]) {
    const w = tf.variable(tf.tensor1d(p0));
    const opt = new Adam({ lr: cfg.lr, weightDecay: cfg.wd });
    const ref = reference(p0, grads, cfg);
    grads.forEach((g, t) => {
      const gt = tf.tensor1d(g);
      opt.step(new Map([["w", { variable: w, grad: gt }]]));
      gt.dispose();
      const got = Array.from(w.dataSync());
      for (let i = 0; i < p0.length; i++) {
        const delta = Math.abs(ref[t][i] - p0[i]) + 1e-12;
        // Compare the update (float32 parameters): relative to the size of the change.
        assert.ok(
          Math.abs(got[i] - ref[t][i]) <= 2e-4 * delta + 2e-7 * Math.abs(ref[t][i]) + 1e-9,
          `lr ${cfg.lr} step ${t + 1} [${i}]: ${got[i]} vs ${ref[t][i]}`,
        );
      }
    });
    assert.equal(opt.stepOf("w"), 3);
    opt.dispose();
    w.dispose();
  }
});

Deno.test("Adam steps each parameter only when it is updated, and its state round-trips", () => {
  const start = tf.memory().numTensors;
  const a = tf.tidy(() => tf.variable(tf.tensor1d([1, 2])));
  const b = tf.tidy(() => tf.variable(tf.tensor1d([3])));
  const opt = new Adam({ lr: 0.1, weightDecay: 0 });
  const g = tf.tensor1d([1, 1]);
  const h = tf.tensor1d([1]);
  opt.step(new Map([["a", { variable: a, grad: g }]]));
  opt.step(new Map([["a", { variable: a, grad: g }], ["b", { variable: b, grad: h }]]));
  assert.equal(opt.stepOf("a"), 2);
  assert.equal(opt.stepOf("b"), 1);
  // First Adam step moves by lr·sign(g) regardless of the gradient's size.
  assert.ok(Math.abs(b.dataSync()[0] - 2.9) < 1e-6);
  const state = opt.getState();
  const copy = new Adam();
  copy.setState(state);
  const a2 = tf.tidy(() => tf.variable(a.clone()));
  opt.step(new Map([["a", { variable: a, grad: g }]]));
  copy.step(new Map([["a", { variable: a2, grad: g }]]));
  assert.deepEqual(Array.from(a.dataSync()), Array.from(a2.dataSync()));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 5; i++) opt.step(new Map([["a", { variable: a, grad: g }]]));
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([a, b, g, h, a2]);
  opt.dispose();
  copy.dispose();
  assert.equal(tf.memory().numTensors, start, "optimiser state leaked after dispose");
});

Deno.test("a per-parameter learning rate equals an optimiser configured with that rate", () => {
  const start = tf.memory().numTensors;
  const a = tf.tidy(() => tf.variable(tf.tensor1d([0.5, -1])));
  const b = tf.tidy(() => tf.variable(tf.tensor1d([0.5, -1])));
  const g = tf.tensor1d([0.3, -0.2]);
  const shared = new Adam({ lr: 1e-4, weightDecay: 1e-3 });
  const own = new Adam({ lr: 1e-2, weightDecay: 1e-3 });
  for (let i = 0; i < 3; i++) {
    shared.step(new Map([["w", { variable: a, grad: g }]]), (n) => (n === "w" ? 1e-2 : undefined));
    own.step(new Map([["w", { variable: b, grad: g }]]));
  }
  assert.deepEqual(Array.from(a.dataSync()), Array.from(b.dataSync()));
  shared.step(new Map([["w", { variable: a, grad: g }]]), () => undefined);
  const c = tf.tidy(() => tf.variable(b.clone()));
  own.config = { ...own.config, lr: 1e-4 };
  own.step(new Map([["w", { variable: b, grad: g }]]));
  assert.deepEqual(
    Array.from(a.dataSync()),
    Array.from(b.dataSync()),
    "undefined falls back to lr",
  );
  tf.dispose([a, b, c, g]);
  shared.dispose();
  own.dispose();
  assert.equal(tf.memory().numTensors, start);
});

Deno.test("the fused Adam kernel equals the composed tfjs ops on wasm and cpu", async () => {
  const { fusedAdamAvailable } = await import("../lib/train/adam_kernel.ts");
  const rand = (n: number, seed: number) => {
    let s = seed >>> 0;
    return Float32Array.from({ length: n }, () => {
      s = (s * 1664525 + 1013904223) >>> 0;
      return s / 2 ** 31 - 1;
    });
  };
  const n = 1000;
  for (const backend of ["wasm", "cpu"]) {
    await tf.setBackend(backend);
    assert.ok(fusedAdamAvailable(), `fused kernel registered for ${backend}`);
    const start = tf.memory().numTensors;
    const results: Float32Array[][] = [];
    for (const fused of [true, false]) {
      const w = tf.tidy(() => tf.variable(tf.tensor1d(rand(n, 7))));
      const opt = new Adam({ lr: 1e-2, weightDecay: 1e-3 }, fused);
      const out: Float32Array[] = [];
      for (let t = 0; t < 5; t++) {
        const g = tf.tensor1d(rand(n, 100 + t));
        opt.step(new Map([["w", { variable: w, grad: g }]]));
        g.dispose();
        out.push(w.dataSync() as Float32Array);
      }
      const st = opt.getState().slots.w;
      out.push(st.m, st.v);
      results.push(out);
      opt.dispose();
      w.dispose();
    }
    results[0].forEach((a, k) => {
      const b = results[1][k];
      // Rounding only: within a few float32 ulps of the larger values of the tensor.
      const scale = b.reduce((mx, x) => Math.max(mx, Math.abs(x)), 0);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        worst = Math.max(worst, Math.abs(a[i] - b[i]) / (Math.abs(b[i]) + 1e-3 * scale));
      }
      assert.ok(worst < 1e-5, `${backend} output ${k}: relative difference ${worst}`);
    });
    assert.equal(tf.memory().numTensors, start, `${backend}: no tensors leak`);
  }
  await tf.setBackend("wasm");
});

Deno.test("the fused Adam kernel: wasm (SIMD on the heap) equals cpu (JavaScript) bitwise", async () => {
  const { fusedAdamUpdate } = await import("../lib/train/adam_kernel.ts");
  const { normalSource } = await import("./_util.ts");
  const src = normalSource(91);
  // Odd length (a last parameter outside the pairs), tiny and huge values, zeros.
  const n = 1001;
  const p = src.randn(n), g = src.randn(n).map((x, i) => (i % 17 === 0 ? x * 1e-20 : x));
  const m = src.randn(n).map((x) => x * 0.1), v = src.randn(n).map((x, i) => (i % 5 ? x * x : 0));
  g[3] = 0;
  p[7] = 1e30;
  const attrs = { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-4, step: 7 };
  const results: Float32Array[][] = [];
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    results.push(tf.tidy(() => {
      const out = fusedAdamUpdate(tf.tensor(p), tf.tensor(g), tf.tensor(m), tf.tensor(v), attrs);
      return [out.param, out.m, out.v].map((t) => t.dataSync() as Float32Array);
    }));
  }
  const [cpu, wasm] = results;
  cpu.forEach((r, k) => {
    assert.ok(r.some((x, i) => x !== [p, m, v][k][i]), "the update changes something");
    for (let i = 0; i < n; i++) {
      if (!Object.is(wasm[k][i], r[i])) {
        assert.fail(`output ${k}, ${i}: ${wasm[k][i]} vs ${r[i]} (seed ${src.seed})`);
      }
    }
  });
  await initBackend("wasm");
});
