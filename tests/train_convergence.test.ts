// A short real training run lowers both losses (synthetic 128 px data, wasm, scratch regime).
import assert from "node:assert/strict";
import { buildSSM, initBackend } from "../mod.ts";
import { type IterationLog, Trainer } from "../lib/train/trainer.ts";
import { openData } from "../lib/train/datasets.ts";

const ITERATIONS = 200;

Deno.test(`a ${ITERATIONS}-iteration scratch run on synthetic 128 px data lowers both losses`, async () => {
  await initBackend("wasm");
  const size = 128;
  const data = await openData({ size, synthetic: { nCls: 90, nSeg: 40, seed: 11 } }, "train");
  const model = buildSSM({
    variant: "scratch",
    transform: { minSize: size, maxSize: 2 * size },
    seed: 2,
  });
  const trainer = new Trainer(
    model,
    { regime: "scratch", iterations: ITERATIONS, lr: 1e-4, seed: 3, progress: false },
    data,
  );
  const logs: IterationLog[] = await trainer.run();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const window = 40;
  const seg = logs.map((l) => l.segLoss), cls = logs.map((l) => l.clsLoss!);
  const [seg0, seg1] = [mean(seg.slice(0, window)), mean(seg.slice(-window))];
  const [cls0, cls1] = [mean(cls.slice(0, window)), mean(cls.slice(-window))];
  console.log(
    `segmentation loss ${seg0.toFixed(3)} -> ${seg1.toFixed(3)}, classification loss ${
      cls0.toFixed(3)
    } -> ${cls1.toFixed(3)}, ${(mean(logs.map((l) => l.seconds))).toFixed(2)} s/iteration`,
  );
  assert.ok(seg1 < 0.8 * seg0, `segmentation loss did not drop: ${seg0} -> ${seg1}`);
  assert.ok(cls1 < cls0 - 0.01, `classification loss did not drop: ${cls0} -> ${cls1}`);
  trainer.optimizer.dispose();
  model.dispose();
});
