// ResNet + single-level FPN backbone: names/shapes/counts against the ssm fixture's state dict
// list and torchvision's published parameter counts; parity of every stage against PyTorch.
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { loadBackboneImageNet, resnetFpnBackbone } from "../lib/backbone.ts";
import { loadWeights, stateDict, writeSafetensors } from "../lib/nn/mod.ts";
import type { HostTensor } from "../lib/nn/mod.ts";
import { fixture, fixturesDir } from "./_util.ts";

const haveFixtures = fixturesDir() !== null;

interface Stats {
  shape: number[];
  sum: number;
  sum_sq: number;
  min: number;
  max: number;
  abs_max: number;
  samples: { flat_index: number[]; index: number[][]; value: number[] };
}

Deno.test("ResNet18 3-stage backbone names and shapes equal the fixture's backbone.* list", async () => {
  await initBackend("wasm");
  const path = fixture("ssm", "state_dict_shapes.txt");
  if (!path) return;
  const want = Deno.readTextFileSync(path).split("\n")
    .filter((l) => l.startsWith("backbone."))
    .map((l) => l.split("\t").slice(0, 2).join(" "));
  const bb = resnetFpnBackbone({ depth: 18, stages: 3 });
  const got = bb.namedParameters("backbone.").map(([n, p]) =>
    `${n} ${p.torchShape.length ? p.torchShape.join("x") : ""}`
  );
  assert.deepEqual(got, want);
  assert.equal(bb.body.numParameters(), 2_782_784);
  assert.equal(bb.fpn.numParameters(), 655_872);
  assert.equal(bb.stride, 16);
  assert.equal(bb.outChannels, 256);
  bb.dispose();
});

Deno.test("full-depth bodies have torchvision's parameter counts (minus fc)", async () => {
  await initBackend("wasm");
  // torchvision resnet18/34/50 totals 11 689 512 / 21 797 672 / 25 557 032, fc = 513 000 / 513 000
  // / 2 049 000 parameters.
  for (
    const [depth, want] of [[18, 11_176_512], [34, 21_284_672], [50, 23_508_032]] as const
  ) {
    const bb = resnetFpnBackbone({ depth, stages: 4 });
    assert.equal(bb.body.numParameters(), want, `resnet${depth}`);
    assert.equal(bb.body.outChannels, depth === 50 ? 2048 : 512);
    bb.dispose();
  }
});

Deno.test("initialisation follows torchvision (kaiming fan_out / BN 1,0 / FPN kaiming a=1)", async () => {
  await initBackend("wasm");
  const bb = resnetFpnBackbone({ depth: 18, stages: 2, seed: 3 });
  const p = new Map(bb.namedParameters());
  const std = (name: string) => {
    const d = Array.from(p.get(name)!.variable.dataSync() as Float32Array);
    const m = d.reduce((a, b) => a + b, 0) / d.length;
    return { mean: m, std: Math.sqrt(d.reduce((a, b) => a + (b - m) ** 2, 0) / d.length), d };
  };
  // layer2.0.conv2: [128,128,3,3], fan_out = 1152: std sqrt(2/1152) = 0.04167
  const c = std("body.layer2.0.conv2.weight");
  assert.ok(Math.abs(c.std / Math.sqrt(2 / 1152) - 1) < 0.02, `conv std ${c.std}`);
  assert.ok(Math.abs(c.mean) < 0.002);
  // inner 1x1 conv 128->256, fan_in 128, a = 1: U(±sqrt(3/128)) has std sqrt(1/128)
  const f = std("fpn.inner_blocks.0.weight");
  const bound = Math.sqrt(3 / 128);
  assert.ok(f.d.every((v) => Math.abs(v) <= bound), "FPN weights inside the uniform bound");
  assert.ok(Math.abs(f.std / Math.sqrt(1 / 128) - 1) < 0.02, `fpn std ${f.std}`);
  for (const n of ["fpn.inner_blocks.0.bias", "fpn.layer_blocks.0.bias", "body.bn1.bias"]) {
    assert.ok(p.get(n)!.variable.dataSync().every((v) => v === 0), n);
  }
  assert.ok(p.get("body.layer1.1.bn2.weight")!.variable.dataSync().every((v) => v === 1));
  assert.ok(p.get("body.layer1.1.bn2.running_var")!.variable.dataSync().every((v) => v === 1));
  // same seed → same weights; another seed → different weights
  const again = resnetFpnBackbone({ depth: 18, stages: 2, seed: 3 });
  const other = resnetFpnBackbone({ depth: 18, stages: 2, seed: 4 });
  const w = (m: typeof bb) => m.body.conv1.weight.dataSync();
  assert.deepEqual(w(again), w(bb));
  assert.notDeepEqual(w(other), w(bb));
  [bb, again, other].forEach((m) => m.dispose());
});

Deno.test("stage shapes and strides for 2, 3 and 4 stages", async () => {
  await initBackend("wasm");
  for (const [stages, stride, ch] of [[2, 8, 128], [3, 16, 256], [4, 32, 512]] as const) {
    const bb = resnetFpnBackbone({ depth: 18, stages, fpnChannels: 32 });
    assert.equal(bb.stride, stride);
    assert.equal(bb.body.outChannels, ch);
    const x = tf.randomNormal([1, 64, 96, 3], 0, 1, "float32", 1) as tf.Tensor4D;
    const s = bb.forwardStages(x);
    assert.deepEqual(s.stem.shape, [1, 16, 24, 64]);
    assert.deepEqual(s.layer2.shape, [1, 8, 12, 128]);
    assert.deepEqual(s.fpn.shape, [1, 64 / stride, 96 / stride, 32]);
    assert.equal(s.layer3 !== undefined, stages >= 3);
    assert.equal(s.layer4 !== undefined, stages >= 4);
    const y = bb.forward(x);
    assert.deepEqual(y.dataSync(), s.fpn.dataSync());
    tf.dispose([x, y, ...Object.values(s)]);
    bb.dispose();
  }
});

Deno.test("loadBackboneImageNet maps torchvision ResNet names and ignores fc / layer4", async () => {
  await initBackend("wasm");
  const src = resnetFpnBackbone({ depth: 18, stages: 3, seed: 7 });
  // torchvision resnet18 state dict: body names without prefix, plus layer4, fc and counters
  const sd = stateDict(src.body);
  sd.set("layer4.0.conv1.weight", {
    shape: [512, 256, 3, 3],
    data: new Float32Array(512 * 256 * 9),
    dtype: "F32",
  });
  sd.set("layer4.1.bn2.running_var", { shape: [512], data: new Float32Array(512), dtype: "F32" });
  sd.set("fc.weight", { shape: [1000, 512], data: new Float32Array(512_000), dtype: "F32" });
  sd.set("fc.bias", { shape: [1000], data: new Float32Array(1000), dtype: "F32" });
  sd.set("bn1.num_batches_tracked", { shape: [], data: new Float32Array(1), dtype: "I64" });
  const dir = Deno.makeTempDirSync();
  const path = join(dir, "resnet18.safetensors");
  writeSafetensors(path, sd);
  const dst = resnetFpnBackbone({ depth: 18, stages: 3, seed: 8 });
  const fpnBefore = dst.fpn.layer.weight.dataSync().slice();
  const rep = loadBackboneImageNet(dst, path);
  assert.equal(rep.missing.length, 0);
  assert.equal(rep.loaded, dst.body.namedParameters().length);
  const srcParams = new Map(src.body.namedParameters());
  for (const [n, p] of dst.body.namedParameters()) {
    assert.deepEqual(p.variable.dataSync(), srcParams.get(n)!.variable.dataSync(), n);
  }
  assert.deepEqual(dst.fpn.layer.weight.dataSync(), fpnBefore, "FPN untouched");
  // a file missing a body tensor, or holding a foreign name, is rejected with the names
  const bad = new Map<string, HostTensor>(sd);
  bad.delete("layer3.1.bn2.running_var");
  bad.set("classifier.weight", { shape: [2], data: new Float32Array(2), dtype: "F32" });
  writeSafetensors(path, bad);
  assert.throws(() => loadBackboneImageNet(dst, path), /classifier\.weight/);
  bad.delete("classifier.weight");
  writeSafetensors(path, bad);
  assert.throws(() => loadBackboneImageNet(dst, path), /missing.*layer3\.1\.bn2\.running_var/);
  Deno.removeSync(dir, { recursive: true });
  src.dispose();
  dst.dispose();
});

Deno.test({
  name: "backbone parity with PyTorch on the ssm fixture (wasm)",
  ignore: !haveFixtures,
  fn: async () => {
    await initBackend("wasm");
    const expected = JSON.parse(Deno.readTextFileSync(fixture("ssm", "expected.json")!)) as {
      preprocess: { normalized: Stats };
      backbone: Record<string, Stats>;
    };
    const u8 = Deno.readFileSync(fixture("ssm", "input_u8.bin")!);
    const H = 512, W = 512;
    assert.equal(u8.length, H * W);
    // x = float32(u8)/255 on 3 channels, then (x - mean[c]) / std[c] in float32, as torchvision
    const mean = [0.485, 0.456, 0.406].map(Math.fround);
    const std = [0.229, 0.224, 0.225].map(Math.fround);
    const norm = new Float32Array(H * W * 3);
    for (let i = 0; i < H * W; i++) {
      const x = Math.fround(u8[i] / 255);
      for (let c = 0; c < 3; c++) norm[i * 3 + c] = Math.fround(x - mean[c]) / std[c];
    }
    compareStats("preprocess.normalized", norm, [1, H, W, 3], expected.preprocess.normalized, 1e-6);

    const bb = resnetFpnBackbone({ depth: 18, stages: 3 });
    const rep = loadWeights(bb, fixture("ssm", "weights.safetensors")!, { prefix: "backbone." });
    assert.equal(rep.loaded, 79); // 75 body + 4 FPN tensors
    const x = tf.tensor4d(norm, [1, H, W, 3]);
    const s = bb.forwardStages(x);
    const outs: [string, tf.Tensor4D][] = [
      ["stem", s.stem],
      ["layer1", s.layer1],
      ["layer2", s.layer2],
      ["layer3", s.layer3!],
      ["fpn_0", s.fpn],
    ];
    for (const [key, t] of outs) {
      compareStats(
        `backbone.${key}`,
        t.dataSync() as Float32Array,
        t.shape,
        expected.backbone[key],
      );
    }
    tf.dispose([x, ...Object.values(s)]);

    // timing of the plain forward pass (after a warm-up run above)
    const t0 = performance.now();
    const y = bb.forward(tf.tidy(() => tf.tensor4d(norm, [1, H, W, 3])));
    await y.data();
    console.log(`backbone forward 512x512 on wasm: ${(performance.now() - t0).toFixed(0)} ms`);
    y.dispose();
    bb.dispose();
  },
});

/**
 * Compares an NHWC tensor with fixture stats of the NCHW tensor: shape, sum (tolerance 1e-5 of
 * numel·abs_max), sum_sq (rel 1e-4), min/max, and the 50 samples by index (1e-5·abs_max + 1e-6,
 * or `sampleTol` when given).
 */
function compareStats(
  what: string,
  data: Float32Array,
  nhwc: number[],
  want: Stats,
  sampleTol?: number,
) {
  const [n, c, h, w] = want.shape;
  assert.deepEqual(nhwc, [n, h, w, c], `${what}: shape`);
  let sum = 0, sumSq = 0, min = Infinity, max = -Infinity;
  for (const v of data) {
    sum += v;
    sumSq += v * v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const numel = data.length;
  const tolS = sampleTol ?? 1e-5 * want.abs_max + 1e-6;
  assert.ok(
    Math.abs(sum - want.sum) <= 1e-5 * numel * want.abs_max,
    `${what}: sum ${sum} vs ${want.sum}`,
  );
  assert.ok(
    Math.abs(sumSq - want.sum_sq) <= 1e-4 * Math.abs(want.sum_sq),
    `${what}: sum_sq ${sumSq} vs ${want.sum_sq}`,
  );
  assert.ok(Math.abs(min - want.min) <= tolS, `${what}: min ${min} vs ${want.min}`);
  assert.ok(Math.abs(max - want.max) <= tolS, `${what}: max ${max} vs ${want.max}`);
  const { index, value } = want.samples;
  assert.equal(index.length, 50);
  let worst = 0;
  for (let k = 0; k < index.length; k++) {
    const [b, ch, y, x] = index[k];
    const got = data[((b * h + y) * w + x) * c + ch];
    const err = Math.abs(got - value[k]);
    worst = Math.max(worst, err);
    assert.ok(
      err <= tolS,
      `${what}: sample ${index[k]} got ${got}, want ${value[k]}`,
    );
  }
  console.log(
    `${what}: max sample error ${worst.toExponential(2)} (tolerance ${tolS.toExponential(2)})`,
  );
}
