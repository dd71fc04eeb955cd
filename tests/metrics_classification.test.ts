// Classification metrics: the paper's published confusion matrix (always runs) and the
// numpy / scikit-learn fixture.
import assert from "node:assert/strict";
import { fixturesDir, readFixtureJson } from "./_util.ts";
import {
  classificationMetrics,
  classificationMetricsFromLabels,
  confusionMatrix,
  PAPER_F1_WEIGHTS,
  paperF1,
} from "../lib/metrics/classification.ts";

const PAPER_CM = [[9322, 123, 5], [174, 7139, 82], [27, 277, 4042]];

Deno.test("the paper's confusion matrix reproduces F1 96.76%, COVID-19 sensitivity 93.00%, accuracy 96.75%", () => {
  const m = classificationMetrics(PAPER_CM);
  // F1 with the authors' fixed weights (0.45, 0.35, 0.20)
  assert.equal((m.paperF1! * 100).toFixed(2), "96.76");
  // scikit-learn's support-weighted F1 does not reproduce it
  assert.equal((m.weightedF1 * 100).toFixed(2), "96.75");
  assert.equal((m.accuracy * 100).toFixed(2), "96.75");
  // COVID-19 sensitivity = 4042 / 4346 = 0.930051: 93.00 when truncated to two decimals
  // (rounding gives 93.01)
  assert.equal(m.recall[2], 4042 / 4346);
  assert.equal(Math.floor(m.recall[2] * 10000) / 100, 93);
  // hand check of the per-class F1 and the weighted sum
  const p = [9322 / 9523, 7139 / 7539, 4042 / 4129];
  const r = [9322 / 9450, 7139 / 7395, 4042 / 4346];
  const f1 = p.map((pk, k) => (2 * pk * r[k]) / (pk + r[k]));
  f1.forEach((f, k) => assert.ok(Math.abs(m.f1[k] - f) < 1e-15));
  assert.ok(Math.abs(m.paperF1! - (0.45 * f1[0] + 0.35 * f1[1] + 0.2 * f1[2])) < 1e-15);
  assert.deepEqual(PAPER_F1_WEIGHTS, [0.45, 0.35, 0.2]);
});

Deno.test("zero division gives 0 like scikit-learn, and balanced accuracy skips empty classes", () => {
  // class 2 never occurs and is never predicted; class 1 is never predicted
  const m = classificationMetrics([[3, 0, 0], [2, 0, 0], [0, 0, 0]]);
  assert.deepEqual(m.precision, [0.6, 0, 0]);
  assert.deepEqual(m.recall, [1, 0, 0]);
  assert.equal(m.f1[1], 0);
  assert.equal(m.f1[2], 0);
  assert.equal(m.specificity[0], 0); // TN 0, FP 2
  assert.equal(m.specificity[2], 1);
  assert.equal(m.balancedAccuracy, 0.5); // mean of recall over classes 0 and 1
  assert.equal(m.macroRecall, 1 / 3);
  assert.equal(m.weightedRecall, 0.6);
  const empty = classificationMetrics([[0, 0], [0, 0]]);
  assert.equal(empty.accuracy, 0);
  assert.equal(empty.weightedF1, 0);
  assert.equal(empty.paperF1, null); // 2 classes, 3 weights
  assert.equal(paperF1([1, 0], [0.5, 0.5]), 0.5);
});

Deno.test("confusionMatrix counts rows = true, columns = predicted and rejects bad labels", () => {
  assert.deepEqual(confusionMatrix([0, 1, 2, 2], [0, 2, 2, 1], 3), [[1, 0, 0], [0, 0, 1], [
    0,
    1,
    1,
  ]]);
  assert.throws(() => confusionMatrix([0, 3], [0, 1], 3), /yTrue\[1\] = 3 is not a class/);
  assert.throws(() => confusionMatrix([0], [0, 1], 3), /yTrue has 1 labels but yPred has 2/);
  assert.throws(() => classificationMetrics([[1, 2]]), /square/);
});

interface Arr {
  data: number[];
}
interface Case {
  name: string;
  inputs: { y_true?: Arr; y_pred?: Arr; confusion_matrix?: number[][] };
  expected: Record<string, number | number[] | number[][]>;
}

Deno.test({
  name: "classificationMetrics equals classification_metrics.json (1e-12)",
  ignore: !fixturesDir(),
  fn() {
    const fx = readFixtureJson<{ cases: Case[] }>("components", "classification_metrics.json")!;
    const keys: Record<string, string> = {
      confusion_matrix: "confusionMatrix",
      support: "support",
      predicted_count: "predictedCount",
      recall_sensitivity: "recall",
      precision: "precision",
      f1: "f1",
      specificity: "specificity",
      accuracy: "accuracy",
      micro_f1: "microF1",
      macro_precision: "macroPrecision",
      macro_recall: "macroRecall",
      macro_f1: "macroF1",
      weighted_precision: "weightedPrecision",
      weighted_recall: "weightedRecall",
      weighted_f1: "weightedF1",
      f1_of_macro_precision_and_macro_recall: "f1OfMacroPrecisionAndMacroRecall",
      f1_of_weighted_precision_and_weighted_recall: "f1OfWeightedPrecisionAndWeightedRecall",
      prediction_count_weighted_f1: "predictionCountWeightedF1",
      balanced_accuracy: "balancedAccuracy",
    };
    assert.equal(fx.cases.length, 2);
    for (const c of fx.cases) {
      const m = c.inputs.confusion_matrix
        ? classificationMetrics(c.inputs.confusion_matrix)
        : classificationMetricsFromLabels(c.inputs.y_true!.data, c.inputs.y_pred!.data, 3);
      const got = m as unknown as Record<string, unknown>;
      for (const [k, want] of Object.entries(c.expected)) {
        assert.ok(k in keys, `${c.name}: unmapped expected key ${k}`);
        const flat = (v: unknown): number[] => [v].flat(2) as number[];
        const g = flat(got[keys[k]]), w = flat(want);
        assert.equal(g.length, w.length, `${c.name}.${k}`);
        g.forEach((v, i) =>
          assert.ok(Math.abs(v - w[i]) <= 1e-12, `${c.name}.${k}[${i}]: ${v} vs ${w[i]}`)
        );
      }
    }
  },
});
