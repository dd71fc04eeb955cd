// A real (tiny) reproduction run: two variants sharing one stage-I model, trained a handful of
// iterations at 64 px on a small synthetic set, evaluated, tables written; a re-run skips what is
// finished; a third variant (run in a worker thread) reuses the stage-I model.
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { initBackend } from "../mod.ts";
import { reproduce } from "../lib/reproduce/run.ts";
import {
  minAreaFor,
  modelConfigFor,
  QUICK_PROFILE,
  type ReproProfile,
  sizeFor,
  stagePhases,
} from "../lib/reproduce/profiles.ts";
import { jobData, planJobs } from "../lib/reproduce/run.ts";
import { parseVariants, VARIANTS } from "../lib/reproduce/variants.ts";
import type { Stage1Result, VariantResult } from "../lib/reproduce/jobs.ts";
import type { Table } from "../lib/eval/tables.ts";
import type { CliIo } from "../lib/cli/common.ts";
import { reproduceMain } from "../lib/cli/reproduce.ts";

await initBackend("wasm");

const TINY: ReproProfile = {
  ...QUICK_PROFILE,
  size: 64,
  size3: null,
  model: {
    ...QUICK_PROFILE.model,
    backbone: { fpnChannels: 32 },
    roiHeads: { ...QUICK_PROFILE.model.roiHeads, scoreThresh: 0.05 },
    s: { boxDetections: 16 },
  },
  stage1: { ...QUICK_PROFILE.stage1, iterations: 3 },
  train: { ...QUICK_PROFILE.train, iterations: 2 },
  scratchWarmup: { iterations: 2, lr: 1e-3, classify: false },
  minArea: 10,
  synthetic: { nCls: 12, nSeg: 8, seed: 5 },
};
const DATA = { size: 64, minArea: 10, synthetic: TINY.synthetic! };
const quiet: CliIo = { out: () => {}, err: () => {} };
const readJson = <T>(p: string): T => JSON.parse(Deno.readTextFileSync(p)) as T;

Deno.test("tiny reproduction: tables, shared stage I, skip finished, worker job", async () => {
  const runDir = await Deno.makeTempDir();
  try {
    const variants = parseVariants("r18-2-scratch,r18-2-single");
    const s1 = await reproduce({
      profile: TINY,
      runDir,
      variants,
      backend: "wasm",
      jobs: 1,
      data: DATA,
      io: quiet,
    });
    assert.deepEqual(s1.failed, []);
    assert.deepEqual(s1.ran.sort(), ["r18-2-scratch", "r18-2-single", "r18-2-stage1"]);
    assert.deepEqual(s1.results.map((r) => r.model), ["r18-2-single", "r18-2-scratch"]);
    for (const f of ["table1", "table2", "table3"]) {
      for (const ext of ["md", "csv", "json", "png"]) {
        assert.ok(existsSync(join(runDir, `${f}.${ext}`)), `${f}.${ext}`);
      }
    }
    for (const f of ["tables.md", "run.json", "reproduce.log"]) {
      assert.ok(existsSync(join(runDir, f)));
    }
    const stage1 = readJson<Stage1Result>(join(runDir, "stage1", "r18-2", "stage1.json"));
    assert.equal(stage1.iterations, 3);
    const single = readJson<VariantResult>(join(runDir, "variants", "r18-2-single", "result.json"));
    const scratch = readJson<VariantResult>(
      join(runDir, "variants", "r18-2-scratch", "result.json"),
    );
    assert.equal(single.iterations, 2);
    assert.equal(single.stage1Seconds, stage1.seconds);
    assert.equal(scratch.stage1Seconds, null);
    assert.equal(scratch.iterations, 4); // 2 segmentation-only warm-up + 2
    const scratchLog = Deno.readTextFileSync(
      join(runDir, "variants", "r18-2-scratch", "train_log.jsonl"),
    ).trim().split("\n").map((l) => JSON.parse(l) as { iteration: number; clsLoss: number | null });
    assert.deepEqual(
      scratchLog.map((r) => [r.iteration, r.clsLoss === null]),
      [[1, true], [2, true], [3, false], [4, false]],
    );
    assert.ok(
      existsSync(single.weights) &&
        existsSync(join(runDir, "variants", "r18-2-single", "train_log.jsonl")),
    );
    // the scratch variant has the second box branch: more parameters than the single one
    assert.ok(scratch.totalParams > single.totalParams);
    // Table 1 of the written JSON: times add up, pretrained includes stage I
    const t1 = readJson<Table>(join(runDir, "table1.json"));
    const row = t1.rows.find((r) => r.model === "r18-2-single")!;
    assert.equal(row.total_seconds, single.trainSeconds + stage1.seconds);
    assert.equal(row.cls_trainable_params, single.clsTrainableParams);
    const t3 = readJson<Table>(join(runDir, "table3.json"));
    assert.equal(t3.rows.length, 2);
    assert.equal(t3.rows[0].accuracy, single.classification.metrics.accuracy);
    assert.ok(t1.notes.some((n) => n.includes("reduced settings")));

    // re-run: nothing to do, result files untouched
    const mtime = statSync(join(runDir, "variants", "r18-2-single", "result.json")).mtimeMs;
    const s2 = await reproduce({
      profile: TINY,
      runDir,
      variants,
      backend: "wasm",
      jobs: 1,
      data: DATA,
      io: quiet,
    });
    assert.deepEqual(s2.ran, []);
    assert.deepEqual(s2.skipped.sort(), ["r18-2-scratch", "r18-2-single"]);
    assert.equal(statSync(join(runDir, "variants", "r18-2-single", "result.json")).mtimeMs, mtime);

    // a third variant, in a worker thread: reuses the finished stage-I model
    const s3 = await reproduce({
      profile: TINY,
      runDir,
      variants: parseVariants("r18-2-parallel"),
      backend: "wasm",
      jobs: 2,
      data: DATA,
      io: quiet,
    });
    assert.deepEqual(s3.failed, []);
    assert.deepEqual(s3.ran, ["r18-2-parallel"]);
    assert.deepEqual(s3.skipped, ["r18-2-stage1"]);
    assert.deepEqual(s3.results.map((r) => r.model), [
      "r18-2-single",
      "r18-2-parallel",
      "r18-2-scratch",
    ]);
    assert.equal(
      readJson<Stage1Result>(join(runDir, "stage1", "r18-2", "stage1.json")).finishedAt,
      stage1.finishedAt,
    );

    // other settings in the same folder are refused
    await assert.rejects(
      reproduce({
        profile: { ...TINY, seed: 9 },
        runDir,
        variants,
        backend: "wasm",
        jobs: 1,
        data: DATA,
        io: quiet,
      }),
      /made with other settings/,
    );
  } finally {
    await Deno.remove(runDir, { recursive: true });
  }
});

Deno.test("variants: 12 names, subsets in canonical order, unknown names rejected", () => {
  assert.equal(VARIANTS.length, 12);
  assert.equal(new Set(VARIANTS.map((v) => v.name)).size, 12);
  assert.deepEqual(parseVariants("r34-2-single,r18-3-scratch,r34-2-single").map((v) => v.name), [
    "r34-2-single",
    "r18-3-scratch",
  ]);
  assert.throws(() => parseVariants("r50-3-scratch"), /unknown variant 'r50-3-scratch'/);
  assert.equal(parseVariants(undefined).length, 12);
});

Deno.test("quick profile lists its reductions; paper profile refuses without data / GPU", async () => {
  const r = QUICK_PROFILE.reduced.join("\n");
  for (
    const s of [
      "input size 96 px",
      "rpn.preNmsTopN",
      "Adam lr",
      "synthetic",
      "200 extra segmentation-only iterations",
    ]
  ) {
    assert.ok(r.includes(s), `missing '${s}' in:\n${r}`);
  }
  const errs: string[] = [];
  const io: CliIo = { out: () => {}, err: (s) => errs.push(s) };
  assert.equal(await reproduceMain(["--profile", "paper", "--backend", "wasm"], io), 2);
  assert.match(errs.join("\n"), /paper profile trains on the real data: pass --seg-data/);
  errs.length = 0;
  const dir = await Deno.makeTempDir();
  try {
    assert.equal(
      await reproduceMain(
        ["--profile", "paper", "--seg-data", dir, "--cls-data", dir, "--backend", "wasm"],
        io,
      ),
      2,
    );
    assert.match(errs.join("\n"), /needs a GPU backend/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  errs.length = 0;
  assert.equal(await reproduceMain(["--variants", "r18-9-single", "--backend", "wasm"], io), 2);
  assert.match(errs.join("\n"), /unknown variant 'r18-9-single'/);
});

Deno.test("3-stage backbones run at their own size and minimum area", () => {
  const p: ReproProfile = { ...QUICK_PROFILE, size: 96, size3: 128, minArea: 22 };
  assert.equal(sizeFor(p, 2), 96);
  assert.equal(sizeFor(p, 3), 128);
  assert.equal(minAreaFor(p, 2), 22);
  assert.equal(minAreaFor(p, 3), Math.round(22 * (128 / 96) ** 2));
  assert.equal(modelConfigFor(p, 34, 3, "single").transform?.minSize, 128);
  assert.equal(modelConfigFor(p, 34, 2, "single").transform?.minSize, 96);
  const data = { size: 96, minArea: 22, synthetic: { nCls: 12, nSeg: 8, seed: 5 } };
  assert.equal(jobData(p, data, 2), data);
  assert.deepEqual(jobData(p, data, 3), { ...data, size: 128, minArea: 39 });
  const { jobs } = planJobs(
    "/nonexistent-run",
    p,
    data,
    parseVariants("r18-3-single,r18-2-scratch"),
  );
  const byName = new Map(jobs.map((j) => [j.name, j.job]));
  assert.equal(byName.get("r18-3-stage1")?.data.size, 128);
  assert.equal(byName.get("r18-3-single")?.data.size, 128);
  assert.equal(byName.get("r18-2-scratch")?.data.size, 96);
  assert.ok(p.reduced.length > 0);
  const same: ReproProfile = { ...p, size3: null };
  assert.equal(sizeFor(same, 3), 96);
  assert.equal(jobData(same, data, 3), data);
});

Deno.test("step decay splits a stage into two phases; module S keeps its rate", () => {
  const base = { epochs: 1, iterations: 100, lr: 1e-4, weightDecay: 0, sLr: 1e-3 };
  assert.deepEqual(stagePhases(base, 0, 100), [
    { until: 100, lr: 1e-4, clsLr: null, sLr: 1e-3 },
  ]);
  const phases = stagePhases({ ...base, decay: { at: 0.6, factor: 0.1 } }, 150, 100);
  assert.equal(phases.length, 2);
  assert.deepEqual(phases.map((p) => p.until), [210, 250]);
  assert.ok(Math.abs(phases[1].lr - 1e-5) < 1e-12);
  assert.ok(Math.abs(phases[1].clsLr! - 1e-5) < 1e-12);
  assert.equal(phases[1].sLr, 1e-3);
  // Without an S rate, S keeps the undecayed classification rate.
  const noS = stagePhases(
    { ...base, sLr: null, clsLr: 2e-4, decay: { at: 0.5, factor: 0.5 } },
    0,
    10,
  );
  assert.equal(noS[1].sLr, 2e-4);
  assert.ok(Math.abs(noS[1].clsLr! - 1e-4) < 1e-12);
  assert.ok(QUICK_PROFILE.reduced.some((l) => l.includes("module S excepted")));
});
