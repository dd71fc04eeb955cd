/**
 * Input transform with the semantics of torchvision 0.14's `GeneralizedRCNNTransform` in eval
 * mode: normalise with the ImageNet mean/std, resize so the short side is `minSize` (512) unless
 * the long side would pass `maxSize` (1024), and zero-pad bottom/right to a multiple of
 * `sizeDivisible` (32). Boxes predicted on the resized image are mapped back with
 * {@link postprocessBoxes}.
 *
 * The exact torchvision rules reproduced here: the scale factor is computed in float32
 * (`min(512/short, 1024/long)`); the output size is `floor(size * scale)` in float64 (so 373x359
 * becomes 531x511, not 531x512); the bilinear resize uses `align_corners=False` with the scale
 * recomputed as `in/out` (tfjs `resizeBilinear(halfPixelCenters=true)`), with no antialiasing;
 * box ratios are float32 `new/old` per axis.
 *
 * Images are NHWC float32 in [0, 1]: `[H, W, 3]` or `[1, H, W, 3]` (a single channel is
 * replicated), or a greyscale `{width, height, data}` (8-bit data is divided by 255).
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { GeneralizedRCNNTransform, postprocessBoxes } from "./transform.ts";
 * const t = new GeneralizedRCNNTransform();
 * const { images, imageSize, originalSize } = t.forward(tf.zeros([373, 359, 3]));
 * // images: [1, 544, 512, 3]; imageSize: [531, 511]; originalSize: [373, 359]
 * const boxes = postprocessBoxes(new Float32Array([10, 10, 100, 100]), imageSize, originalSize);
 * images.dispose();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

const f32 = Math.fround;

/** Configuration of {@link GeneralizedRCNNTransform} (defaults: the paper's). */
export interface TransformConfig {
  /** Target length of the short side. Default 512. */
  minSize?: number;
  /** Upper bound of the long side. Default 1024. */
  maxSize?: number;
  /** Per-channel mean (RGB). Default ImageNet `[0.485, 0.456, 0.406]`. */
  imageMean?: readonly [number, number, number];
  /** Per-channel standard deviation (RGB). Default ImageNet `[0.229, 0.224, 0.225]`. */
  imageStd?: readonly [number, number, number];
  /** The padded batch's height and width are multiples of this. Default 32. */
  sizeDivisible?: number;
}

/** A greyscale image in row-major order; 8-bit data is scaled by 1/255, float data used as is. */
export interface GreyImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `height * width` values: uint8 in [0, 255] or float32 in [0, 1]. */
  data: Uint8Array | Uint8ClampedArray | Float32Array;
}

/** Accepted inputs of {@link GeneralizedRCNNTransform.forward}. */
export type TransformInput = tf.Tensor3D | tf.Tensor4D | GreyImage;

/** Result of {@link GeneralizedRCNNTransform.forward}. */
export interface TransformOutput {
  /** Normalised, resized, zero-padded batch `[1, Hp, Wp, 3]` (caller disposes). */
  images: tf.Tensor4D;
  /** `[h, w]` of the resized image before padding (torchvision's `image_sizes[0]`). */
  imageSize: [number, number];
  /** `[H, W]` of the input image. */
  originalSize: [number, number];
  /** The float32 scale factor (as a JS number). */
  scaleFactor: number;
}

/** Size computation of {@link GeneralizedRCNNTransform}. */
export interface ResizePlan {
  /** float32 `min(minSize/short, maxSize/long)`. */
  scaleFactor: number;
  /** `[floor(H*scale), floor(W*scale)]`. */
  size: [number, number];
}

/**
 * torchvision's `GeneralizedRCNNTransform` (eval mode) for one image, on tfjs tensors.
 */
export class GeneralizedRCNNTransform {
  /** Target short side. */
  readonly minSize: number;
  /** Long-side bound. */
  readonly maxSize: number;
  /** Per-channel mean. */
  readonly imageMean: readonly [number, number, number];
  /** Per-channel std. */
  readonly imageStd: readonly [number, number, number];
  /** Padding multiple. */
  readonly sizeDivisible: number;

  /**
   * Creates the transform.
   * @param config sizes, normalisation and padding (defaults: 512 / 1024, ImageNet, 32)
   */
  constructor(config: TransformConfig = {}) {
    this.minSize = config.minSize ?? 512;
    this.maxSize = config.maxSize ?? 1024;
    this.imageMean = config.imageMean ?? [0.485, 0.456, 0.406];
    this.imageStd = config.imageStd ?? [0.229, 0.224, 0.225];
    this.sizeDivisible = config.sizeDivisible ?? 32;
    for (const [k, v] of [["minSize", this.minSize], ["maxSize", this.maxSize]] as const) {
      if (!(v > 0) || !Number.isFinite(v)) {
        throw new Error(`GeneralizedRCNNTransform: bad ${k} ${v}`);
      }
    }
    if (!Number.isInteger(this.sizeDivisible) || this.sizeDivisible < 1) {
      throw new Error(`GeneralizedRCNNTransform: bad sizeDivisible ${this.sizeDivisible}`);
    }
    if (
      this.imageMean.length !== 3 || this.imageStd.length !== 3 ||
      this.imageStd.some((s) => !(s > 0))
    ) {
      throw new Error("GeneralizedRCNNTransform: imageMean/imageStd must be 3 numbers, std > 0");
    }
  }

  /**
   * The scale factor and resized size for an `h x w` image, exactly as torchvision computes them.
   */
  plan(h: number, w: number): ResizePlan {
    const short = f32(Math.min(h, w)), long = f32(Math.max(h, w));
    const scale = f32(Math.min(f32(f32(this.minSize) / short), f32(f32(this.maxSize) / long)));
    return { scaleFactor: scale, size: [Math.floor(h * scale), Math.floor(w * scale)] };
  }

  /** Padded size `[ceil(h/d)*d, ceil(w/d)*d]` of a resized image. */
  paddedSize(imageSize: readonly [number, number]): [number, number] {
    const d = this.sizeDivisible;
    return [Math.ceil(imageSize[0] / d) * d, Math.ceil(imageSize[1] / d) * d];
  }

  /**
   * Normalise, resize and pad one image.
   * @param image `[H, W, 3]`, `[1, H, W, 3]` (or 1 channel) float32 in [0, 1], or a {@link GreyImage}
   */
  forward(image: TransformInput): TransformOutput {
    const input = checkInput(image);
    try {
      const [h, w] = input.grey ? [input.h, input.w] : [input.x.shape[1], input.x.shape[2]];
      const { scaleFactor, size } = this.plan(h, w);
      if (size[0] < 1 || size[1] < 1) {
        throw new Error(`GeneralizedRCNNTransform: image ${h}x${w} resizes to an empty image`);
      }
      const [ph, pw] = this.paddedSize(size);
      const images = tf.tidy(() => {
        let x: tf.Tensor4D;
        if (input.grey || input.x.shape[3] === 1) {
          // One pass instead of concat + broadcast sub + div (bitwise the same float32 values).
          const grey = input.grey ? input.grey : input.x.dataSync() as Float32Array;
          x = tf.tensor4d(normaliseGrey(grey, this.imageMean, this.imageStd), [1, h, w, 3]);
        } else {
          const mean = tf.tensor1d([...this.imageMean], "float32");
          const std = tf.tensor1d([...this.imageStd], "float32");
          x = tf.div(tf.sub(input.x, mean), std);
        }
        if (size[0] !== h || size[1] !== w) x = resizeBilinearHalfPixel(x, size);
        if (ph !== size[0] || pw !== size[1]) {
          x = tf.pad(x, [[0, 0], [0, ph - size[0]], [0, pw - size[1]], [0, 0]]);
        }
        return x;
      });
      return { images, imageSize: size, originalSize: [h, w], scaleFactor };
    } finally {
      if (!input.grey && input.x !== image) input.x.dispose();
    }
  }
}

/** Source indices and weights of a half-pixel bilinear resize along one axis (float64). */
function axisWeights(
  nIn: number,
  nOut: number,
): { i0: Int32Array; i1: Int32Array; l: Float32Array } {
  const i0 = new Int32Array(nOut), i1 = new Int32Array(nOut), l = new Float32Array(nOut);
  const scale = nIn / nOut;
  for (let d = 0; d < nOut; d++) {
    const src = Math.max(scale * (d + 0.5) - 0.5, 0);
    const lo = Math.min(Math.floor(src), nIn - 1);
    i0[d] = lo;
    i1[d] = Math.min(lo + 1, nIn - 1);
    l[d] = src - lo;
  }
  return { i0, i1, l };
}

/**
 * Bilinear resize of `[1, H, W, C]` to `[1, h, w, C]` with `align_corners=False` and the scale
 * taken as in/out (PyTorch `interpolate(..., recompute_scale_factor=True)`, tfjs
 * `halfPixelCenters=true`), without antialiasing. Indices and weights are computed in float64 on
 * the CPU and applied separably with gathers, so every backend gives the same result to float32
 * rounding (a backend's own resize kernel computes source coordinates in float32, which on a
 * saw-tooth image costs up to ~1.5e-4).
 */
export function resizeBilinearHalfPixel(
  imageNHWC: tf.Tensor4D,
  sizeHW: readonly [number, number],
): tf.Tensor4D {
  const [, h, w] = imageNHWC.shape;
  const [nh, nw] = sizeHW;
  if (!Number.isInteger(nh) || !Number.isInteger(nw) || nh < 1 || nw < 1) {
    throw new Error(`resizeBilinearHalfPixel: bad output size [${nh}, ${nw}]`);
  }
  return tf.tidy(() => {
    let x = imageNHWC;
    for (const [axis, nIn, nOut] of [[1, h, nh], [2, w, nw]] as const) {
      if (nIn === nOut) continue;
      const { i0, i1, l } = axisWeights(nIn, nOut);
      const a = tf.gather(x, tf.tensor1d(i0, "int32"), axis);
      const b = tf.gather(x, tf.tensor1d(i1, "int32"), axis);
      const shape: [number, number, number, number] = axis === 1
        ? [1, nOut, 1, 1]
        : [1, 1, nOut, 1];
      const lt = tf.reshape(tf.tensor1d(l, "float32"), shape);
      x = tf.add(tf.mul(tf.sub(1, lt), a), tf.mul(lt, b));
    }
    return x;
  });
}

/**
 * `[(g - mean[c]) / std[c] for c in 0..2]` per pixel of a one-channel image, in float32 arithmetic
 * (each operation rounded to float32, as the tensor ops do), as `[H*W*3]`.
 */
export function normaliseGrey(
  grey: ArrayLike<number>,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const f = Math.fround;
  const m0 = f(mean[0]), m1 = f(mean[1]), m2 = f(mean[2]);
  const s0 = f(std[0]), s1 = f(std[1]), s2 = f(std[2]);
  const out = new Float32Array(grey.length * 3);
  for (let i = 0, o = 0; i < grey.length; i++, o += 3) {
    const v = f(grey[i]);
    out[o] = f(v - m0) / s0;
    out[o + 1] = f(v - m1) / s1;
    out[o + 2] = f(v - m2) / s2;
  }
  return out;
}

/**
 * A checked input: an NHWC tensor (`x`), or the [0, 1] values of a greyscale `{width, height,
 * data}` image (`grey`, `h`, `w`), which need no tensor before normalisation.
 */
type CheckedInput =
  | { x: tf.Tensor4D; grey?: undefined }
  | { grey: Float32Array; h: number; w: number };

function checkInput(image: TransformInput): CheckedInput {
  if (image instanceof tf.Tensor) {
    if (image.dtype !== "float32") {
      throw new Error(`GeneralizedRCNNTransform: image tensor must be float32, got ${image.dtype}`);
    }
    const shape = image.shape;
    const ok = (image.rank === 3 && (shape[2] === 3 || shape[2] === 1)) ||
      (image.rank === 4 && shape[0] === 1 && (shape[3] === 3 || shape[3] === 1));
    if (!ok) {
      throw new Error(
        `GeneralizedRCNNTransform: image must be [H, W, 3|1] or [1, H, W, 3|1], got [${shape}]`,
      );
    }
    return { x: image.rank === 4 ? image as tf.Tensor4D : tf.expandDims(image as tf.Tensor3D, 0) };
  }
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`GeneralizedRCNNTransform: bad greyscale image size ${width}x${height}`);
  }
  if (!data || data.length !== width * height) {
    throw new Error(
      `GeneralizedRCNNTransform: greyscale data has ${data?.length} values, expected ${
        width * height
      }`,
    );
  }
  let values: Float32Array;
  if (data instanceof Float32Array) values = data;
  else {
    values = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) values[i] = data[i] / 255;
  }
  return { grey: values, h: height, w: width };
}

/**
 * Rescales boxes from an image of size `fromSize` to `toSize` like torchvision's `resize_boxes`:
 * x times `float32(toW)/float32(fromW)`, y times `float32(toH)/float32(fromH)`, in float32; no
 * clipping or rounding.
 * @param boxesXYXY Float32Array [N*4]
 * @param fromSize `[h, w]` the boxes refer to
 * @param toSize `[h, w]` to map them to
 * @returns Float32Array [N*4]
 */
export function resizeBoxes(
  boxesXYXY: Float32Array | Float64Array,
  fromSize: readonly [number, number],
  toSize: readonly [number, number],
): Float32Array {
  if (boxesXYXY.length % 4 !== 0) {
    throw new Error(`resizeBoxes: boxes length ${boxesXYXY.length} is not a multiple of 4`);
  }
  const rh = f32(f32(toSize[0]) / f32(fromSize[0]));
  const rw = f32(f32(toSize[1]) / f32(fromSize[1]));
  const out = new Float32Array(boxesXYXY.length);
  for (let i = 0; i < out.length; i += 4) {
    out[i] = f32(boxesXYXY[i] * rw);
    out[i + 1] = f32(boxesXYXY[i + 1] * rh);
    out[i + 2] = f32(boxesXYXY[i + 2] * rw);
    out[i + 3] = f32(boxesXYXY[i + 3] * rh);
  }
  return out;
}

/**
 * Maps boxes predicted on the resized image back to the original image (torchvision's
 * `GeneralizedRCNNTransform.postprocess` for boxes): `resizeBoxes(boxes, imageSize, originalSize)`.
 * @param boxesXYXY Float32Array [N*4] in the resized (unpadded) frame
 * @param imageSize `[h, w]` of the resized image (`TransformOutput.imageSize`)
 * @param originalSize `[H, W]` of the input image
 */
export function postprocessBoxes(
  boxesXYXY: Float32Array | Float64Array,
  imageSize: readonly [number, number],
  originalSize: readonly [number, number],
): Float32Array {
  return resizeBoxes(boxesXYXY, imageSize, originalSize);
}
