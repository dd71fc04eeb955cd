/**
 * Anchor generator with torchvision 0.14 semantics (`AnchorGenerator` in `anchor_utils.py`).
 *
 * Cell anchors are computed in float32 and rounded half to even like `torch.round`, so with the
 * paper's configuration (sizes 2..32, aspect ratios 0.1..2, ratio = height/width) two of the 30
 * cell anchors have zero height, exactly as in torchvision. Grid anchors sit at the top-left
 * corner of each feature cell (`x * stride`), with `stride = paddedImageSize // featureSize`
 * (integer division), ordered position-major (row-major positions, then the cell anchors): index
 * `(y * W + x) * A + a`. That is the order of an NHWC RPN head output reshaped to `[-1, 1]` /
 * `[-1, 4]`.
 *
 * @example
 * ```ts
 * import { AnchorGenerator } from "./anchors.ts";
 * const gen = new AnchorGenerator(); // paper defaults: 30 anchors per position
 * const anchors = gen.generate([512, 512], [[32, 32]]); // Float32Array [30720*4]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

const f32 = Math.fround;

/**
 * Rounds half to even like `torch.round` / `tf.round` (`Math.round(0.5)` is 1; this gives 0).
 * The sign of zero is not preserved (`-0.5` gives `0`).
 */
export function roundHalfToEven(x: number): number {
  const fl = Math.floor(x);
  const d = x - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** Configuration of an {@link AnchorGenerator}; one entry per feature level. */
export interface AnchorGeneratorConfig {
  /** Anchor sizes (square root of the area, in pixels) per level. Default `[[2, 4, 8, 16, 32]]`. */
  sizes?: readonly (readonly number[])[];
  /** Aspect ratios (height / width) per level. Default `[[0.1, 0.25, 0.5, 1, 1.5, 2]]`. */
  aspectRatios?: readonly (readonly number[])[];
}

/** The paper's anchor sizes (one level). */
export const DEFAULT_ANCHOR_SIZES: readonly (readonly number[])[] = [[2, 4, 8, 16, 32]];
/** The paper's aspect ratios, height / width (one level). */
export const DEFAULT_ASPECT_RATIOS: readonly (readonly number[])[] = [[0.1, 0.25, 0.5, 1, 1.5, 2]];

/**
 * Zero-centred cell anchors of one level like torchvision's `generate_anchors`: row
 * `r = ratioIndex * sizes.length + sizeIndex`, `round([-w, -h, w, h] / 2)` with
 * `h = sqrt(ratio) * size`, `w = size / sqrt(ratio)` in float32.
 * @returns Float32Array [A*4], A = ratios x sizes
 */
export function generateCellAnchors(
  sizes: readonly number[],
  aspectRatios: readonly number[],
): Float32Array {
  const out = new Float32Array(sizes.length * aspectRatios.length * 4);
  let r = 0;
  for (const ratio of aspectRatios) {
    const hRatio = f32(Math.sqrt(f32(ratio)));
    const wRatio = f32(1 / hRatio);
    for (const size of sizes) {
      const ws = f32(wRatio * f32(size)), hs = f32(hRatio * f32(size));
      out[r * 4] = roundHalfToEven(f32(-ws / 2));
      out[r * 4 + 1] = roundHalfToEven(f32(-hs / 2));
      out[r * 4 + 2] = roundHalfToEven(f32(ws / 2));
      out[r * 4 + 3] = roundHalfToEven(f32(hs / 2));
      r++;
    }
  }
  return out;
}

/**
 * Grid anchors of one level: `cell[a] + [x*strideW, y*strideH, x*strideW, y*strideH]` for every
 * position in row-major order. Float32Array [H*W*A*4].
 * @param cell cell anchors Float32Array [A*4]
 * @param featureHW feature map size `[H, W]`
 * @param strideHW stride `[strideH, strideW]` in pixels
 */
export function gridAnchors(
  cell: Float32Array,
  featureHW: readonly [number, number],
  strideHW: readonly [number, number],
): Float32Array {
  const [fh, fw] = featureHW, [sh, sw] = strideHW;
  const a = cell.length / 4;
  const out = new Float32Array(fh * fw * a * 4);
  let o = 0;
  for (let y = 0; y < fh; y++) {
    const sy = y * sh;
    for (let x = 0; x < fw; x++) {
      const sx = x * sw;
      for (let k = 0; k < a * 4; k += 4) {
        out[o++] = cell[k] + sx;
        out[o++] = cell[k + 1] + sy;
        out[o++] = cell[k + 2] + sx;
        out[o++] = cell[k + 3] + sy;
      }
    }
  }
  return out;
}

/**
 * torchvision's `AnchorGenerator`: one set of cell anchors per feature level, placed on each
 * level's grid. Defaults are the paper's (one level, 5 sizes x 6 aspect ratios = 30 anchors).
 */
export class AnchorGenerator {
  /** Sizes per level. */
  readonly sizes: readonly (readonly number[])[];
  /** Aspect ratios (height / width) per level. */
  readonly aspectRatios: readonly (readonly number[])[];
  /** Cell anchors per level, each Float32Array [A_l*4]. */
  readonly cellAnchors: readonly Float32Array[];

  /**
   * Builds the cell anchors of every level.
   * @param config sizes and aspect ratios per level (defaults: the paper's)
   */
  constructor(config: AnchorGeneratorConfig = {}) {
    const sizes = config.sizes ?? DEFAULT_ANCHOR_SIZES;
    const ratios = config.aspectRatios ?? DEFAULT_ASPECT_RATIOS;
    if (sizes.length === 0 || sizes.length !== ratios.length) {
      throw new Error(
        `AnchorGenerator: sizes (${sizes.length} levels) and aspectRatios (${ratios.length}) ` +
          "must list the same number (>= 1) of feature levels",
      );
    }
    for (const [name, lists] of [["sizes", sizes], ["aspectRatios", ratios]] as const) {
      for (const l of lists) {
        if (l.length === 0 || l.some((v) => !(v > 0) || !Number.isFinite(v))) {
          throw new Error(`AnchorGenerator: ${name} must be non-empty lists of positive numbers`);
        }
      }
    }
    this.sizes = sizes.map((s) => [...s]);
    this.aspectRatios = ratios.map((r) => [...r]);
    this.cellAnchors = this.sizes.map((s, l) => generateCellAnchors(s, this.aspectRatios[l]));
  }

  /** Anchors per position for each level (30 for the paper's configuration). */
  numAnchorsPerLocation(): number[] {
    return this.sizes.map((s, l) => s.length * this.aspectRatios[l].length);
  }

  /**
   * Strides per level: `[imageH // featH, imageW // featW]` (integer division, as torchvision).
   * @param imageHW size of the **padded batch tensor** `[H, W]`
   * @param featureSizesHW feature map sizes per level
   */
  strides(
    imageHW: readonly [number, number],
    featureSizesHW: readonly (readonly [number, number])[],
  ): [number, number][] {
    return featureSizesHW.map((
      [fh, fw],
    ) => [Math.floor(imageHW[0] / fh), Math.floor(imageHW[1] / fw)]);
  }

  /**
   * All anchors of one image, levels concatenated in order, like `AnchorGenerator.forward`.
   * @param imageHW size of the **padded batch tensor** `[H, W]` (not the unpadded image size)
   * @param featureSizesHW feature map size `[H_l, W_l]` per level
   * @returns Float32Array [sum_l H_l*W_l*A_l * 4], rows `(x1, y1, x2, y2)`
   */
  generate(
    imageHW: readonly [number, number],
    featureSizesHW: readonly (readonly [number, number])[],
  ): Float32Array {
    if (featureSizesHW.length !== this.cellAnchors.length) {
      throw new Error(
        `AnchorGenerator: got ${featureSizesHW.length} feature maps for ` +
          `${this.cellAnchors.length} anchor levels`,
      );
    }
    for (const [fh, fw] of featureSizesHW) {
      if (!Number.isInteger(fh) || !Number.isInteger(fw) || fh <= 0 || fw <= 0) {
        throw new Error(`AnchorGenerator: bad feature map size [${fh}, ${fw}]`);
      }
    }
    const strides = this.strides(imageHW, featureSizesHW);
    const parts = featureSizesHW.map((hw, l) => gridAnchors(this.cellAnchors[l], hw, strides[l]));
    if (parts.length === 1) return parts[0];
    const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }

  /**
   * {@link AnchorGenerator.generate} as a tensor `[numAnchors, 4]` (caller disposes).
   * @param imageHW size of the padded batch tensor `[H, W]`
   * @param featureSizesHW feature map size per level
   */
  generateTensor(
    imageHW: readonly [number, number],
    featureSizesHW: readonly (readonly [number, number])[],
  ): tf.Tensor2D {
    return anchorsToTensor(this.generate(imageHW, featureSizesHW));
  }
}

/** Wraps flat anchors Float32Array [A*4] as a float32 tensor `[A, 4]` (caller disposes). */
export function anchorsToTensor(anchorsXYXY: Float32Array): tf.Tensor2D {
  if (anchorsXYXY.length % 4 !== 0) {
    throw new Error(`anchorsToTensor: length ${anchorsXYXY.length} is not a multiple of 4`);
  }
  return tf.tensor2d(anchorsXYXY, [anchorsXYXY.length / 4, 4], "float32");
}
