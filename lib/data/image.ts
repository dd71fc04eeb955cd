/**
 * Image input and output: 8/16-bit greyscale, palette and RGB(A) PNG (`fast-png`), baseline and
 * progressive JPEG (`jpeg-js`) and uncompressed DICOM CT slices (see `dicom.ts`), all decoded into
 * a float32 [0, 1] greyscale {@linkcode GrayImage}. {@linkcode readImage} picks the decoder from
 * the file's magic bytes, not its extension. Colour images are converted to grey with the
 * ITU-R BT.601 luma weights (a grey image stored as RGB stays exact). Segmentation masks are read
 * as integer label maps with {@linkcode readLabelMap} (palette indices or grey values).
 * PNG output ({@linkcode writePng}) is atomic. The readers do not depend on tfjs:
 * {@linkcode toRGBData} gives the `[1, H, W, 3]` data for `tf.tensor4d`.
 *
 * @example
 * ```ts
 * import { readImage, writePng, grayToBytes } from "./image.ts";
 * const img = { width: 2, height: 2, data: new Float32Array([0, 0.25, 0.5, 1]) };
 * await writePng("/tmp/example_gray.png", grayToBytes(img));
 * const back = await readImage("/tmp/example_gray.png");
 * console.log(back.width, back.data[3]); // 2 1
 * ```
 * @module
 */

import { decode as pngDecode, encode as pngEncode } from "fast-png";
import type { DecodedPng } from "fast-png";
import { decode as jpegDecode } from "jpeg-js";
import { writeFileAtomic } from "./atomic.ts";
import { decodeDicom, type DicomReadOptions, hasDicomSignature } from "./dicom.ts";
import type { ByteImage, GrayImage, LabelMap } from "./image_types.ts";

export type { ByteImage, GrayImage, LabelMap } from "./image_types.ts";

/** Options for {@linkcode readImage} / {@linkcode decodeImage}. */
export interface ImageReadOptions {
  /** DICOM options (window, frame); ignored for PNG and JPEG. */
  dicom?: DicomReadOptions;
}

/** The file formats {@linkcode detectFormat} recognises. */
export type ImageFormat = "png" | "jpeg" | "dicom";

/** Identifies PNG, JPEG or DICOM from magic bytes; null when none matches. */
export function detectFormat(bytes: Uint8Array): ImageFormat | null {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length >= 8 && png.every((b, i) => bytes[i] === b)) return "png";
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    return "jpeg";
  }
  if (hasDicomSignature(bytes)) return "dicom";
  return null;
}

function decodePngChecked(bytes: Uint8Array, name: string): DecodedPng {
  let png: DecodedPng;
  try {
    png = pngDecode(bytes);
  } catch (err) {
    throw new Error(`${name}: corrupt PNG (${(err as Error).message})`);
  }
  const { width, height, depth, channels } = png;
  const rowBytes = Math.ceil((width * depth * channels) / 8);
  const expected = depth === 16 ? width * height * channels : rowBytes * height;
  if (!(width > 0 && height > 0) || png.data.length < expected) {
    throw new Error(
      `${name}: corrupt or truncated PNG (pixel data ${png.data.length} < ${expected})`,
    );
  }
  return png;
}

/** Unpacks 1/2/4/8/16-bit samples of one channel image into plain numbers per pixel. */
function samples(png: DecodedPng): Uint8Array | Uint16Array {
  const { width, height, depth, channels, data } = png;
  if (depth === 8 || depth === 16) return data as Uint8Array | Uint16Array;
  // Sub-byte depths only exist for grey and palette (one channel); rows are byte-aligned.
  const out = new Uint8Array(width * height * channels);
  const per = 8 / depth;
  const rowBytes = Math.ceil((width * channels) / per);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width * channels; x++) {
      const byte = data[y * rowBytes + Math.floor(x / per)];
      const shift = 8 - depth * ((x % per) + 1);
      out[y * width * channels + x] = (byte >> shift) & mask;
    }
  }
  return out;
}

const LUMA = [0.299, 0.587, 0.114];

/** Decodes PNG bytes (grey, grey+alpha, palette, RGB, RGBA; 1-16 bit) into a [0, 1] grey image. */
export function decodePng(bytes: Uint8Array, name = "<png>"): GrayImage {
  const png = decodePngChecked(bytes, name);
  const { width, height, depth, channels } = png;
  const n = width * height;
  const s = samples(png);
  const out = new Float32Array(n);
  if (png.palette) {
    const lum = png.palette.map((c) => (LUMA[0] * c[0] + LUMA[1] * c[1] + LUMA[2] * c[2]) / 255);
    for (let i = 0; i < n; i++) {
      const v = lum[s[i]];
      if (v === undefined) throw new Error(`${name}: palette index ${s[i]} out of range`);
      out[i] = v;
    }
    return { width, height, data: out };
  }
  const max = depth === 16 ? 65535 : (1 << depth) - 1;
  if (channels <= 2) {
    for (let i = 0; i < n; i++) out[i] = s[i * channels] / max;
  } else if (channels === 3 || channels === 4) {
    for (let i = 0; i < n; i++) {
      const r = s[i * channels], g = s[i * channels + 1], b = s[i * channels + 2];
      out[i] = r === g && g === b ? r / max : (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b) / max;
    }
  } else {
    throw new Error(`${name}: unsupported PNG channel count ${channels}`);
  }
  return { width, height, data: out };
}

/** Decodes baseline or progressive JPEG bytes into a [0, 1] grey image. */
export function decodeJpeg(bytes: Uint8Array, name = "<jpeg>"): GrayImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpegDecode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxMemoryUsageInMB: 1024,
    });
  } catch (err) {
    throw new Error(`${name}: corrupt or unsupported JPEG (${(err as Error).message})`);
  }
  const { width, height, data } = img;
  const n = width * height;
  if (!(width > 0 && height > 0) || data.length < 3 * n) {
    throw new Error(`${name}: corrupt JPEG (no pixel data)`);
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const r = data[3 * i], g = data[3 * i + 1], b = data[3 * i + 2];
    out[i] = r === g && g === b ? r / 255 : (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b) / 255;
  }
  return { width, height, data: out };
}

/** Decodes PNG, JPEG or DICOM bytes (chosen by magic bytes); `name` appears in errors. */
export function decodeImage(
  bytes: Uint8Array,
  name: string,
  options: ImageReadOptions = {},
): GrayImage {
  switch (detectFormat(bytes)) {
    case "png":
      return decodePng(bytes, name);
    case "jpeg":
      return decodeJpeg(bytes, name);
    case "dicom":
      return decodeDicom(bytes, name, options.dicom);
    default:
      throw new Error(
        `${name}: unrecognised image format (not PNG, JPEG or DICOM part 10; ${bytes.length} bytes)`,
      );
  }
}

async function readBytes(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    throw new Error(`${path}: cannot read file (${(err as Error).message})`);
  }
}

/** Reads a PNG, JPEG or DICOM file into a [0, 1] grey image (format from magic bytes). */
export async function readImage(path: string, options: ImageReadOptions = {}): Promise<GrayImage> {
  return decodeImage(await readBytes(path), path, options);
}

/**
 * Decodes a segmentation mask PNG into integer labels: palette indices for palette PNGs, grey
 * values for grey PNGs (8 or 16 bit, values must fit in 0..255), and the common value for RGB
 * PNGs whose three channels are equal. JPEG masks are refused (lossy compression breaks labels).
 */
export function decodeLabelMap(bytes: Uint8Array, name = "<mask>"): LabelMap {
  const fmt = detectFormat(bytes);
  if (fmt !== "png") {
    throw new Error(`${name}: a mask must be a PNG (lossless), got ${fmt ?? "unknown format"}`);
  }
  const png = decodePngChecked(bytes, name);
  const { width, height, channels } = png;
  const n = width * height;
  const s = samples(png);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = s[i * channels];
    if (channels >= 3 && (s[i * channels + 1] !== v || s[i * channels + 2] !== v)) {
      const x = i % width, y = Math.floor(i / width);
      throw new Error(`${name}: colour mask pixel (${x},${y}) has unequal channels; need labels`);
    }
    if (v > 255) throw new Error(`${name}: label ${v} exceeds 255`);
    out[i] = v;
  }
  return { width, height, data: out };
}

/** Reads a segmentation mask PNG into an integer label map (see {@linkcode decodeLabelMap}). */
export async function readLabelMap(path: string): Promise<LabelMap> {
  return decodeLabelMap(await readBytes(path), path);
}

/** Converts a [0, 1] grey image to 8-bit grey (rounded, clamped). */
export function grayToBytes(img: GrayImage): ByteImage {
  const n = img.width * img.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = Math.round(img.data[i] * 255);
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return { width: img.width, height: img.height, channels: 1, data: out };
}

/** Encodes an 8-bit grey/RGB/RGBA image as PNG bytes. */
export function encodePng(img: ByteImage): Uint8Array {
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new Error(
      `encodePng: data length ${img.data.length} != ${img.width}x${img.height}x${img.channels}`,
    );
  }
  return pngEncode({
    width: img.width,
    height: img.height,
    data: img.data,
    depth: 8,
    channels: img.channels,
  });
}

/** Writes an 8-bit grey/RGB/RGBA image as a PNG file, atomically. */
export async function writePng(path: string, img: ByteImage): Promise<void> {
  await writeFileAtomic(path, encodePng(img));
}

/** Per-channel normalisation for {@linkcode toRGBData}. */
export interface RGBNormalization {
  /** Per-channel mean subtracted from [0, 1] values. */
  mean: readonly [number, number, number];
  /** Per-channel standard deviation divided into the centred values. */
  std: readonly [number, number, number];
}

/**
 * The `[1, H, W, 3]` NHWC data of a grey image replicated to three channels, ready for
 * `tf.tensor4d(data, [1, H, W, 3])`; optionally normalised per channel.
 */
export function toRGBData(img: GrayImage, norm?: RGBNormalization): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const v = img.data[i];
    for (let c = 0; c < 3; c++) {
      out[3 * i + c] = norm ? (v - norm.mean[c]) / norm.std[c] : v;
    }
  }
  return out;
}
