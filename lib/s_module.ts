/**
 * RoI batch selection and module S, the SSM's image classifier (paper §3.2, Fig. 2).
 *
 * The classification box branch scores every RPN proposal. {@linkcode selectRoIBatch} ranks
 * them as the authors do (softmax, decode + clip only to run NMS, drop empty boxes, batched NMS
 * at 0.75, keep the best 128) and returns which rows to take; {@linkcode gatherRoIBatch} builds
 * the differentiable `[128, 5]` batch of `[score, dx, dy, dw, dh]` rows (raw, encoded deltas) so
 * that the classification loss reaches the backbone; {@linkcode SModule} maps its 640-element
 * flatten to the 3 image-class logits.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { SModule } from "@covid-ssm/ssm";
 * const s = new SModule();
 * const logits = s.apply(tf.zeros([128, 5])); // [1, 3]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { Module } from "./nn/module.ts";
import { Linear } from "./nn/layers.ts";
import { SeedSequence } from "./nn/init.ts";
import { batchedNms, BoxCoder, clipBoxesToImage } from "./boxes.ts";
import type { Rng } from "./rng.ts";

/** Module S (`s2new`): flatten 128×5 → Linear 512 → ReLU → Linear 512 → ReLU → Linear 3. */
export class SModule extends Module {
  /** First layer (`fc_scores`). */
  readonly fcScores: Linear;
  /** Second layer (`fc_scores_2`). */
  readonly fcScores2: Linear;
  /** Output layer (`fc_scores_img`). */
  readonly fcScoresImg: Linear;

  /**
   * @param batchSize RoI batch rows (128)
   * @param rowSize values per row (5)
   * @param representationSize hidden size (512)
   * @param numClasses image classes (3)
   * @param seeds init seeds
   */
  constructor(
    readonly batchSize = 128,
    readonly rowSize = 5,
    readonly representationSize = 512,
    readonly numClasses = 3,
    seeds: SeedSequence = new SeedSequence(0),
  ) {
    super();
    const n = batchSize * rowSize;
    this.fcScores = this.addModule("fc_scores", new Linear(n, representationSize, { seeds }));
    this.fcScores2 = this.addModule(
      "fc_scores_2",
      new Linear(representationSize, representationSize, { seeds }),
    );
    this.fcScoresImg = this.addModule(
      "fc_scores_img",
      new Linear(representationSize, numClasses, { seeds }),
    );
  }

  /** RoI batch `[128, 5]` (or `[B, 128, 5]`) → image-class logits `[1, 3]` (`[B, 3]`). */
  apply(roiBatch: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const x = tf.reshape(roiBatch, [-1, this.batchSize * this.rowSize]) as tf.Tensor2D;
      const h = tf.relu(this.fcScores2.apply(tf.relu(this.fcScores.apply(x))));
      return this.fcScoresImg.apply(h);
    });
  }
}

/** Options of {@linkcode selectRoIBatch}. */
export interface RoIBatchSelectionOptions {
  /** Rows to keep (128). */
  boxDetections: number;
  /** Batched-NMS IoU threshold (0.75). */
  nmsThresh: number;
  /** Minimum decoded, clipped box area (strict, 1e-5). */
  minArea: number;
  /** Box coder weights of the box branch ((10, 10, 5, 5)). */
  boxCoderWeights: [number, number, number, number];
  /** Source of the random repeat positions used when fewer rows survive. */
  rng?: Rng;
}

/** Which rows form the RoI batch, and the intermediate counts (for notebooks and tests). */
export interface RoIBatchSelection {
  /** Index into the flattened `[P, numClasses-1]` foreground scores of each of the rows. */
  rowIndex: Int32Array;
  /** Proposal index of each row. */
  proposalIndex: Int32Array;
  /** Foreground class (1-based) of each row. */
  classIndex: Int32Array;
  /** Decoded, clipped boxes of the rows `[rows·4]` (x1, y1, x2, y2). */
  decodedBoxes: Float32Array;
  /** Scores of the rows. */
  scores: Float32Array;
  /** Candidates left after the area filter. */
  numAfterAreaFilter: number;
  /** Candidates left after NMS (before the 128 cut and padding). */
  numSurvivors: number;
  /** Rows that are repeats added by padding. */
  numPadded: number;
}

/**
 * Ranks the classification branch's outputs into the RoI batch, as the authors do.
 *
 * @param proposals `[P·4]` proposal boxes in the (resized) image frame
 * @param classProbs `[P·K]` softmax class probabilities (K classes incl. background)
 * @param boxRegression `[P·K·4]` raw class-major box deltas
 * @param imageSize `[height, width]` used to clip the decoded boxes
 * @param opts selection options
 */
export function selectRoIBatch(
  proposals: Float32Array,
  classProbs: Float32Array,
  boxRegression: Float32Array,
  imageSize: [number, number],
  opts: RoIBatchSelectionOptions,
): RoIBatchSelection {
  const p = proposals.length / 4;
  const k = p > 0 ? classProbs.length / p : 2;
  const fg = k - 1;
  const coder = new BoxCoder(opts.boxCoderWeights);
  // Candidate per (proposal, foreground class), flattened proposal-major like torchvision.
  const cand: number[] = [];
  const boxes: number[] = [];
  const scores: number[] = [];
  const labels: number[] = [];
  for (let c = 1; c < k; c++) {
    const deltas = new Float32Array(p * 4);
    for (let i = 0; i < p; i++) {
      for (let j = 0; j < 4; j++) deltas[i * 4 + j] = boxRegression[(i * k + c) * 4 + j];
    }
    const decoded = clipBoxesToImage(coder.decode(deltas, proposals), imageSize);
    for (let i = 0; i < p; i++) {
      const x1 = decoded[i * 4], y1 = decoded[i * 4 + 1];
      const x2 = decoded[i * 4 + 2], y2 = decoded[i * 4 + 3];
      if (!((x2 - x1) * (y2 - y1) > opts.minArea)) continue;
      cand.push(i * fg + (c - 1));
      boxes.push(x1, y1, x2, y2);
      scores.push(classProbs[i * k + c]);
      labels.push(c);
    }
  }
  // Keep candidate order proposal-major (torchvision flattens [P, K-1]).
  const order = cand.map((_, i) => i).sort((a, b) => cand[a] - cand[b]);
  const cBoxes = new Float32Array(order.length * 4);
  const cScores = new Float32Array(order.length);
  const cLabels = new Int32Array(order.length);
  order.forEach((o, i) => {
    cBoxes.set(boxes.slice(o * 4, o * 4 + 4), i * 4);
    cScores[i] = scores[o];
    cLabels[i] = labels[o];
  });
  const keep = batchedNms(cBoxes, cScores, cLabels, opts.nmsThresh);
  const survivors = keep.length;
  let chosen = Array.from(keep.slice(0, opts.boxDetections));
  let numPadded = 0;
  if (chosen.length > 0 && chosen.length < opts.boxDetections) {
    // Pad by repeating randomly drawn rows, keeping the ranking order (repeats sit together).
    const rank = chosen.map((_, i) => i);
    const extra: number[] = [];
    for (let i = chosen.length; i < opts.boxDetections; i++) {
      extra.push(opts.rng ? opts.rng.int(0, chosen.length) : i % chosen.length);
    }
    numPadded = extra.length;
    const all = [...rank, ...extra].sort((a, b) => a - b);
    chosen = all.map((r) => chosen[r]);
  }
  const n = chosen.length;
  const out: RoIBatchSelection = {
    rowIndex: new Int32Array(n),
    proposalIndex: new Int32Array(n),
    classIndex: new Int32Array(n),
    decodedBoxes: new Float32Array(n * 4),
    scores: new Float32Array(n),
    numAfterAreaFilter: order.length,
    numSurvivors: survivors,
    numPadded,
  };
  chosen.forEach((ci, r) => {
    const flat = cand[order[ci]];
    out.rowIndex[r] = flat;
    out.proposalIndex[r] = Math.floor(flat / fg);
    out.classIndex[r] = (flat % fg) + 1;
    out.decodedBoxes.set(cBoxes.subarray(ci * 4, ci * 4 + 4), r * 4);
    out.scores[r] = cScores[ci];
  });
  return out;
}

/**
 * Builds the differentiable RoI batch `[rows, 5]` = `[score, dx, dy, dw, dh]` from the branch's
 * tensors and a selection. Rows are gathered with a one-hot matrix product, so gradients reach
 * the branch (and through it the backbone) on every backend. When the selection is empty the
 * batch is all zeros.
 *
 * @param classLogits `[P, K]` logits of the classification branch
 * @param boxRegression `[P, K·4]` raw deltas of the classification branch
 * @param selection from {@linkcode selectRoIBatch}
 * @param rows batch rows (128)
 */
export function gatherRoIBatch(
  classLogits: tf.Tensor2D,
  boxRegression: tf.Tensor2D,
  selection: RoIBatchSelection,
  rows = 128,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [p, k] = classLogits.shape;
    const fg = k - 1;
    if (selection.rowIndex.length === 0 || p === 0) return tf.zeros([rows, 5]) as tf.Tensor2D;
    const probs = tf.softmax(classLogits);
    // Candidate table [P·fg, 5]: score of class c and its four deltas.
    const fgScores = tf.reshape(tf.slice(probs, [0, 1], [p, fg]), [p * fg, 1]);
    const fgDeltas = tf.reshape(tf.slice(boxRegression, [0, 4], [p, fg * 4]), [p * fg, 4]);
    const table = tf.concat([fgScores, fgDeltas], 1);
    const oneHot = new Float32Array(selection.rowIndex.length * p * fg);
    selection.rowIndex.forEach((idx, r) => (oneHot[r * p * fg + idx] = 1));
    const sel = tf.tensor2d(oneHot, [selection.rowIndex.length, p * fg]);
    const batch = tf.matMul(sel, table) as tf.Tensor2D;
    if (batch.shape[0] === rows) return batch;
    return tf.concat([batch, tf.zeros([rows - batch.shape[0], 5])], 0) as tf.Tensor2D;
  });
}
