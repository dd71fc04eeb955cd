/**
 * The image types shared by the readers, writers and transforms of the data layer.
 *
 * @example
 * ```ts
 * import type { GrayImage } from "./image_types.ts";
 * const img: GrayImage = { width: 2, height: 1, data: new Float32Array([0, 1]) };
 * ```
 * @module
 */

/** A single-channel float image, row-major, values in [0, 1]. */
export interface GrayImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `height * width` values in [0, 1], row-major. */
  data: Float32Array;
}

/** An 8-bit image with 1 (grey), 3 (RGB) or 4 (RGBA) interleaved channels. */
export interface ByteImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Channels per pixel: 1, 3 or 4. */
  channels: 1 | 3 | 4;
  /** `height * width * channels` bytes, row-major, interleaved. */
  data: Uint8Array;
}

/** An integer label map (segmentation mask), row-major. */
export interface LabelMap {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `height * width` labels. */
  data: Uint8Array;
}
