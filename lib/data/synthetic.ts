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
import type { Box } from "./transforms.ts";

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

/** A lesion as drawn (pixel units). */
export interface DrawnLesion {
  /** Ground-glass opacity (label 2) or consolidation (label 3). */
  kind: "ggo" | "consolidation";
  /** Lung it was drawn in: 0 = image left (patient right), 1 = image right. */
  lung: 0 | 1;
  /** Pattern that produced it. */
  pattern: "patch" | "lobar" | "segmental" | "inner";
  /** Approximate centre x. */
  cx: number;
  /** Approximate centre y. */
  cy: number;
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
const HU_AIR = -1000;
const HU_LUNG = -860;

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

/** Smooth random field in about [-1, 1]: smooth interpolation of a `cells x cells` grid. */
class ValueNoise {
  private readonly grid: Float32Array;
  private readonly g: number;
  private readonly scale: number;
  constructor(rng: Mulberry32, size: number, cells: number) {
    this.g = cells + 2;
    this.grid = new Float32Array(this.g * this.g);
    for (let i = 0; i < this.grid.length; i++) this.grid[i] = rng.next() * 2 - 1;
    this.scale = cells / size;
  }
  /** Value at pixel (x, y). */
  at(x: number, y: number): number {
    const gx = x * this.scale, gy = y * this.scale;
    const i = Math.floor(gx), j = Math.floor(gy);
    let fx = gx - i, fy = gy - j;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    const g = this.g, grid = this.grid, r0 = j * g + i;
    const a = grid[r0], b = grid[r0 + 1], c = grid[r0 + g], d = grid[r0 + g + 1];
    return (a + (b - a) * fx) * (1 - fy) + (c + (d - c) * fx) * fy;
  }
}

/** A star-shaped outline: radius multiplier `1 + sum a_k cos(k θ + φ_k)`. */
interface Harmonics {
  a: number[];
  phi: number[];
  /** Sum of |a|: the factor lies in [1 - amp, 1 + amp]. */
  amp: number;
}

function harmonics(rng: Mulberry32, amp: number, terms = 3): Harmonics {
  const a: number[] = [], phi: number[] = [];
  for (let k = 0; k < terms; k++) {
    a.push(rng.uniform(0, amp) / (k + 1));
    phi.push(rng.uniform(0, 2 * Math.PI));
  }
  return { a, phi, amp: a.reduce((x, y) => x + Math.abs(y), 0) };
}

function radialFactor(h: Harmonics, theta: number): number {
  let r = 1;
  for (let k = 0; k < h.a.length; k++) r += h.a[k] * Math.cos((k + 2) * theta + h.phi[k]);
  return r;
}

interface Lung {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  shape: Harmonics;
  side: 0 | 1;
}

/** Mutable rendering state of one slice. */
class Canvas {
  readonly hu: Float32Array;
  readonly labels: Uint8Array;
  readonly lungId: Uint8Array;
  constructor(readonly size: number) {
    this.hu = new Float32Array(size * size).fill(HU_AIR);
    this.labels = new Uint8Array(size * size);
    this.lungId = new Uint8Array(size * size);
  }

  /** Fills a disc with a soft edge: `hu = max(hu, mix(hu, value, alpha))` (or plain mix). */
  disc(cx: number, cy: number, r: number, value: number, where: number, mode: "max" | "mix") {
    const S = this.size;
    // Sub-pixel structures (thin vessels at small sizes) keep their area, not their contrast.
    const gain = r < 0.8 ? (r / 0.8) ** 2 : 1;
    if (r < 0.8) r = 0.8;
    const x0 = Math.max(0, Math.floor(cx - r - 1)), x1 = Math.min(S - 1, Math.ceil(cx + r + 1));
    const y0 = Math.max(0, Math.floor(cy - r - 1)), y1 = Math.min(S - 1, Math.ceil(cy + r + 1));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const p = y * S + x;
        if (where >= 0 && this.lungId[p] !== where) continue;
        const d = Math.sqrt((x - cx) ** 2 + (y - cy) ** 2);
        const alpha = gain * Math.min(1, Math.max(0, r + 0.5 - d));
        if (alpha <= 0) continue;
        const v = this.hu[p] + (value - this.hu[p]) * alpha;
        this.hu[p] = mode === "max" ? Math.max(this.hu[p], v) : v;
      }
    }
  }
}

function smoothstep(e0: number, e1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}

function drawBody(c: Canvas, rng: Mulberry32, z: number) {
  const S = c.size;
  const bx = S * (0.5 + rng.uniform(-0.015, 0.015));
  const by = S * (0.5 + rng.uniform(-0.015, 0.015));
  const ba = S * rng.uniform(0.41, 0.46);
  const bb = S * rng.uniform(0.3, 0.35) * (0.95 + 0.05 * z);
  const fat = rng.uniform(0.05, 0.1);
  const box: Box = [S, S, 0, 0];
  const inner = 1 - fat;
  for (let y = 0; y < S; y++) {
    const dy = (y + 0.5 - by) / bb;
    if (dy * dy >= 1) continue;
    // Pixel centres with ((x + 0.5 - bx) / ba)^2 + dy^2 < 1 are body; fat outside `inner`.
    const half = ba * Math.sqrt(1 - dy * dy);
    const halfIn = dy * dy < inner * inner ? ba * Math.sqrt(inner * inner - dy * dy) : -1;
    const xa = Math.max(0, Math.ceil(bx - half - 0.5)),
      xb = Math.min(S - 1, Math.floor(bx + half - 0.5));
    if (xb < xa) continue;
    const r = y * S;
    for (let x = xa; x <= xb; x++) {
      const ax = Math.abs(x + 0.5 - bx);
      c.hu[r + x] = ax > halfIn ? -100 : 40;
    }
    if (xa < box[0]) box[0] = xa;
    if (y < box[1]) box[1] = y;
    if (xb + 1 > box[2]) box[2] = xb + 1;
    if (y + 1 > box[3]) box[3] = y + 1;
  }
  // Table under the patient.
  const ty = Math.min(S - 3, Math.round(by + bb + S * 0.03));
  const th = Math.max(1, Math.round(S * 0.008));
  for (let y = ty; y < Math.min(S, ty + th); y++) {
    for (let x = Math.round(S * 0.08); x < Math.round(S * 0.92); x++) c.hu[y * S + x] = 150;
  }
  return { bx, by, ba, bb, fat, box };
}

function drawBones(
  c: Canvas,
  rng: Mulberry32,
  body: { bx: number; by: number; ba: number; bb: number; fat: number },
) {
  const S = c.size;
  // Spine: vertebral body with a cortical rim, spinal canal behind it.
  const sx = body.bx, sy = body.by + body.bb * 0.62, sr = S * rng.uniform(0.04, 0.05);
  c.disc(sx, sy, sr, 700, -1, "mix");
  c.disc(sx, sy, sr * 0.75, 250, -1, "mix");
  c.disc(sx, sy + sr * 1.35, sr * 0.45, 20, -1, "mix");
  // Sternum.
  c.disc(body.bx, body.by - body.bb * 0.9, S * 0.018, 400, -1, "mix");
  // Ribs along the inside of the fat layer.
  const nr = 10 + rng.int(5);
  for (let i = 0; i < nr; i++) {
    const t = -Math.PI / 2 + (i + 0.5) * (2 * Math.PI / nr) + rng.uniform(-0.1, 0.1);
    if (Math.abs(Math.cos(t)) < 0.2) continue; // no ribs over the sternum / spine
    const f = 1 - body.fat - 0.04;
    const rx = body.bx + Math.cos(t) * body.ba * f, ry = body.by + Math.sin(t) * body.bb * f;
    const rr = S * rng.uniform(0.01, 0.016);
    c.disc(rx, ry, rr, 650, -1, "mix");
    c.disc(rx, ry, rr * 0.55, 200, -1, "mix");
  }
}

function drawLungs(
  c: Canvas,
  rng: Mulberry32,
  body: { bx: number; by: number; ba: number; bb: number },
  z: number,
  density: ValueNoise,
): Lung[] {
  const S = c.size;
  const scale = 0.78 + 0.22 * Math.sin(Math.PI * (0.3 + 0.7 * z));
  // Heart grows towards the base (z = 1); lungs avoid it.
  const hx = body.bx + S * rng.uniform(0.02, 0.06), hy = body.by + S * rng.uniform(0.0, 0.05);
  const hrx = S * (0.06 + 0.08 * z) * rng.uniform(0.9, 1.1);
  const hry = S * (0.05 + 0.07 * z) * rng.uniform(0.9, 1.1);
  if (z > 0.3) {
    for (let y = Math.max(0, Math.floor(hy - hry)); y < Math.min(S, hy + hry); y++) {
      for (let x = Math.max(0, Math.floor(hx - hrx)); x < Math.min(S, hx + hrx); x++) {
        const d = ((x - hx) / hrx) ** 2 + ((y - hy) / hry) ** 2;
        if (d < 1) c.hu[y * S + x] = 45;
      }
    }
  }
  const mediastinum = S * rng.uniform(0.03, 0.045);
  const lungs: Lung[] = [];
  for (const side of [0, 1] as const) {
    const sign = side === 0 ? -1 : 1;
    const rx = body.ba * rng.uniform(0.3, 0.36) * scale;
    const ry = body.bb * rng.uniform(0.6, 0.7) * scale;
    const lung: Lung = {
      cx: body.bx + sign * (mediastinum + rx * rng.uniform(0.95, 1.1)),
      cy: body.by - body.bb * 0.08 + S * rng.uniform(-0.015, 0.015),
      rx,
      ry,
      shape: harmonics(rng, 0.08),
      side,
    };
    lungs.push(lung);
    const x0 = Math.max(0, Math.floor(lung.cx - rx * 1.3)),
      x1 = Math.min(S, Math.ceil(lung.cx + rx * 1.3));
    const y0 = Math.max(0, Math.floor(lung.cy - ry * 1.3)),
      y1 = Math.min(S, Math.ceil(lung.cy + ry * 1.3));
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const dx = (x + 0.5 - lung.cx) / rx, dy = (y + 0.5 - lung.cy) / ry;
        const rho = Math.sqrt(dx ** 2 + dy ** 2);
        if (rho >= 1 + lung.shape.amp) continue;
        if (rho > 1 - lung.shape.amp && rho >= radialFactor(lung.shape, Math.atan2(dy, dx))) {
          continue;
        }
        if (Math.abs(x + 0.5 - body.bx) < mediastinum) continue;
        if (z > 0.3 && ((x - hx) / (hrx * 1.12)) ** 2 + ((y - hy) / (hry * 1.12)) ** 2 < 1) {
          continue;
        }
        const p = y * S + x;
        if (c.hu[p] > 100) continue; // bone stays
        c.lungId[p] = side + 1;
        c.labels[p] = 1;
        // Gravity-dependent density (posterior denser) and smooth variation.
        c.hu[p] = HU_LUNG + 35 * dy + 25 * density.at(x, y);
      }
    }
  }
  return lungs;
}

function drawVessels(c: Canvas, rng: Mulberry32, lungs: Lung[]) {
  const S = c.size;
  for (const lung of lungs) {
    const id = lung.side + 1;
    const sign = lung.side === 0 ? 1 : -1; // towards the mediastinum
    const hx = lung.cx + sign * lung.rx * 0.6, hy = lung.cy + lung.ry * 0.05;
    // Branching trees from the hilum: each segment splits in two thinner, shorter ones.
    const stack: [number, number, number, number, number, number][] = [];
    const roots = 3 + rng.int(2);
    for (let b = 0; b < roots; b++) {
      const ang = Math.atan2(rng.uniform(-1, 1), -sign * rng.uniform(0.1, 1));
      const len = Math.max(lung.rx, lung.ry) * rng.uniform(0.25, 0.4);
      stack.push([hx, hy, ang, S * rng.uniform(0.0045, 0.0065), len, 0]);
    }
    while (stack.length) {
      let [x, y, ang, w, len, depth] = stack.pop()!;
      const step = Math.max(0.8, w * 0.8);
      for (let t = 0; t < len; t += step) {
        c.disc(x, y, w, 30, id, "max");
        ang += rng.uniform(-0.06, 0.06);
        x += Math.cos(ang) * step;
        y += Math.sin(ang) * step;
        w *= 0.995;
      }
      if (depth < 2) {
        for (const turn of [-1, 1]) {
          const a = ang + turn * rng.uniform(0.25, 0.6);
          stack.push([x, y, a, w * 0.72, len * rng.uniform(0.55, 0.8), depth + 1]);
        }
      }
    }
    // Vessel cross-sections.
    const nd = 15 + rng.int(15);
    for (let i = 0; i < nd; i++) {
      const t = rng.uniform(0, 2 * Math.PI), r = Math.sqrt(rng.next());
      const x = lung.cx + Math.cos(t) * r * lung.rx, y = lung.cy + Math.sin(t) * r * lung.ry;
      c.disc(x, y, S * rng.uniform(0.002, 0.005), 40, id, "max");
    }
  }
}

/**
 * Paints a blob (ellipse with a wavy outline) restricted to one lung. Ground glass raises the
 * density (vessels stay visible); consolidation replaces it. Pixels with alpha >= 0.5 get the
 * lesion label; a consolidation label is never downgraded to ground glass.
 */
function paintBlob(
  c: Canvas,
  rng: Mulberry32,
  lung: Lung,
  b: { cx: number; cy: number; rx: number; ry: number; rot: number; kind: "ggo" | "consolidation" },
  texture: ValueNoise,
) {
  const S = c.size;
  const shape = harmonics(rng, 0.18);
  const target = b.kind === "ggo" ? rng.uniform(-570, -380) : rng.uniform(-30, 45);
  const R = Math.max(b.rx, b.ry) * 1.5;
  const cos = Math.cos(b.rot), sin = Math.sin(b.rot);
  const x0 = Math.max(0, Math.floor(b.cx - R)), x1 = Math.min(S, Math.ceil(b.cx + R));
  const y0 = Math.max(0, Math.floor(b.cy - R)), y1 = Math.min(S, Math.ceil(b.cy + R));
  const id = lung.side + 1;
  const label = b.kind === "ggo" ? 2 : 3;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const p = y * S + x;
      if (c.lungId[p] !== id) continue;
      const dx = x + 0.5 - b.cx, dy = y + 0.5 - b.cy;
      const u = (dx * cos + dy * sin) / b.rx, v = (-dx * sin + dy * cos) / b.ry;
      const rho = Math.sqrt(u ** 2 + v ** 2);
      if (rho >= 1.1 + shape.amp) continue;
      const edge = rho < 0.7 - shape.amp ? 1 : radialFactor(shape, Math.atan2(v, u));
      const alpha = 1 - smoothstep(edge - 0.3, edge + 0.1, rho);
      if (alpha <= 0) continue;
      const t = target + 60 * texture.at(x, y);
      const mixed = c.hu[p] + (t - c.hu[p]) * alpha;
      c.hu[p] = b.kind === "ggo" ? Math.max(c.hu[p], mixed) : mixed;
      if (alpha >= 0.5 && c.labels[p] < label) c.labels[p] = label;
    }
  }
}

function lungPoint(lung: Lung, theta: number, frac: number): [number, number] {
  const r = radialFactor(lung.shape, theta) * frac;
  return [lung.cx + Math.cos(theta) * r * lung.rx, lung.cy + Math.sin(theta) * r * lung.ry];
}

/** Fraction of the disc (cx, cy, r) that lies inside `lung`. */
function lungCoverage(c: Canvas, lung: Lung, cx: number, cy: number, r: number): number {
  const S = c.size, id = lung.side + 1;
  let inside = 0, total = 0;
  for (let y = Math.floor(cy - r); y <= Math.ceil(cy + r); y++) {
    for (let x = Math.floor(cx - r); x <= Math.ceil(cx + r); x++) {
      if ((x - cx) ** 2 + (y - cy) ** 2 > r * r) continue;
      total++;
      if (x >= 0 && y >= 0 && x < S && y < S && c.lungId[y * S + x] === id) inside++;
    }
  }
  return total ? inside / total : 0;
}

function drawCovid(c: Canvas, rng: Mulberry32, lungs: Lung[], tex: ValueNoise): DrawnLesion[] {
  const S = c.size;
  const out: DrawnLesion[] = [];
  const n = 2 + rng.int(4);
  for (let i = 0; i < n; i++) {
    const lung = lungs[i < 2 ? i : rng.int(2)]; // both lungs always involved
    // Peripheral: lateral or posterior part of the outline.
    const lateral = lung.side === 0 ? Math.PI : 0;
    const theta = rng.chance(0.6)
      ? lateral + rng.uniform(-0.9, 0.9)
      : Math.PI / 2 + rng.uniform(-0.8, 0.8);
    // Keep patches mostly inside the lung so that clipping leaves no small fragments.
    let [cx, cy] = lungPoint(lung, theta, 0.7);
    let r = S * 0.06;
    for (let attempt = 0; attempt < 6; attempt++) {
      const t = attempt === 0 ? theta : theta + rng.uniform(-0.6, 0.6);
      [cx, cy] = lungPoint(lung, t, rng.uniform(0.6, 0.78));
      r = S * rng.uniform(0.05, 0.08);
      if (lungCoverage(c, lung, cx, cy, r) >= 0.65) break;
    }
    const blob = {
      cx,
      cy,
      rx: r * rng.uniform(0.9, 1.3),
      ry: r * rng.uniform(0.8, 1.1),
      rot: theta + Math.PI / 2,
      kind: "ggo" as const,
    };
    paintBlob(c, rng, lung, blob, tex);
    out.push({ kind: "ggo", lung: lung.side, pattern: "patch", cx, cy });
    if (rng.chance(0.35)) {
      const k = { ...blob, rx: blob.rx * 0.45, ry: blob.ry * 0.45, kind: "consolidation" as const };
      k.cx += rng.uniform(-0.2, 0.2) * blob.rx;
      k.cy += rng.uniform(-0.2, 0.2) * blob.ry;
      paintBlob(c, rng, lung, k, tex);
      out.push({ kind: "consolidation", lung: lung.side, pattern: "inner", cx: k.cx, cy: k.cy });
    }
  }
  return out;
}

function drawPneumonia(c: Canvas, rng: Mulberry32, lungs: Lung[], tex: ValueNoise): DrawnLesion[] {
  const S = c.size;
  const out: DrawnLesion[] = [];
  const main = lungs[rng.int(2)];
  const regions: { lung: Lung; pattern: "lobar" | "segmental"; scale: number }[] = [
    { lung: main, pattern: rng.chance(0.6) ? "lobar" : "segmental", scale: 1 },
  ];
  if (rng.chance(0.2)) {
    regions.push({ lung: lungs[1 - main.side], pattern: "segmental", scale: 0.45 });
  }
  for (const { lung, pattern, scale } of regions) {
    const id = lung.side + 1;
    const target = rng.uniform(-20, 45);
    const hx = lung.cx + (lung.side === 0 ? 1 : -1) * lung.rx * 0.5, hy = lung.cy;
    const lateral = lung.side === 0 ? Math.PI : 0;
    const rim = 0.08;
    const x0 = Math.max(0, Math.floor(lung.cx - lung.rx * 1.3));
    const x1 = Math.min(S, Math.ceil(lung.cx + lung.rx * 1.3));
    const y0 = Math.max(0, Math.floor(lung.cy - lung.ry * 1.3));
    const y1 = Math.min(S, Math.ceil(lung.cy + lung.ry * 1.3));
    // Signed score, > 0 inside. Lobar: the part of the lung beyond a fissure line;
    // segmental: a wedge from the hilum towards the lateral wall.
    let score = (_x: number, _y: number) => 0;
    for (let attempt = 0; attempt < 8; attempt++) {
      const dir = lateral + rng.uniform(-1.3, 1.3);
      const nx = Math.cos(dir), ny = Math.sin(dir);
      const offset = rng.uniform(-0.1, 0.3) + (1 - scale) * 0.3;
      const half = rng.uniform(0.4, 0.7) * scale;
      score = pattern === "lobar"
        ? (x, y) =>
          ((x - lung.cx) / lung.rx) * nx + ((y - lung.cy) / lung.ry) * ny - offset +
          0.04 * tex.at(x, y)
        : (x, y) => {
          const ang = Math.atan2(y - hy, x - hx) - dir;
          const a = Math.abs(Math.atan2(Math.sin(ang), Math.cos(ang)));
          const dist = Math.sqrt(((x - hx) / lung.rx) ** 2 + ((y - hy) / lung.ry) ** 2);
          return Math.min((half - a) * 0.6, dist - 0.3) + 0.04 * tex.at(x, y);
        };
      let inside = 0, area = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const p = y * S + x;
          if (c.lungId[p] !== id) continue;
          area++;
          if (score(x, y) > 0) inside++;
        }
      }
      if (inside >= area * 0.18 * scale && (scale === 1 || inside <= area * 0.3)) break;
    }
    let sx = 0, sy = 0, sn = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const p = y * S + x;
        if (c.lungId[p] !== id) continue;
        const s = score(x, y);
        if (s <= -rim) continue;
        if (s > 0) {
          const alpha = smoothstep(0, 0.03, s);
          c.hu[p] = c.hu[p] + (target + 40 * tex.at(x, y) - c.hu[p]) * alpha;
          c.labels[p] = alpha >= 0.5 ? 3 : Math.max(c.labels[p], 2);
          sx += x, sy += y, sn++;
        } else {
          const alpha = 1 - smoothstep(-rim, 0, s);
          c.hu[p] = Math.max(c.hu[p], c.hu[p] + (-500 - c.hu[p]) * (1 - alpha) * 0.9);
          if (alpha <= 0.5) c.labels[p] = Math.max(c.labels[p], 2);
        }
      }
    }
    if (sn === 0) continue;
    // Air bronchograms: dark branching tubes inside the consolidation (label stays 3).
    const nb = 2 + rng.int(3);
    for (let b = 0; b < nb; b++) {
      let x = sx / sn + rng.uniform(-0.3, 0.3) * lung.rx;
      let y = sy / sn + rng.uniform(-0.3, 0.3) * lung.ry;
      let ang = rng.uniform(0, 2 * Math.PI);
      const w = Math.max(0.6, S * rng.uniform(0.002, 0.004));
      for (let t = 0; t < lung.rx * 0.6; t += 1) {
        const xi = Math.round(x), yi = Math.round(y);
        if (xi >= 0 && yi >= 0 && xi < S && yi < S && c.labels[yi * S + xi] === 3) {
          const r = Math.ceil(w);
          for (let dy = -r; dy <= r; dy++) {
            for (let dx = -r; dx <= r; dx++) {
              const q = (yi + dy) * S + xi + dx;
              if (yi + dy < 0 || yi + dy >= S || xi + dx < 0 || xi + dx >= S) continue;
              if (c.labels[q] === 3 && dx * dx + dy * dy <= w * w) c.hu[q] = -880;
            }
          }
        }
        ang += rng.uniform(-0.15, 0.15);
        x += Math.cos(ang);
        y += Math.sin(ang);
      }
    }
    out.push({ kind: "consolidation", lung: lung.side, pattern, cx: sx / sn, cy: sy / sn });
  }
  return out;
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
