/**
 * `COCOeval.summarize()`: the 12 standard stats and the lines pycocotools prints, formatted
 * byte-for-byte like Python (`{:0.3f}` rounds exact ties half to even, unlike `toFixed`), with
 * means taken like `numpy.mean` (pairwise summation).
 *
 * @example
 * ```ts
 * import { pyFormatFixed } from "./coco_summary.ts";
 * pyFormatFixed(0.0625, 3); // "0.062" (Number.prototype.toFixed gives "0.063")
 * ```
 *
 * @module
 */

import type { CocoEvalParams, NdArray } from "./coco.ts";

/** Accumulated arrays and parameters that the summary reads. */
export interface CocoAccumulation {
  /** Evaluation parameters (`iouThrs`, `areaRngLbl`, `maxDets` are read). */
  params: CocoEvalParams;
  /** `[T, R, K, A, M]`, -1 where undefined. */
  precision: NdArray;
  /** `[T, K, A, M]`, -1 where undefined. */
  recall: NdArray;
}

/** What one summary stat selects (pycocotools `_summarize` arguments). */
export interface SummarizeSpec {
  /** true: average precision; false: average recall. */
  ap: boolean;
  /** One IoU threshold (compared with `===` like `np.where(iouThr == iouThrs)`), or all. */
  iouThr?: number;
  /** Area range label. Default `"all"`. */
  areaRng?: string;
  /** maxDets value. Default 100 (as pycocotools, even when 100 is not in `params.maxDets`). */
  maxDets?: number;
}

/** One summary stat: its value (-1 when undefined) and the line pycocotools prints. */
export interface SummaryStat {
  /** Mean over the selected entries `> -1`, or -1 when there are none. */
  value: number;
  /** The printed line, e.g. `" Average Precision  (AP) @[ IoU=0.50:0.95 | ... ] = 0.245"`. */
  line: string;
}

/** Summary of a detection evaluation: the 12 stats and the 12 printed lines. */
export interface CocoSummary {
  /** `[AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl]`. */
  stats: number[];
  /** The lines `summarize()` prints, in the same order. */
  summaryLines: string[];
}

const PW_BLOCKSIZE = 128;
const REDUCE_BUFFER = 8192;

function pairwiseSum(a: ArrayLike<number>, start: number, n: number): number {
  if (n < 8) {
    let res = 0;
    for (let i = 0; i < n; i++) res += a[start + i];
    return res;
  }
  if (n <= PW_BLOCKSIZE) {
    const r = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let j = 0; j < 8; j++) r[j] = a[start + j];
    let i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (let j = 0; j < 8; j++) r[j] += a[start + i + j];
    }
    let res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[start + i];
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return pairwiseSum(a, start, n2) + pairwiseSum(a, start + n2, n - n2);
}

/**
 * Mean of a 1-D float64 array as `numpy.mean` computes it (pairwise summation in blocks of the
 * reduction buffer), so that summary stats agree with pycocotools to the last bit. NaN when empty.
 */
export function numpyMean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let s = 0; s < values.length; s += REDUCE_BUFFER) {
    sum += pairwiseSum(values, s, Math.min(REDUCE_BUFFER, values.length - s));
  }
  return sum / values.length;
}

/**
 * Formats `x` with `digits` decimals like Python's `format(x, "0.{digits}f")`: correctly rounded
 * from the exact binary value with ties to even (JavaScript's `toFixed` sends ties away from 0).
 */
export function pyFormatFixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return x > 0 ? "inf" : x < 0 ? "-inf" : "nan";
  const neg = x < 0 || Object.is(x, -0);
  const ax = Math.abs(x);
  const scaled = ax * 2 ** (digits + 1);
  // an exact tie (n + 1/2) / 10^digits is a binary number m / 2^(digits+1) with m odd
  if (digits <= 20 && Number.isInteger(scaled) && scaled % 2 === 1) {
    const lo = Math.floor(ax * 10 ** digits); // exact: the product is a half-integer
    const n = lo % 2 === 0 ? lo : lo + 1;
    const s = n.toString().padStart(digits + 1, "0");
    const body = digits > 0 ? `${s.slice(0, s.length - digits)}.${s.slice(s.length - digits)}` : s;
    return (neg ? "-" : "") + body;
  }
  const body = ax.toFixed(digits);
  return (neg ? "-" : "") + body;
}

/**
 * One stat of `COCOeval.summarize()` (pycocotools `_summarize`): the mean over the entries `> -1`
 * of the precision (or recall) slice for the IoU threshold(s), area range and maxDets asked for,
 * and the printed line.
 */
export function summarizeStat(acc: CocoAccumulation, spec: SummarizeSpec): SummaryStat {
  const p = acc.params;
  const areaRng = spec.areaRng ?? "all";
  const maxDets = spec.maxDets ?? 100;
  const T = p.iouThrs.length;
  const tinds = spec.iouThr === undefined
    ? [...Array(T).keys()]
    : [...Array(T).keys()].filter((t) => p.iouThrs[t] === spec.iouThr);
  const ainds = p.areaRngLbl.flatMap((l, i) => (l === areaRng ? [i] : []));
  const minds = p.maxDets.flatMap((m, i) => (m === maxDets ? [i] : []));
  const vals: number[] = [];
  if (spec.ap) {
    const [, R, K, A, M] = acc.precision.shape;
    const d = acc.precision.data;
    for (const t of tinds) {
      for (let r = 0; r < R; r++) {
        for (let k = 0; k < K; k++) {
          for (const a of ainds) {
            for (const m of minds) {
              const v = d[(((t * R + r) * K + k) * A + a) * M + m];
              if (v > -1) vals.push(v);
            }
          }
        }
      }
    }
  } else {
    const [, K, A, M] = acc.recall.shape;
    const d = acc.recall.data;
    for (const t of tinds) {
      for (let k = 0; k < K; k++) {
        for (const a of ainds) {
          for (const m of minds) {
            const v = d[((t * K + k) * A + a) * M + m];
            if (v > -1) vals.push(v);
          }
        }
      }
    }
  }
  const value = vals.length === 0 ? -1 : numpyMean(vals);
  const title = spec.ap ? "Average Precision" : "Average Recall";
  const type = spec.ap ? "(AP)" : "(AR)";
  const iouStr = spec.iouThr === undefined
    ? `${pyFormatFixed(p.iouThrs[0], 2)}:${pyFormatFixed(p.iouThrs[T - 1], 2)}`
    : pyFormatFixed(spec.iouThr, 2);
  const line = ` ${title.padEnd(18)} ${type} @[ IoU=${iouStr.padEnd(9)} | area=${
    areaRng.padStart(6)
  } | maxDets=${String(maxDets).padStart(3)} ] = ${pyFormatFixed(value, 3)}`;
  return { value, line };
}

/**
 * The 12 detection stats of `COCOeval.summarize()` and their printed lines. Note that, as in
 * pycocotools, AP@[.5:.95] always looks up maxDets = 100, so it is -1 when 100 is not one of
 * `params.maxDets` (e.g. `[1, 10, 128]`); the other stats use `maxDets[2]`.
 */
export function summarizeDets(acc: CocoAccumulation): CocoSummary {
  const md = acc.params.maxDets;
  if (md.length < 3) {
    throw new Error(`summarizeDets: params.maxDets needs 3 values, got [${md.join(", ")}]`);
  }
  const specs: SummarizeSpec[] = [
    { ap: true },
    { ap: true, iouThr: 0.5, maxDets: md[2] },
    { ap: true, iouThr: 0.75, maxDets: md[2] },
    { ap: true, areaRng: "small", maxDets: md[2] },
    { ap: true, areaRng: "medium", maxDets: md[2] },
    { ap: true, areaRng: "large", maxDets: md[2] },
    { ap: false, maxDets: md[0] },
    { ap: false, maxDets: md[1] },
    { ap: false, maxDets: md[2] },
    { ap: false, areaRng: "small", maxDets: md[2] },
    { ap: false, areaRng: "medium", maxDets: md[2] },
    { ap: false, areaRng: "large", maxDets: md[2] },
  ];
  const out = specs.map((s) => summarizeStat(acc, s));
  return { stats: out.map((o) => o.value), summaryLines: out.map((o) => o.line) };
}
