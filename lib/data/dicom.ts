/**
 * DICOM CT slices in uncompressed transfer syntaxes (implicit/explicit VR little endian,
 * explicit VR big endian), parsed with `dicom-parser`. Stored values are converted to
 * Hounsfield units with RescaleSlope/RescaleIntercept and mapped to [0, 1] with a lung window
 * (default width 1500, level -600: HU -1350 → 0, HU 150 → 1). A compressed transfer syntax
 * (JPEG, JPEG-LS, JPEG 2000, RLE, deflate) raises an error that names it.
 *
 * @example
 * ```ts ignore
 * import { decodeDicom } from "./dicom.ts";
 * const img = decodeDicom(Deno.readFileSync("slice.dcm"), "slice.dcm", { window: { width: 1500, level: -600 } });
 * console.log(img.width, img.height, img.data[0]);
 * ```
 * @module
 */

import dicomParser from "dicom-parser";
import type { GrayImage } from "./image_types.ts";

/** An intensity window in Hounsfield units. */
export interface CTWindow {
  /** Window width (HU). */
  width: number;
  /** Window level / centre (HU). */
  level: number;
}

/** The lung window used by default: W 1500 / L -600. */
export const LUNG_WINDOW: CTWindow = { width: 1500, level: -600 };

/** Options for {@linkcode decodeDicom}. */
export interface DicomReadOptions {
  /** Window applied after the rescale (default {@linkcode LUNG_WINDOW}). */
  window?: CTWindow;
  /** Frame to read from a multi-frame object (default 0). */
  frame?: number;
}

/** Transfer syntaxes whose pixel data is stored uncompressed. */
export const UNCOMPRESSED_TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  "1.2.840.10008.1.2": "Implicit VR Little Endian",
  "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
  "1.2.840.10008.1.2.2": "Explicit VR Big Endian",
};

const COMPRESSED_NAMES: Record<string, string> = {
  "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
  "1.2.840.10008.1.2.5": "RLE Lossless",
  "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
  "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless, Non-Hierarchical (Process 14)",
  "1.2.840.10008.1.2.4.70": "JPEG Lossless, Non-Hierarchical, First-Order Prediction",
  "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
  "1.2.840.10008.1.2.4.81": "JPEG-LS Lossy (Near-Lossless)",
  "1.2.840.10008.1.2.4.90": "JPEG 2000 Image Compression (Lossless Only)",
  "1.2.840.10008.1.2.4.91": "JPEG 2000 Image Compression",
  "1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 (Lossless Only)",
  "1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000",
};

/** True when `bytes` carries the DICOM part-10 signature ("DICM" at offset 128). */
export function hasDicomSignature(bytes: Uint8Array): boolean {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 &&
    bytes[130] === 0x43 && bytes[131] === 0x4d;
}

function num(ds: dicomParser.DataSet, tag: string, fallback: number): number {
  const s = ds.string(tag);
  if (s === undefined || s.trim() === "") return fallback;
  const v = Number(s.split("\\")[0]);
  return Number.isFinite(v) ? v : fallback;
}

/**
 * Decodes a DICOM CT slice into a [0, 1] greyscale image (rescale to HU, then window).
 * `name` (usually the path) is used in error messages.
 */
export function decodeDicom(
  bytes: Uint8Array,
  name: string,
  options: DicomReadOptions = {},
): GrayImage {
  const window = options.window ?? LUNG_WINDOW;
  if (!(window.width > 0)) {
    throw new Error(`${name}: window width must be > 0, got ${window.width}`);
  }
  let ds: dicomParser.DataSet;
  try {
    ds = dicomParser.parseDicom(bytes);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`${name}: not a readable DICOM file (${msg})`);
  }
  const ts = ds.string("x00020010")?.trim() ?? "";
  if (!(ts in UNCOMPRESSED_TRANSFER_SYNTAXES)) {
    const what = COMPRESSED_NAMES[ts]
      ? `compressed transfer syntax ${ts} (${COMPRESSED_NAMES[ts]})`
      : `unsupported transfer syntax '${ts}'`;
    throw new Error(`${name}: ${what} is not supported; convert it to an uncompressed one`);
  }
  const rows = ds.uint16("x00280010") ?? 0;
  const cols = ds.uint16("x00280011") ?? 0;
  const bitsAllocated = ds.uint16("x00280100") ?? 0;
  const samples = ds.uint16("x00280002") ?? 1;
  const signed = (ds.uint16("x00280103") ?? 0) === 1;
  const photometric = ds.string("x00280004")?.trim() ?? "MONOCHROME2";
  const frames = num(ds, "x00280008", 1);
  const frame = options.frame ?? 0;
  if (rows <= 0 || cols <= 0) throw new Error(`${name}: missing Rows/Columns`);
  if (samples !== 1 || !photometric.startsWith("MONOCHROME")) {
    throw new Error(
      `${name}: only greyscale (MONOCHROME1/2) DICOM is supported, got ${photometric}`,
    );
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16) {
    throw new Error(`${name}: BitsAllocated ${bitsAllocated} is not supported (8 or 16)`);
  }
  if (!Number.isInteger(frame) || frame < 0 || frame >= frames) {
    throw new Error(`${name}: frame ${frame} out of range (NumberOfFrames ${frames})`);
  }
  const el = ds.elements.x7fe00010;
  if (!el) throw new Error(`${name}: no PixelData element`);
  const n = rows * cols;
  const bpp = bitsAllocated / 8;
  const start = el.dataOffset + frame * n * bpp;
  if (el.length < (frame + 1) * n * bpp || start + n * bpp > bytes.length) {
    throw new Error(`${name}: PixelData is truncated (${el.length} bytes for ${rows}x${cols})`);
  }
  const slope = num(ds, "x00281053", 1);
  const intercept = num(ds, "x00281052", 0);
  const lo = window.level - window.width / 2;
  const inv = 1 / window.width;
  const bigEndian = ts === "1.2.840.10008.1.2.2";
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, n * bpp);
  const out = new Float32Array(n);
  const mono1 = photometric === "MONOCHROME1";
  for (let i = 0; i < n; i++) {
    let v: number;
    if (bpp === 1) v = signed ? view.getInt8(i) : view.getUint8(i);
    else v = signed ? view.getInt16(2 * i, !bigEndian) : view.getUint16(2 * i, !bigEndian);
    let w = ((v * slope + intercept) - lo) * inv;
    w = w < 0 ? 0 : w > 1 ? 1 : w;
    out[i] = mono1 ? 1 - w : w;
  }
  return { width: cols, height: rows, data: out };
}
