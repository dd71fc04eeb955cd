// `deno task eval` on a tiny synthetic set with a small checkpoint: the ground truth comes from
// the dataset's instances, the records do not depend on evaluation order, and the worker-thread
// path gives exactly the single-process results.
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildSSM, initBackend } from "../mod.ts";
import { saveWeights, SSM_CONFIG_KEY } from "../lib/nn/weights.ts";
import { evalMain, type EvalOutput } from "../lib/cli/eval.ts";
import { openEvalData } from "../lib/eval/data.ts";
import { evalTasks, evaluateModel } from "../lib/eval/evaluate.ts";
import type { CliIo } from "../lib/cli/common.ts";

await initBackend("wasm");

const SIZE = 64;
const SYNTH = ["--synthetic-cls", "12", "--synthetic-seg", "8", "--synthetic-seed", "5"];
const SPEC = { size: SIZE, minArea: 10, synthetic: { nCls: 12, nSeg: 8, seed: 5 } };

// A small untrained model with a low score threshold, so that it does output detections.
const model = buildSSM({
  variant: "parallel",
  backbone: { depth: 18, stages: 2, fpnChannels: 32 },
  transform: { minSize: SIZE, maxSize: 2 * SIZE },
  rpn: { preNmsTopN: 100, postNmsTopN: 30 },
  roiHeads: { scoreThresh: 0.01, maskHeadChannels: 16, maskPoolSize: 7 },
  s: { boxDetections: 16 },
  seed: 3,
});
const dir = await Deno.makeTempDir();
const ckpt = join(dir, "model.safetensors");
saveWeights(model, ckpt, { [SSM_CONFIG_KEY]: JSON.stringify(model.config) });

function capture(): CliIo & { lines: string[]; errs: string[] } {
  const lines: string[] = [], errs: string[] = [];
  return { lines, errs, out: (s) => lines.push(s), err: (s) => errs.push(s) };
}

Deno.test("records: ground truth from the dataset, detections present, order-independent", async () => {
  const data = await openEvalData(SPEC, "test");
  assert.ok(data.seg && data.cls && data.seg.length > 0 && data.cls.length > 0);
  const tasks = evalTasks(data);
  const fwd = await evaluateModel(model, data, tasks);
  const rev = await evaluateModel(model, data, [...tasks].reverse());
  assert.deepEqual(rev, fwd);
  let nGt = 0;
  for (let i = 0; i < data.seg.length; i++) nGt += (await data.seg.get(i)).instances.length;
  assert.equal(fwd.seg.reduce((a, r) => a + r.gt.length, 0), nGt);
  assert.ok(fwd.seg.some((r) => r.dets.length > 0), "the test model should detect something");
  for (const r of fwd.seg) {
    assert.equal(r.width, SIZE);
    for (let k = 1; k < r.dets.length; k++) assert.ok(r.dets[k - 1].score >= r.dets[k].score);
  }
  for (let i = 0; i < data.cls.length; i++) {
    assert.equal(fwd.cls[i].label, (await data.cls.get(i)).label);
  }
});

Deno.test("eval CLI: 2 worker threads give the single-process results", async () => {
  const run = async (workers: number) => {
    const out = join(dir, `eval-w${workers}.json`);
    const io = capture();
    const code = await evalMain([
      "--checkpoint",
      ckpt,
      "--backend",
      "wasm",
      "--min-area",
      "10",
      ...SYNTH,
      "--workers",
      String(workers),
      "--out",
      out,
    ], io);
    assert.equal(code, 0, io.errs.join("\n"));
    return { json: JSON.parse(Deno.readTextFileSync(out)) as EvalOutput, io };
  };
  const one = await run(1);
  const two = await run(2);
  assert.equal(two.json.workers, 2);
  assert.ok(two.io.errs.some((l) => /2 worker threads/.test(l)), two.io.errs.join("\n"));
  assert.deepEqual(two.json.report, one.json.report);
  assert.deepEqual(
    two.json.tables.map((t) => t.rows),
    one.json.tables.map((t) => t.rows),
  );
  // both tables printed
  const text = one.io.lines.join("\n");
  assert.match(text, /Table 2/);
  assert.match(text, /Table 3/);
  const seg = one.json.report.segmentation!;
  assert.ok(seg.detections > 0);
  assert.equal(seg.segm.maxDets, 128);
  const cls = one.json.report.classification!;
  const n = cls.metrics.confusionMatrix.flat().reduce((a, b) => a + b, 0);
  assert.equal(n, (await openEvalData(SPEC, "test")).cls!.length);
});

Deno.test("eval CLI: usage errors name the flag", async () => {
  let io = capture();
  assert.equal(await evalMain(["--backend", "wasm"], io), 2);
  assert.match(io.errs.join("\n"), /--checkpoint is required/);
  io = capture();
  assert.equal(await evalMain(["--checkpoint", ckpt, "--split", "dev"], io), 2);
  assert.match(io.errs.join("\n"), /--split must be test, train or all, got 'dev'/);
  io = capture();
  assert.equal(await evalMain(["--checkpoint", ckpt, "--score-thresh", "1.5"], io), 2);
  assert.match(io.errs.join("\n"), /--score-thresh must be a number in \[0, 1\), got '1.5'/);
  io = capture();
  assert.equal(
    await evalMain(["--checkpoint", join(dir, "nope.safetensors"), "--backend", "wasm"], io),
    1,
  );
  assert.match(io.errs.join("\n"), /nope\.safetensors: no such file/);
});

Deno.test({
  name: "cleanup",
  fn: async () => {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  },
});
