import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import {
  GeneralizedRCNNTransform,
  normaliseGrey,
  postprocessBoxes,
  resizeBoxes,
} from "../lib/transform.ts";
import { fixture, normalSource, readFixtureJson } from "./_util.ts";

interface Arr {
  shape: number[];
  dtype: string;
  data: number[];
}
interface Case {
  name: string;
  params: Record<string, unknown>;
  inputs: Record<string, Arr | number[] | string | number[][]>;
  expected: Record<string, Arr | number | number[] | number[][]>;
}

const fx = readFixtureJson<{ cases: Case[] }>("components", "transform.json");

/** The fixture's formula image as NHWC [H, W, 3] data. */
function formulaImage(h: number, w: number): Float32Array {
  const out = new Float32Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        out[(y * w + x) * 3 + c] = Math.fround(((37 * x + 91 * y + 53 * c) % 251) / 250);
      }
    }
  }
  return out;
}

/** Float64 reference: normalise, bilinear (align_corners=False, scale in/out), zero-pad. */
function referenceTransform(
  img: Float32Array,
  h: number,
  w: number,
  nh: number,
  nw: number,
  ph: number,
  pw: number,
): Float64Array {
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const axis = (nIn: number, nOut: number) => {
    const i0 = new Int32Array(nOut), i1 = new Int32Array(nOut), l = new Float64Array(nOut);
    for (let d = 0; d < nOut; d++) {
      const src = Math.max((nIn / nOut) * (d + 0.5) - 0.5, 0);
      i0[d] = Math.floor(src);
      i1[d] = Math.min(i0[d] + 1, nIn - 1);
      l[d] = src - i0[d];
    }
    return { i0, i1, l };
  };
  const ay = axis(h, nh), ax = axis(w, nw);
  const out = new Float64Array(ph * pw * 3);
  const v = (y: number, x: number, c: number) => (img[(y * w + x) * 3 + c] - mean[c]) / std[c];
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      for (let c = 0; c < 3; c++) {
        const ly = ay.l[y], lx = ax.l[x];
        const top = (1 - lx) * v(ay.i0[y], ax.i0[x], c) + lx * v(ay.i0[y], ax.i1[x], c);
        const bot = (1 - lx) * v(ay.i1[y], ax.i0[x], c) + lx * v(ay.i1[y], ax.i1[x], c);
        out[(y * pw + x) * 3 + c] = (1 - ly) * top + ly * bot;
      }
    }
  }
  return out;
}

function checkCase(c: Case, backend: string) {
  const [, h, w] = c.inputs.shape_chw as number[];
  const img = formulaImage(h, w);
  for (const [cc, y, x, val] of c.inputs.formula_samples as number[][]) {
    assert.equal(img[(y * w + x) * 3 + cc], Math.fround(val), "formula sample");
  }
  const t = new GeneralizedRCNNTransform({ minSize: 512, maxSize: 1024 });
  const input = tf.tensor3d(img, [h, w, 3]);
  const out = t.forward(input);
  input.dispose();
  const e = c.expected;
  const what = `${c.name} on ${backend}`;
  assert.equal(out.scaleFactor, Math.fround(e.scale_factor as number), `${what}: scale`);
  assert.deepEqual(out.imageSize, e.resized_hw, `${what}: resized size`);
  assert.deepEqual([out.imageSize], e.image_sizes);
  assert.deepEqual(out.originalSize, [h, w]);
  const [n, ch, ph, pw] = e.batched_shape as number[];
  assert.deepEqual(out.images.shape, [n, ph, pw, ch], `${what}: batched shape`);
  const data = out.images.dataSync();
  out.images.dispose();

  let sum = 0, sum2 = 0, sumAbs = 0;
  const perC = [0, 0, 0];
  for (let i = 0; i < data.length; i++) {
    sum += data[i];
    sum2 += data[i] * data[i];
    sumAbs += Math.abs(data[i]);
    perC[i % 3] += data[i];
  }
  const eSumAbs = e.sum_abs as number;
  assert.ok(Math.abs(sum - (e.sum as number)) <= 1e-5 * eSumAbs, `${what}: sum ${sum}`);
  assert.ok(Math.abs(sumAbs - eSumAbs) <= 1e-5 * eSumAbs, `${what}: sum_abs`);
  const eSum2 = e.sum_of_squares as number;
  assert.ok(Math.abs(sum2 - eSum2) <= 1e-5 * eSum2, `${what}: sum_of_squares ${sum2} vs ${eSum2}`);
  (e.sum_per_channel as number[]).forEach((s, k) => {
    assert.ok(Math.abs(perC[k] - s) <= 1e-5 * eSumAbs, `${what}: sum channel ${k}`);
  });

  let maxErr = 0;
  const at = (cc: number, y: number, x: number) => data[(y * pw + x) * 3 + cc];
  const samples = e.samples_cyx as number[][], values = (e.sample_values as Arr).data;
  samples.forEach(([cc, y, x], k) => {
    maxErr = Math.max(maxErr, Math.abs(at(cc, y, x) - values[k]));
    assert.ok(Math.abs(at(cc, y, x) - values[k]) <= 1e-4, `${what}: sample ${[cc, y, x]}`);
  });
  for (const which of ["top_left", "bottom_right"]) {
    const [oy, ox] = e[`patch_${which}_origin_yx`] as number[];
    const patch = (e[`patch_${which}`] as Arr).data;
    for (let cc = 0; cc < 3; cc++) {
      for (let dy = 0; dy < 6; dy++) {
        for (let dx = 0; dx < 6; dx++) {
          const exp = patch[(cc * 6 + dy) * 6 + dx];
          maxErr = Math.max(maxErr, Math.abs(at(cc, oy + dy, ox + dx) - exp));
          assert.ok(Math.abs(at(cc, oy + dy, ox + dx) - exp) <= 1e-4, `${what}: patch ${which}`);
        }
      }
    }
  }

  // Independent float64 reference over the whole padded tensor.
  const [nh, nw] = out.imageSize;
  const ref = referenceTransform(img, h, w, nh, nw, ph, pw);
  let refErr = 0;
  for (let i = 0; i < ref.length; i++) refErr = Math.max(refErr, Math.abs(ref[i] - data[i]));
  assert.ok(refErr <= 2e-6, `${what}: max |tfjs - float64 reference| = ${refErr}`);

  // Boxes: forward resize and postprocess back to the original frame.
  const tb = resizeBoxes(
    Float32Array.from((c.inputs.target_boxes_original as Arr).data),
    [h, w],
    out.imageSize,
  );
  assert.deepEqual(
    [...tb],
    (e.target_boxes_resized as Arr).data.map(Math.fround),
    `${what}: boxes`,
  );
  const pb = postprocessBoxes(
    Float32Array.from((c.inputs.boxes_resized_for_postprocess as Arr).data),
    out.imageSize,
    [h, w],
  );
  const expPb = (e.boxes_postprocessed_to_original as Arr).data.map(Math.fround);
  assert.deepEqual([...pb], expPb, `${what}: postprocessed boxes`);
  return { maxErr, refErr };
}

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test({
    name: `transform matches torchvision GeneralizedRCNNTransform (transform.json, ${backend})`,
    ignore: !fx,
    async fn() {
      await initBackend(backend);
      for (const c of fx!.cases) {
        const before = tf.memory().numTensors;
        const { maxErr, refErr } = checkCase(c, backend);
        assert.equal(tf.memory().numTensors, before, "no leaked tensors");
        console.log(
          `${c.name} ${backend}: max err vs torch ${maxErr.toExponential(2)}, ` +
            `vs float64 ${refErr.toExponential(2)}`,
        );
      }
    },
  });
}

Deno.test("transform plan: short side to minSize unless the long side passes maxSize", async () => {
  await initBackend("cpu");
  const t = new GeneralizedRCNNTransform();
  assert.deepEqual(t.plan(373, 359).size, [531, 511]); // float32 scale, floor in float64
  assert.deepEqual(t.plan(300, 700).size, [438, 1023]);
  assert.deepEqual(t.plan(256, 256), { scaleFactor: 2, size: [512, 512] });
  assert.deepEqual(t.plan(100, 1000).size, [102, 1024]);
  assert.deepEqual(t.paddedSize([531, 511]), [544, 512]);
});

Deno.test("transform accepts greyscale {width,height,data} and replicates it to 3 channels", async () => {
  await initBackend("cpu");
  const t = new GeneralizedRCNNTransform({ minSize: 16, maxSize: 64, sizeDivisible: 16 });
  const u8 = new Uint8Array(16 * 16);
  for (let i = 0; i < u8.length; i++) u8[i] = (i * 37) % 256;
  const out = t.forward({ width: 16, height: 16, data: u8 });
  assert.deepEqual(out.images.shape, [1, 16, 16, 3]);
  const d = out.images.dataSync();
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  for (let i = 0; i < 256; i++) {
    for (let c = 0; c < 3; c++) {
      const exp = (u8[i] / 255 - mean[c]) / std[c];
      assert.ok(Math.abs(d[i * 3 + c] - exp) < 1e-5);
    }
  }
  out.images.dispose();
  // [1, H, W, 1] tensors are replicated too, and padding is zero in normalised space
  const t2 = new GeneralizedRCNNTransform({ minSize: 20, maxSize: 64 });
  const g = tf.fill([1, 10, 20, 1], 0.5) as tf.Tensor4D;
  const o2 = t2.forward(g);
  assert.deepEqual(o2.imageSize, [20, 40]);
  assert.deepEqual(o2.images.shape, [1, 32, 64, 3]);
  const d2 = o2.images.dataSync();
  assert.ok(Math.abs(d2[0] - (0.5 - 0.485) / 0.229) < 1e-6);
  assert.equal(d2[(25 * 64 + 50) * 3 + 1], 0);
  tf.dispose([g, o2.images]);
});

Deno.test("transform rejects malformed images with a message naming the problem", async () => {
  await initBackend("cpu");
  const t = new GeneralizedRCNNTransform();
  const bad = tf.zeros([2, 8, 8, 3]) as tf.Tensor4D;
  assert.throws(() => t.forward(bad), /\[1, H, W, 3\|1\]/);
  bad.dispose();
  assert.throws(() => t.forward({ width: 4, height: 4, data: new Uint8Array(3) }), /expected 16/);
  const i32 = tf.zeros([4, 4, 3], "int32") as tf.Tensor3D;
  assert.throws(() => t.forward(i32), /float32/);
  i32.dispose();
});

const ssmInput = fixture("ssm", "input_u8.bin");
const ssmDir = ssmInput && existsSync(ssmInput) ? dirname(ssmInput) : null;

Deno.test({
  name: "greyscale CT slice normalises like the SSM fixture (ssm preprocess.normalized)",
  ignore: !ssmDir,
  async fn() {
    await initBackend("wasm");
    const u8 = Deno.readFileSync(`${ssmDir}/input_u8.bin`);
    const expected = JSON.parse(Deno.readTextFileSync(`${ssmDir}/expected.json`));
    const stats = expected.preprocess.normalized;
    const out = new GeneralizedRCNNTransform().forward({ width: 512, height: 512, data: u8 });
    assert.deepEqual(out.imageSize, expected.preprocess.image_sizes[0]);
    assert.deepEqual(out.images.shape, [1, 512, 512, 3]);
    const d = out.images.dataSync();
    out.images.dispose();
    const values: number[] = stats.samples.value;
    (stats.samples.index as number[][]).forEach(([, c, y, x], k) => {
      const got = d[(y * 512 + x) * 3 + c];
      assert.ok(Math.abs(got - values[k]) <= 1e-6, `sample ${[c, y, x]}: ${got} vs ${values[k]}`);
    });
    let sum = 0, sum2 = 0;
    for (let i = 0; i < d.length; i++) {
      sum += d[i];
      sum2 += d[i] * d[i];
    }
    assert.ok(Math.abs(sum - stats.sum) <= 1e-5 * d.length * stats.abs_max, `sum ${sum}`);
    assert.ok(Math.abs(sum2 - stats.sum_sq) <= 1e-4 * stats.sum_sq, `sum_sq ${sum2}`);
  },
});

for (const backend of ["wasm", "cpu"] as const) {
  Deno.test(`greyscale normalisation equals concat + sub + div bitwise (${backend})`, async () => {
    await initBackend(backend);
    const src = normalSource(backend === "wasm" ? 61 : 67);
    const [h, w] = [33, 47];
    const grey = src.randn(h * w).map((v) => Math.abs(v) / 3);
    const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
    const want = tf.tidy(() => {
      const x = tf.tensor4d(grey, [1, h, w, 1]);
      return tf.div(tf.sub(tf.concat([x, x, x], 3), tf.tensor1d(mean)), tf.tensor1d(std))
        .dataSync();
    });
    const got = normaliseGrey(grey, mean, std);
    assert.equal(got.length, want.length);
    for (let i = 0; i < got.length; i++) {
      assert.ok(
        Object.is(got[i], want[i]),
        `element ${i}: ${got[i]} vs ${want[i]} (seed ${src.seed})`,
      );
    }
    // the transform takes this path for greyscale images and [1, H, W, 1] tensors
    const t = new GeneralizedRCNNTransform({ minSize: h, maxSize: 4 * w, sizeDivisible: 1 });
    for (const input of [{ width: w, height: h, data: grey }, tf.tensor4d(grey, [1, h, w, 1])]) {
      const out = t.forward(input);
      assert.deepEqual(Array.from(out.images.dataSync()), Array.from(want));
      tf.dispose([out.images, ...(input instanceof tf.Tensor ? [input] : [])]);
    }
  });
}
