// `deno task bench`: JSON shape of the suite on a tiny config, the stage profiler, FLOP counts.
import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { join } from "node:path";
import { initBackend } from "../lib/backend/mod.ts";
import { benchThreads, main } from "../lib/cli/bench.ts";
import { StageProfiler } from "../lib/bench/profiler.ts";
import { ssmStageFlops } from "../lib/bench/flops.ts";
import { buildSSM } from "../lib/ssm.ts";

await initBackend("wasm");

Deno.test("stage FLOPs of the paper configuration at 512 px", () => {
  const f = ssmStageFlops(buildSSM(), [512, 512], { proposals: 1000, maskRois: 128 });
  const g = (k: string) => f[k] / 1e9;
  // Independent hand counts: FPN 1x1 + 3x3 256->256 on 32x32; RPN 3x3 + 1x1 to 30 + 120;
  // two box branches of 1000 RoIs (12544->128->128->2/8); mask head 3x3 256->128 on 14x14,
  // convT 2x2 128->128, 1x1 128->2 on 28x28, for 128 RoIs.
  assert.ok(Math.abs(g("fpn") - 2 * 1024 * (256 * 256 * 10) / 1e9) < 1e-9);
  assert.ok(Math.abs(g("rpn") - 2 * 1024 * 256 * (9 * 256 + 150) / 1e9) < 1e-9);
  const branch = 2 * (12544 * 128 + 128 * 128 + 128 * 2 + 128 * 8);
  assert.ok(Math.abs(g("box heads") - 2 * 1000 * branch / 1e9) < 1e-9);
  const mask = 2 * 128 * (196 * 9 * 256 * 128 + 196 * 128 * 128 * 4 + 784 * 128 * 2);
  assert.ok(Math.abs(g("mask head") - mask / 1e9) < 1e-9);
  // ResNet18 to layer3 at 512: stem 7x7 3->64 on 256^2; layer1 four 3x3 64->64 on 128^2;
  // layer2 3x3/2 64->128 + three 3x3 128->128 on 64^2 + 1x1/2 shortcut; layer3 likewise.
  const conv = (hw: number, k: number, ci: number, co: number) => 2 * hw * hw * k * k * ci * co;
  const body = conv(256, 7, 3, 64) + 4 * conv(128, 3, 64, 64) +
    conv(64, 3, 64, 128) + 3 * conv(64, 3, 128, 128) + conv(64, 1, 64, 128) +
    conv(32, 3, 128, 256) + 3 * conv(32, 3, 256, 256) + conv(32, 1, 128, 256);
  assert.ok(Math.abs(g("backbone") - body / 1e9) < 1e-9, `backbone ${g("backbone")}`);
});

Deno.test("a disabled profiler passes tensors through and records nothing", () => {
  const p = new StageProfiler();
  const x = tf.ones([2]);
  assert.equal(p.mark("a", x), x);
  assert.equal(p.stage("a", () => 3), 3);
  assert.deepEqual(p.take(), {});
  x.dispose();
});

Deno.test("profiler: forward stages and backward times from marks, in tape order", () => {
  const p = new StageProfiler();
  p.enable();
  const w1 = tf.variable(tf.randomNormal([64, 64]));
  const w2 = tf.variable(tf.randomNormal([64, 64]));
  const x = tf.randomNormal([256, 64]) as tf.Tensor2D;
  let start = 0;
  const before = tf.memory().numTensors;
  const { value, grads } = p.section("t ", () =>
    tf.variableGrads(() => {
      const a = p.mark("first", p.stage("first", () => tf.matMul(x, w1 as tf.Tensor2D)));
      const b = p.mark("second", p.stage("second", () => tf.matMul(tf.relu(a), w2 as tf.Tensor2D)));
      start = performance.now();
      return tf.sum(tf.square(b)) as tf.Scalar;
    }, [w1, w2]));
  p.section("t ", () => p.backwardTimes(["first", "second", "loss"], start, performance.now()));
  const t = p.take();
  for (const k of ["t first", "t second", "t first bwd", "t second bwd", "t loss bwd"]) {
    assert.ok(t[k] && t[k].ms >= 0 && t[k].calls === 1, k);
  }
  // The marks are identities: same gradient as without the profiler.
  const ref = tf.variableGrads(
    () => tf.sum(tf.square(tf.matMul(tf.relu(tf.matMul(x, w1 as tf.Tensor2D)), w2 as tf.Tensor2D))),
    [w1, w2],
  );
  const d = tf.tidy(() => tf.max(tf.abs(tf.sub(grads[w1.name], ref.grads[w1.name]))).dataSync()[0]);
  assert.equal(d, 0);
  tf.dispose([value, ...Object.values(grads), ref.value, ...Object.values(ref.grads)]);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose([w1, w2, x]);
  p.disable();
});

Deno.test("bench CLI: tiny suite writes the headline JSON keys", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = join(dir, "bench.json");
    const code = await main([
      "--backend",
      "wasm",
      "--size",
      "64",
      "--train-sizes",
      "64",
      "--reps",
      "1",
      "--only",
      "matMul",
      "--json",
      path,
      "--threads",
      "1",
    ]);
    assert.equal(code, 0);
    const j = JSON.parse(Deno.readTextFileSync(path));
    assert.equal(j.backend, "wasm");
    assert.equal(j.threads, 1);
    for (const k of ["inference_64_sat_s", "inference_64_zero_s", "train_iter_64_s"]) {
      assert.ok(typeof j[k] === "number" && j[k] > 0, k);
    }
    for (const k of ["peak_rss_inference_bytes", "peak_rss_train_bytes"]) {
      assert.ok(j[k] > 10 * 2 ** 20, k);
    }
    const sat = j.workloads.find((w: { workload: string }) => w.workload === "inference_64_sat");
    assert.equal(sat.counts.detections, 128);
    assert.ok(sat.minS <= sat.medianS && sat.medianS <= sat.maxS);
    const names = sat.stages.map((s: { name: string }) => s.name);
    for (
      const n of ["backbone", "fpn", "rpn", "roiAlign", "box heads", "mask head", "paste", "S"]
    ) {
      assert.ok(names.includes(n), n);
    }
    const zero = j.workloads.find((w: { workload: string }) => w.workload === "inference_64_zero");
    assert.equal(zero.counts.detections, 0);
    const train = j.workloads.find((w: { workload: string }) => w.workload === "train_iter_64");
    const tn = train.stages.map((s: { name: string }) => s.name);
    for (const n of ["seg backbone", "seg mask head bwd", "cls box heads", "cls backbone bwd"]) {
      assert.ok(tn.includes(n), n);
    }
    assert.equal(j.kernels.rows[0].name, "matMul 1024^3");
    assert.equal(await main(["nonsense"]), 2);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("bench threads: --threads, then SSM_WASM_THREADS, then every core (at most 8)", () => {
  assert.equal(benchThreads("3", "2", 2), 3);
  assert.equal(benchThreads(undefined, undefined, 2), 2);
  assert.equal(benchThreads(undefined, "", 16), 8);
  assert.equal(benchThreads(undefined, undefined, 1), 1);
  assert.throws(
    () => benchThreads("0", undefined, 2),
    /wasm threads must be an integer from 1 to 8/,
  );
  const saved = Deno.env.get("SSM_WASM_THREADS");
  try {
    Deno.env.set("SSM_WASM_THREADS", "2");
    assert.equal(benchThreads(undefined, "2", 4), 2);
    Deno.env.set("SSM_WASM_THREADS", "9");
    assert.throws(() => benchThreads(undefined, "9", 4), /SSM_WASM_THREADS/);
  } finally {
    if (saved === undefined) Deno.env.delete("SSM_WASM_THREADS");
    else Deno.env.set("SSM_WASM_THREADS", saved);
  }
});
