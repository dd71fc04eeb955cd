/**
 * Image-classification metrics from a confusion matrix (rows = true class, columns = predicted
 * class): per-class sensitivity (recall), precision, F1 and specificity, accuracy, macro and
 * support-weighted averages as scikit-learn defines them, and the paper's F1.
 *
 * **The paper's F1** (Ter-Sarkisov 2020, computed by the authors' evaluation script) is
 * `sum_c w_c * F1_c` with **fixed** weights `(0.45, 0.35, 0.20)` for (Control, Common Pneumonia,
 * COVID-19) — roughly the test split's class shares — not scikit-learn's support-weighted F1. On
 * the published matrix `[[9322,123,5],[174,7139,82],[27,277,4042]]` it is 0.967595 (96.76%),
 * while `f1_score(average="weighted")` gives 96.75%.
 *
 * **Zero division** is handled like scikit-learn's default: a ratio whose denominator is 0
 * (precision of a class never predicted, recall of a class with no samples, F1 when P + R = 0,
 * a weighted average with no samples) is 0 — silently, without scikit-learn's warning.
 * `balancedAccuracy` follows `balanced_accuracy_score` and leaves out classes with no samples.
 *
 * @example
 * ```ts
 * import { classificationMetrics } from "./classification.ts";
 * const m = classificationMetrics([[9322, 123, 5], [174, 7139, 82], [27, 277, 4042]]);
 * m.paperF1; // 0.96759...
 * m.recall[2]; // 0.93005... (COVID-19 sensitivity)
 * m.accuracy; // 0.96753...
 * ```
 *
 * @module
 */

/** Class names of the paper's 3-class problem, in label order. */
export const PAPER_CLASS_NAMES: readonly string[] = ["Control", "Common Pneumonia", "COVID-19"];

/** The paper's fixed F1 weights for (Control, Common Pneumonia, COVID-19). */
export const PAPER_F1_WEIGHTS: readonly number[] = [0.45, 0.35, 0.2];

/** All metrics derived from one confusion matrix (every average is float64). */
export interface ClassificationMetrics {
  /** `[K][K]` counts, rows = true class, columns = predicted class. */
  confusionMatrix: number[][];
  /** Samples per true class (row sums). */
  support: number[];
  /** Predictions per class (column sums). */
  predictedCount: number[];
  /** Per-class sensitivity = recall = `TP / row sum`. */
  recall: number[];
  /** Per-class precision = `TP / column sum`. */
  precision: number[];
  /** Per-class F1 = `2PR / (P + R)`. */
  f1: number[];
  /** Per-class specificity = `TN / (TN + FP)`. */
  specificity: number[];
  /** `trace / total` (equal to micro-averaged F1). */
  accuracy: number;
  /** Micro-averaged F1 (= accuracy for single-label problems). */
  microF1: number;
  /** Unweighted mean of per-class precision. */
  macroPrecision: number;
  /** Unweighted mean of per-class recall. */
  macroRecall: number;
  /** Unweighted mean of per-class F1 (scikit-learn `average="macro"`). */
  macroF1: number;
  /** Support-weighted mean of per-class precision. */
  weightedPrecision: number;
  /** Support-weighted mean of per-class recall. */
  weightedRecall: number;
  /** Support-weighted mean of per-class F1 (scikit-learn `average="weighted"`). */
  weightedF1: number;
  /** `2 mP mR / (mP + mR)` of the macro precision and recall. */
  f1OfMacroPrecisionAndMacroRecall: number;
  /** `2 wP wR / (wP + wR)` of the support-weighted precision and recall. */
  f1OfWeightedPrecisionAndWeightedRecall: number;
  /** Per-class F1 weighted by predicted counts. */
  predictionCountWeightedF1: number;
  /** Mean recall over classes that have samples (scikit-learn `balanced_accuracy_score`). */
  balancedAccuracy: number;
  /**
   * The paper's F1, `sum_c w_c * F1_c` with {@link ClassificationOptions.paperWeights}
   * (default {@link PAPER_F1_WEIGHTS}); null when the number of weights differs from K.
   */
  paperF1: number | null;
}

/** Options of {@link classificationMetrics}. */
export interface ClassificationOptions {
  /** Fixed per-class F1 weights of the paper's F1. Default {@link PAPER_F1_WEIGHTS}. */
  paperWeights?: readonly number[];
}

const div = (a: number, b: number): number => (b === 0 ? 0 : a / b);
const f1Of = (p: number, r: number): number => (p + r === 0 ? 0 : (2 * p * r) / (p + r));
const sum = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0);
const mean = (v: readonly number[]): number => (v.length === 0 ? 0 : sum(v) / v.length);
const wmean = (v: readonly number[], w: readonly number[]): number =>
  div(sum(v.map((x, i) => x * w[i])), sum(w));

/**
 * Confusion matrix `[K][K]` (rows = true class, columns = predicted class) of integer labels in
 * `0..numClasses-1`.
 */
export function confusionMatrix(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new Error(`confusionMatrix: numClasses must be a positive integer, got ${numClasses}`);
  }
  if (yTrue.length !== yPred.length) {
    throw new Error(
      `confusionMatrix: yTrue has ${yTrue.length} labels but yPred has ${yPred.length}`,
    );
  }
  const cm = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const t = yTrue[i], p = yPred[i];
    for (const [name, v] of [["yTrue", t], ["yPred", p]] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
        throw new Error(
          `confusionMatrix: ${name}[${i}] = ${v} is not a class in 0..${numClasses - 1}`,
        );
      }
    }
    cm[t][p]++;
  }
  return cm;
}

/** All metrics of {@link ClassificationMetrics} from a square confusion matrix of counts. */
export function classificationMetrics(
  cm: readonly (readonly number[])[],
  options: ClassificationOptions = {},
): ClassificationMetrics {
  const K = cm.length;
  if (K === 0 || cm.some((row) => !Array.isArray(row) || row.length !== K)) {
    throw new Error("classificationMetrics: the confusion matrix must be square and non-empty");
  }
  for (const row of cm) {
    for (const v of row) {
      if (!Number.isFinite(v) || v < 0) {
        throw new Error(`classificationMetrics: confusion matrix entries must be counts, got ${v}`);
      }
    }
  }
  const total = sum(cm.map(sum));
  const support = cm.map(sum);
  const predictedCount = cm[0].map((_, j) => sum(cm.map((row) => row[j])));
  const tp = cm.map((row, k) => row[k]);
  const recall = tp.map((t, k) => div(t, support[k]));
  const precision = tp.map((t, k) => div(t, predictedCount[k]));
  const f1 = precision.map((p, k) => f1Of(p, recall[k]));
  const specificity = tp.map((t, k) => {
    const fp = predictedCount[k] - t;
    const tn = total - support[k] - fp;
    return div(tn, tn + fp);
  });
  const accuracy = div(sum(tp), total);
  const macroPrecision = mean(precision);
  const macroRecall = mean(recall);
  const weightedPrecision = wmean(precision, support);
  const weightedRecall = wmean(recall, support);
  const weights = options.paperWeights ?? PAPER_F1_WEIGHTS;
  return {
    confusionMatrix: cm.map((row) => row.slice()),
    support,
    predictedCount,
    recall,
    precision,
    f1,
    specificity,
    accuracy,
    microF1: accuracy,
    macroPrecision,
    macroRecall,
    macroF1: mean(f1),
    weightedPrecision,
    weightedRecall,
    weightedF1: wmean(f1, support),
    f1OfMacroPrecisionAndMacroRecall: f1Of(macroPrecision, macroRecall),
    f1OfWeightedPrecisionAndWeightedRecall: f1Of(weightedPrecision, weightedRecall),
    predictionCountWeightedF1: wmean(f1, predictedCount),
    balancedAccuracy: mean(recall.filter((_, k) => support[k] > 0)),
    paperF1: weights.length === K ? paperF1(f1, weights) : null,
  };
}

/**
 * The paper's F1: per-class F1 scores combined with fixed weights (default
 * {@link PAPER_F1_WEIGHTS} for Control, Common Pneumonia, COVID-19).
 */
export function paperF1(
  f1: readonly number[],
  weights: readonly number[] = PAPER_F1_WEIGHTS,
): number {
  if (f1.length !== weights.length) {
    throw new Error(`paperF1: ${f1.length} F1 values but ${weights.length} weights`);
  }
  return sum(f1.map((f, k) => f * weights[k]));
}

/** {@link classificationMetrics} of the confusion matrix of integer labels. */
export function classificationMetricsFromLabels(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  numClasses: number,
  options: ClassificationOptions = {},
): ClassificationMetrics {
  return classificationMetrics(confusionMatrix(yTrue, yPred, numClasses), options);
}
