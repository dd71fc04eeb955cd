/**
 * A deterministic generator of CT-like chest slices with class-dependent lesions, the toolkit's
 * embedded default data. Each slice is rendered in Hounsfield units and shown through the lung
 * window (W 1500 / L -600) as 8-bit grey:
 *
 * - anatomy: body ellipse with a fat layer, table, ribs, sternum, spine, heart, two lungs whose
 *   size and shape vary with a random craniocaudal level, branching vessels and vessel
 *   cross-sections, smooth parenchymal density variation and Gaussian noise;
 * - Control (class 0): no lesion;
 * - Common Pneumonia (class 1): a lobar (region behind a fissure line) or segmental (wedge from the
 *   hilum) consolidation, mostly in one lung, with air bronchograms and a thin ground-glass rim;
 * - COVID-19 (class 2): bilateral, peripheral (subpleural) ground-glass patches, some with small
 *   consolidations inside.
 *
 * The label map uses the CNCB-NCOV labels (0 background, 1 lung, 2 ground-glass opacity,
 * 3 consolidation) and records exactly what was drawn. Lesion sizes scale with the slice size so
 * that most lesion components exceed 100 pixels at a 128-pixel model size. All randomness comes
 * from {@linkcode Mulberry32} seeded per slice, so the output depends only on the seed.
 *
 * @example
 * ```ts
 * import { synthesizeCT } from "./synthetic.ts";
 * const slices = synthesizeCT({ seed: 1, size: 128, n: 3 });
 * console.log(slices.map((s) => s.classId), slices[0].image.length); // e.g. [2, 0, 1] 16384
 * ```
 * @module
 */

import { mixSeed, Mulberry32 } from "./prng.ts";
import {
  Canvas,
  drawBody,
  drawBones,
  drawLungs,
  drawVessels,
  ValueNoise,
} from "./synthetic_anatomy.ts";
import { drawCovid, type DrawnLesion, drawPneumonia } from "./synthetic_lesions.ts";
import type { Box } from "./transforms.ts";

export type { DrawnLesion } from "./synthetic_lesions.ts";

/** Options of {@linkcode synthesizeCT}. */
export interface SynthesizeOptions {
  /** Base seed (default 0). */
  seed?: number;
  /** Slice side in pixels (default 512). */
  size?: number;
  /** Number of slices (default 12). */
  n?: number;
  /** Relative class frequencies [Control, Common Pneumonia, COVID-19] (default equal). */
  classBalance?: readonly [number, number, number];
  /** Seed stream tag, so different sets from one seed do not repeat slices (default 0). */
  stream?: number;
}

/** One synthetic slice. */
export interface SyntheticSlice {
  /** Class id: 0 Control, 1 Common Pneumonia, 2 COVID-19. */
  classId: number;
  /** The per-slice seed it was rendered from. */
  seed: number;
  /** Side in pixels. */
  size: number;
  /** `size * size` 8-bit grey (lung window). */
  image: Uint8Array;
  /** `size * size` CNCB labels: 0 background, 1 lung, 2 GGO, 3 consolidation. */
  labels: Uint8Array;
  /** Bounding box of the body `[x1, y1, x2, y2]` (exclusive max). */
  bodyBox: Box;
  /** Lesions drawn, in drawing order. */
  lesions: DrawnLesion[];
}

const HU_LO = -1350; // lung window W 1500 / L -600
const HU_RANGE = 1500;

/** Per-class counts for `n` slices by largest remainder, then a seeded shuffle of the classes. */
export function assignClasses(
  n: number,
  balance: readonly number[] = [1, 1, 1],
  seed = 0,
): number[] {
  const total = balance.reduce((a, b) => a + b, 0);
  if (!(total > 0) || balance.some((b) => b < 0)) {
    throw new Error(`classBalance must be non-negative with a positive sum, got [${balance}]`);
  }
  const exact = balance.map((b) => (b / total) * n);
  const counts = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((a, b) =>
    b[0] - a[0] || a[1] - b[1]
  );
  for (let k = 0; k < n - counts.reduce((a, b) => a + b, 0); k++) counts[order[k][1]]++;
  const classes: number[] = [];
  counts.forEach((c, cls) => {
    for (let i = 0; i < c; i++) classes.push(cls);
  });
  return new Mulberry32(mixSeed(seed, 0x5eed)).shuffle(classes);
}

/** Renders one slice of class `classId` (0, 1, 2) from a per-slice seed. */
export function renderSlice(seed: number, size: number, classId: number): SyntheticSlice {
  if (!Number.isInteger(size) || size < 32) {
    throw new Error(`synthetic slice size must be >= 32, got ${size}`);
  }
  if (classId !== 0 && classId !== 1 && classId !== 2) {
    throw new Error(`classId must be 0, 1 or 2, got ${classId}`);
  }
  const S = size;
  const rng = new Mulberry32(seed);
  const c = new Canvas(S);
  const z = rng.next(); // craniocaudal level: 0 apex .. 1 base
  const density = new ValueNoise(rng, S, 5);
  const tex = new ValueNoise(rng, S, 14);
  const body = drawBody(c, rng, z);
  drawBones(c, rng, body);
  const lungs = drawLungs(c, rng, body, z, density);
  drawVessels(c, rng, lungs);
  const lesions = classId === 2
    ? drawCovid(c, rng, lungs, tex)
    : classId === 1
    ? drawPneumonia(c, rng, lungs, tex)
    : [];
  // Separable [1 2 1] blur softens edges, then noise and the lung window.
  const hu = c.hu, tmp = new Float32Array(S * S);
  for (let y = 0; y < S; y++) {
    const r = y * S;
    tmp[r] = (3 * hu[r] + hu[r + 1]) * 0.25;
    for (let x = 1; x < S - 1; x++) {
      tmp[r + x] = (hu[r + x - 1] + 2 * hu[r + x] + hu[r + x + 1]) * 0.25;
    }
    tmp[r + S - 1] = (hu[r + S - 2] + 3 * hu[r + S - 1]) * 0.25;
  }
  const image = new Uint8Array(S * S);
  const sigma = 22;
  // Triangular deviates from the two 16-bit halves of one mulberry32 draw (variance 1/6).
  const noiseScale = (sigma * Math.sqrt(6)) / 65536;
  const k = 255 / HU_RANGE;
  let state = rng.state;
  for (let y = 0; y < S; y++) {
    const up = (y > 0 ? y - 1 : y) * S, r = y * S, dn = (y < S - 1 ? y + 1 : y) * S;
    for (let x = 0; x < S; x++) {
      state = (state + 0x6d2b79f5) | 0;
      let t = Math.imul(state ^ (state >>> 15), state | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      t = (t ^ (t >>> 14)) >>> 0;
      const noise = ((t & 0xffff) + (t >>> 16) - 65535) * noiseScale;
      const v = (tmp[up + x] + 2 * tmp[r + x] + tmp[dn + x]) * 0.25;
      const w = Math.round((v + noise - HU_LO) * k);
      image[r + x] = w < 0 ? 0 : w > 255 ? 255 : w;
    }
  }
  rng.state = state >>> 0;
  return { classId, seed, size: S, image, labels: c.labels, bodyBox: body.box, lesions };
}

/** Generates `n` slices with classes drawn to match `classBalance` exactly (rounded). */
export function synthesizeCT(options: SynthesizeOptions = {}): SyntheticSlice[] {
  const { seed = 0, size = 512, n = 12, classBalance = [1, 1, 1], stream = 0 } = options;
  const classes = assignClasses(n, classBalance, mixSeed(seed, stream));
  return classes.map((cls, i) => renderSlice(sliceSeed(seed, stream, i), size, cls));
}

/** The per-slice seed used by {@linkcode synthesizeCT} for slice `index` of `stream`. */
export function sliceSeed(seed: number, stream: number, index: number): number {
  return mixSeed(seed, stream, index);
}
