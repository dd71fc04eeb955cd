/**
 * Lesions of the synthetic CT slices: COVID-19 ground-glass patches (with small consolidations)
 * and Common Pneumonia lobar/segmental consolidations with air bronchograms, painted into a
 * {@linkcode Canvas} with their CNCB labels (2 = GGO, 3 = consolidation).
 * Used by `synthetic.ts`; not part of the public API.
 *
 * @example
 * ```ts ignore
 * import { drawCovid } from "./synthetic_lesions.ts";
 * const lesions = drawCovid(canvas, rng, lungs, texture);
 * ```
 * @module
 */

import type { Mulberry32 } from "./prng.ts";
import {
  type Canvas,
  harmonics,
  type Lung,
  radialFactor,
  smoothstep,
  type ValueNoise,
} from "./synthetic_anatomy.ts";

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

/** COVID-19: bilateral peripheral ground-glass patches, some with small consolidations. */
export function drawCovid(
  c: Canvas,
  rng: Mulberry32,
  lungs: Lung[],
  tex: ValueNoise,
): DrawnLesion[] {
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

/** Common Pneumonia: lobar or segmental consolidation, mostly in one lung. */
export function drawPneumonia(
  c: Canvas,
  rng: Mulberry32,
  lungs: Lung[],
  tex: ValueNoise,
): DrawnLesion[] {
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
