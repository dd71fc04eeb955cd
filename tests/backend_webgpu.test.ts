// A small conv net's forward and backward pass on webgpu matches wasm (skipped without an adapter).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";

async function adapterAvailable(): Promise<boolean> {
  // deno-lint-ignore no-explicit-any
  const gpu = (navigator as any).gpu;
  if (!gpu) return false;
  try {
    return (await gpu.requestAdapter()) != null;
  } catch {
    return false;
  }
}

const hasAdapter = await adapterAvailable();
if (!hasAdapter) {
  console.warn(
    "skipping webgpu tests: no WebGPU adapter (install mesa-vulkan-drivers and set XDG_RUNTIME_DIR)",
  );
}

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

const SHAPES: Record<string, number[]> = {
  x: [2, 16, 16, 3],
  w1: [3, 3, 3, 8],
  gamma: [8],
  beta: [8],
  w2: [3, 3, 8, 8],
  dense: [4 * 4 * 8, 3],
};

/** conv s1 -> batch norm (ops) -> relu -> conv s2 -> relu -> maxpool 3x3/2 -> dense -> CE loss. */
function loss(p: Record<string, tf.Tensor>): tf.Scalar {
  const pad1 = [[0, 0], [1, 1], [1, 1], [0, 0]] as tf.backend_util.ExplicitPadding;
  let h = tf.conv2d(p.x as tf.Tensor4D, p.w1 as tf.Tensor4D, 1, pad1);
  const m = tf.moments(h, [0, 1, 2]);
  h = tf.add(tf.mul(tf.div(tf.sub(h, m.mean), tf.sqrt(tf.add(m.variance, 1e-5))), p.gamma), p.beta);
  h = tf.relu(h);
  h = tf.relu(tf.conv2d(h, p.w2 as tf.Tensor4D, 2, pad1));
  h = tf.maxPool(tf.pad(h, pad1, -Infinity) as tf.Tensor4D, 3, 2, "valid");
  const logits = tf.matMul(tf.reshape(h, [2, -1]), p.dense);
  const labels = tf.oneHot(tf.tensor1d([0, 2], "int32"), 3);
  return tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(logits)), 1)));
}

async function run(backend: "webgpu" | "wasm"): Promise<Record<string, Float32Array>> {
  await initBackend(backend);
  const params: Record<string, tf.Tensor> = {};
  let seed = 11;
  for (const [k, shape] of Object.entries(SHAPES)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = randn(n, seed++);
    if (k === "gamma") v.forEach((x, i) => (v[i] = 1 + 0.1 * x));
    params[k] = tf.tensor(v, shape);
  }
  const names = Object.keys(SHAPES).filter((k) => k !== "x");
  const f = (...ws: tf.Tensor[]) =>
    loss({ ...params, ...Object.fromEntries(names.map((k, i) => [k, ws[i]])) });
  const { value, grads } = tf.valueAndGrads(f)(names.map((k) => params[k]));
  const out: Record<string, Float32Array> = { loss: await value.data() as Float32Array };
  for (let i = 0; i < names.length; i++) out[names[i]] = await grads[i].data() as Float32Array;
  tf.dispose([value, ...grads, ...Object.values(params)]);
  return out;
}

Deno.test({
  name: "a conv net's loss and gradients on webgpu match wasm within 1e-3",
  ignore: !hasAdapter,
  fn: async () => {
    const gpu = await run("webgpu");
    const ref = await run("wasm");
    for (const k of Object.keys(ref)) {
      let err = 0;
      let mag = 0;
      for (let i = 0; i < ref[k].length; i++) {
        err = Math.max(err, Math.abs(gpu[k][i] - ref[k][i]));
        mag = Math.max(mag, Math.abs(ref[k][i]));
      }
      assert.ok(mag > 0, `${k}: reference is all zeros`);
      assert.ok(err / mag <= 1e-3, `${k}: relative error ${(err / mag).toExponential(2)}`);
    }
    await initBackend("wasm");
  },
});
