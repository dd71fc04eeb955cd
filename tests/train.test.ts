import * as tf from "@tensorflow/tfjs-core";
import assert from "node:assert/strict";
import { buildSSM, initBackend } from "../mod.ts";
import { type Regime, Trainer } from "../lib/train/trainer.ts";
import { openData, type OpenedData } from "../lib/train/datasets.ts";
import type { UpdateRule } from "../lib/train/param_groups.ts";
import type { SSMVariant } from "../lib/config.ts";

await initBackend("wasm");

const SIZE = 64;
const data: OpenedData = await openData(
  { size: SIZE, synthetic: { nCls: 12, nSeg: 8, seed: 5 } },
  "train",
);

function makeModel(variant: SSMVariant, size = SIZE) {
  return buildSSM({ variant, transform: { minSize: size, maxSize: 2 * size }, seed: 1 });
}

function snapshot(model: ReturnType<typeof makeModel>): Map<string, Float32Array> {
  return new Map(
    model.namedParameters().filter(([, p]) => !p.isBuffer).map((
      [n, p],
    ) => [n, p.variable.dataSync() as Float32Array]),
  );
}

function changed(a: Map<string, Float32Array>, b: Map<string, Float32Array>): Set<string> {
  const out = new Set<string>();
  for (const [n, x] of a) {
    const y = b.get(n)!;
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) {
        out.add(n);
        break;
      }
    }
  }
  return out;
}

const isS = (n: string) => n.startsWith("s2new.");
const isS2 = (n: string) => /^roi_heads\.box_(head|predictor)_s2\./.test(n);
const isBackbone = (n: string) => n.startsWith("backbone.");

for (
  const [regime, rule] of [
    ["scratch", "s+backbone"],
    ["scratch", "s"],
    ["parallel", "s+bn"],
    ["single", "s+backbone"],
  ] as [Regime, UpdateRule][]
) {
  Deno.test(`each step updates exactly its parameters (${regime}, ${rule})`, async () => {
    const variant = regime as SSMVariant;
    const model = makeModel(variant);
    const trainer = new Trainer(
      model,
      { regime, updateRule: rule, lr: 1e-3, progress: false },
      data,
    );
    const s0 = snapshot(model);
    if (regime === "parallel") {
      // The frozen classification branch starts as a copy of the segmentation branch.
      for (const [n, v] of s0) {
        if (isS2(n)) assert.deepEqual(v, s0.get(n.replace("_s2", ""))!, n);
      }
    }
    await trainer.segmentationStep();
    const s1 = snapshot(model);
    const segChanged = changed(s0, s1);
    for (const n of s0.keys()) {
      if (isS(n) || isS2(n)) assert.ok(!segChanged.has(n), `segmentation step changed ${n}`);
      else if (!n.startsWith("rpn.")) {
        assert.ok(segChanged.has(n), `segmentation step left ${n} unchanged`);
      }
    }
    await trainer.classificationStep();
    const s2 = snapshot(model);
    const clsChanged = changed(s1, s2);
    for (const n of s0.keys()) {
      const expected = isS(n) ||
        (rule === "s+backbone" && isBackbone(n)) ||
        (rule === "s+bn" && isBackbone(n) && /(bn\d|downsample\.1)\.(weight|bias)$/.test(n));
      assert.equal(
        clsChanged.has(n),
        expected,
        `classification step (${rule}) ${expected ? "left" : "changed"} ${n}`,
      );
    }
    if (regime === "scratch") {
      // A full iteration copies the segmentation branch into the classification branch on a new best loss.
      const log = await trainer.step();
      assert.ok(log.copied);
      const s3 = snapshot(model);
      for (const [n, v] of s3) if (isS2(n)) assert.deepEqual(v, s3.get(n.replace("_s2", ""))!, n);
    }
    trainer.optimizer.dispose();
    model.dispose();
  });
}

Deno.test("classify: false runs segmentation steps only; S stays put, the scratch copy rule still runs", async () => {
  const model = makeModel("scratch");
  const trainer = new Trainer(
    model,
    { regime: "scratch", lr: 1e-3, progress: false, classify: false },
    data,
  );
  const s0 = snapshot(model);
  const log = await trainer.step();
  assert.equal(log.clsLoss, null);
  assert.ok(log.copied);
  const s1 = snapshot(model);
  const moved = changed(s0, s1);
  for (const n of s0.keys()) {
    if (isS(n)) assert.ok(!moved.has(n), `S parameter ${n} changed`);
  }
  for (const [n, v] of s1) if (isS2(n)) assert.deepEqual(v, s1.get(n.replace("_s2", ""))!, n);
  assert.ok(moved.has("backbone.body.conv1.weight"));
  // turned back on, the next iteration runs the classification step again
  trainer.config.classify = true;
  const log2 = await trainer.step();
  assert.equal(typeof log2.clsLoss, "number");
  assert.ok(changed(s1, snapshot(model)).has("s2new.fc_scores.weight"));
  trainer.optimizer.dispose();
  model.dispose();
});

Deno.test("tensor count stays flat across 50 training iterations", async () => {
  const model = makeModel("scratch");
  const trainer = new Trainer(model, {
    regime: "scratch",
    lr: 1e-4,
    iterations: 50,
    progress: false,
  }, data);
  await trainer.step();
  const base = tf.memory().numTensors;
  const counts: number[] = [];
  await trainer.run(() => counts.push(tf.memory().numTensors));
  assert.equal(trainer.iteration, 50);
  assert.ok(counts.every((c) => c === base), `tensor counts ${[...new Set(counts)]} vs ${base}`);
  trainer.optimizer.dispose();
  model.dispose();
});

Deno.test("a resumed run ends with the same weights as the uninterrupted one", async () => {
  const dirA = await Deno.makeTempDir(), dirB = await Deno.makeTempDir();
  try {
    const run = async (dir: string, iterations: number, resume: boolean) => {
      const model = makeModel("scratch");
      const t = new Trainer(
        model,
        {
          regime: "scratch",
          lr: 1e-3,
          iterations,
          seed: 7,
          outDir: dir,
          progress: false,
          checkpointEvery: 0,
        },
        data,
      );
      if (resume) assert.ok(t.resume(), "no checkpoint to resume from");
      await t.run();
      const w = snapshot(model);
      const buffers = model.namedParameters().filter(([, p]) => p.isBuffer).map(([, p]) =>
        p.variable.dataSync()
      );
      t.optimizer.dispose();
      model.dispose();
      return { w, buffers };
    };
    const full = await run(dirA, 4, false);
    await run(dirB, 2, false);
    const resumed = await run(dirB, 4, true);
    assert.equal(changed(full.w, resumed.w).size, 0, "weights differ after resume");
    full.buffers.forEach((b, i) => assert.deepEqual(b, resumed.buffers[i]));
    const log = Deno.readTextFileSync(`${dirB}/train_log.jsonl`).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assert.deepEqual(log.map((l) => l.iteration), [1, 2, 3, 4]);
  } finally {
    await Deno.remove(dirA, { recursive: true });
    await Deno.remove(dirB, { recursive: true });
  }
});

Deno.test("a non-finite loss stops the run with its iteration and leaves the last checkpoint intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const model = makeModel("scratch");
    const t = new Trainer(
      model,
      {
        regime: "scratch",
        lr: 1e-4,
        iterations: 5,
        outDir: dir,
        progress: false,
        checkpointEvery: 2,
      },
      data,
    );
    let poisoned = false;
    await assert.rejects(
      () =>
        t.run((log) => {
          if (log.iteration === 3 && !poisoned) {
            // Corrupt a weight after iteration 3 (the last checkpoint is iteration 2's):
            // iteration 4 must stop before updating.
            poisoned = true;
            const w = model.rpn.head.clsLogits.bias!;
            w.assign(tf.fill(w.shape, NaN));
          }
        }),
      (e: Error) => {
        assert.equal(e.name, "NonFiniteLossError");
        assert.match(e.message, /iteration 4/);
        assert.match(e.message, /iter-0000002/);
        return true;
      },
    );
    assert.equal(t.iteration, 3);
    const latest = Deno.readTextFileSync(`${dir}/checkpoints/latest`).trim();
    assert.equal(latest, "iter-0000002");
    const fresh = makeModel("scratch");
    const t2 = new Trainer(fresh, { regime: "scratch", outDir: dir, progress: false }, data);
    assert.ok(t2.resume());
    assert.equal(t2.iteration, 2);
    const bias = fresh.rpn.head.clsLogits.bias!.dataSync();
    assert.ok(Array.from(bias).every(Number.isFinite), "the checkpoint holds the poisoned weights");
    t.optimizer.dispose();
    t2.optimizer.dispose();
    model.dispose();
    fresh.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the train CLI writes a final checkpoint and exits cleanly on Ctrl-C", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../lib/cli/train.ts", import.meta.url).pathname,
        "--regime",
        "scratch",
        "--size",
        String(SIZE),
        "--synthetic-cls",
        "12",
        "--synthetic-seg",
        "8",
        "--seed",
        "5",
        "--iterations",
        "500",
        "--checkpoint-every",
        "0",
        "--backend",
        "wasm",
        "--out",
        dir,
        "--quiet",
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const child = cmd.spawn();
    // Wait for the first logged iteration, then interrupt.
    const log = `${dir}/train_log.jsonl`;
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 250));
      try {
        if (Deno.readTextFileSync(log).trim().length > 0) break;
      } catch { /* not yet */ }
    }
    child.kill("SIGINT");
    const { code, stderr } = await child.output();
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, err);
    assert.match(err, /interrupted/);
    const latest = Deno.readTextFileSync(`${dir}/checkpoints/latest`).trim();
    const state = JSON.parse(Deno.readTextFileSync(`${dir}/checkpoints/${latest}/state.json`));
    const lines = Deno.readTextFileSync(log).trim().split("\n");
    assert.equal(state.iteration, lines.length);
    assert.ok(state.iteration >= 1 && state.iteration < 500);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
