/**
 * A sample grid of synthetic slices: one row per class (Control, Common Pneumonia, COVID-19),
 * a few slices per row, lesion outlines drawn in colour (ground glass yellow, consolidation red).
 * Used to look at the generator's output and for the README figure.
 *
 * @example
 * ```ts
 * import { writeSampleGrid } from "./grid.ts";
 * await writeSampleGrid("/tmp/synthetic_grid.png", { seed: 1, size: 96, perClass: 2 });
 * ```
 * @module
 */

import { writePng } from "./image.ts";
import type { ByteImage } from "./image_types.ts";
import { renderSlice, sliceSeed, type SyntheticSlice } from "./synthetic.ts";

/** Options of {@linkcode writeSampleGrid}. */
export interface SampleGridOptions {
  /** Seed (default 0). */
  seed?: number;
  /** Tile side in pixels (default 256). */
  size?: number;
  /** Slices per class (default 4). */
  perClass?: number;
  /** Draw lesion outlines (default true). */
  outlines?: boolean;
}

const GGO_RGB = [255, 220, 0];
const CONS_RGB = [255, 40, 40];

/** Renders slices (rows = classes) with lesion outlines into one RGB image. */
export function sampleGrid(options: SampleGridOptions = {}): ByteImage {
  const { seed = 0, size = 256, perClass = 4, outlines = true } = options;
  const gap = 4;
  const W = perClass * size + (perClass + 1) * gap, H = 3 * size + 4 * gap;
  const data = new Uint8Array(W * H * 3).fill(32);
  for (let cls = 0; cls < 3; cls++) {
    for (let k = 0; k < perClass; k++) {
      const s: SyntheticSlice = renderSlice(sliceSeed(seed, 0x9d1d, cls * 1000 + k), size, cls);
      const ox = gap + k * (size + gap), oy = gap + cls * (size + gap);
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const p = y * size + x;
          const o = ((oy + y) * W + ox + x) * 3;
          let rgb: number[] | null = null;
          if (outlines) {
            const l = s.labels[p];
            const lesion = l >= 2;
            const edge = (q: number, ok: boolean) => !ok || (s.labels[q] >= 2) !== lesion;
            const consEdge = (q: number, ok: boolean) => !ok || (s.labels[q] === 3) !== (l === 3);
            const nb: [number, boolean][] = [
              [p - 1, x > 0],
              [p + 1, x < size - 1],
              [p - size, y > 0],
              [p + size, y < size - 1],
            ];
            if (l === 3 && nb.some(([q, ok]) => consEdge(q, ok))) rgb = CONS_RGB;
            else if (lesion && nb.some(([q, ok]) => edge(q, ok))) rgb = GGO_RGB;
          }
          const v = s.image[p];
          data[o] = rgb ? rgb[0] : v;
          data[o + 1] = rgb ? rgb[1] : v;
          data[o + 2] = rgb ? rgb[2] : v;
        }
      }
    }
  }
  return { width: W, height: H, channels: 3, data };
}

/** Writes {@linkcode sampleGrid} as a PNG file (atomically). */
export async function writeSampleGrid(
  path: string,
  options: SampleGridOptions = {},
): Promise<void> {
  await writePng(path, sampleGrid(options));
}
