/**
 * Anatomy of the synthetic CT slices: body, table, bones, heart, lungs and vessels, drawn in
 * Hounsfield units on a {@linkcode Canvas} that also holds the CNCB label map (1 = lung).
 * Used by `synthetic.ts`; not part of the public API.
 *
 * @example
 * ```ts
 * import { Canvas, drawBody } from "./synthetic_anatomy.ts";
 * import { Mulberry32 } from "./prng.ts";
 * const c = new Canvas(64);
 * drawBody(c, new Mulberry32(1), 0.5);
 * ```
 * @module
 */

import type { Mulberry32 } from "./prng.ts";
import type { Box } from "./transforms.ts";

/** Air (HU). */
export const HU_AIR = -1000;
/** Normal lung parenchyma (HU). */
export const HU_LUNG = -860;

/** Smooth random field in about [-1, 1]: smooth interpolation of a `cells x cells` grid. */
export class ValueNoise {
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
export interface Harmonics {
  a: number[];
  phi: number[];
  /** Sum of |a|: the factor lies in [1 - amp, 1 + amp]. */
  amp: number;
}

/** Random harmonics with total amplitude up to about `amp`. */
export function harmonics(rng: Mulberry32, amp: number, terms = 3): Harmonics {
  const a: number[] = [], phi: number[] = [];
  for (let k = 0; k < terms; k++) {
    a.push(rng.uniform(0, amp) / (k + 1));
    phi.push(rng.uniform(0, 2 * Math.PI));
  }
  return { a, phi, amp: a.reduce((x, y) => x + Math.abs(y), 0) };
}

/** The outline radius multiplier at angle `theta`. */
export function radialFactor(h: Harmonics, theta: number): number {
  let r = 1;
  for (let k = 0; k < h.a.length; k++) r += h.a[k] * Math.cos((k + 2) * theta + h.phi[k]);
  return r;
}

/** A lung: centre, radii, outline harmonics and side (0 = image left). */
export interface Lung {
  cx: number;
  cy: number;
  rx: number;
  ry: number;
  shape: Harmonics;
  side: 0 | 1;
}

/** Mutable rendering state of one slice: HU image, CNCB labels, lung id per pixel. */
export class Canvas {
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

/** Hermite smoothstep of `x` between `e0` and `e1`. */
export function smoothstep(e0: number, e1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}

/** Body ellipse with a fat layer and the table; returns the body geometry and box. */
export function drawBody(c: Canvas, rng: Mulberry32, z: number) {
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

/** Spine, sternum and ribs. */
export function drawBones(
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

/** Heart and the two lungs (labels 1); returns the lungs. */
export function drawLungs(
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

/** Branching vessel trees from each hilum and vessel cross-sections. */
export function drawVessels(c: Canvas, rng: Mulberry32, lungs: Lung[]) {
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
