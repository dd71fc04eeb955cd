/**
 * COCO run-length encoding (RLE) of binary masks, equal to pycocotools' `maskApi.c`.
 *
 * An RLE stores a `height x width` mask as alternating runs of 0s and 1s over the pixels in
 * **column-major** order (`idx = x * height + y`); the first run counts zeros (and is 0 when pixel
 * (0, 0) is foreground). Masks given to {@link rleEncode} and returned by {@link rleDecode} are
 * **row-major** `Uint8Array`s (`idx = y * width + x`), the layout of an image.
 *
 * Covered: encode/decode, the compressed string form (`rleToString` / `rleFrString`), area, tight
 * box (`toBbox`, with the `+1` pixel extents), polygon and box rasterisation (`frPoly`, `frBbox`),
 * merge (union / intersection) and the IoU of RLEs and of `[x, y, w, h]` boxes (crowd aware).
 *
 * @example
 * ```ts
 * import { rleArea, rleEncode, rleToBbox, rleToString } from "./rle.ts";
 * const mask = new Uint8Array(4 * 5); // 4 rows, 5 columns
 * mask[1 * 5 + 2] = 1; // pixel (x=2, y=1)
 * const rle = rleEncode(mask, 4, 5);
 * rleArea(rle); // 1
 * rleToBbox(rle); // [2, 1, 1, 1]
 * rleToString(rle); // "91:"
 * ```
 *
 * @module
 */

/** A run-length encoded binary mask (counts as in pycocotools' C `RLE` struct). */
export interface Rle {
  /** Mask height (rows). */
  height: number;
  /** Mask width (columns). */
  width: number;
  /** Alternating run lengths, zeros first, over the column-major pixel order. */
  counts: Uint32Array;
}

/** The JSON form of an RLE used in COCO files: `counts` is a list (uncompressed) or a string. */
export interface CocoRleObject {
  /** `[height, width]`. */
  size: number[];
  /** Run lengths (uncompressed RLE) or the compressed string of {@link rleToString}. */
  counts: number[] | string;
}

/** A COCO `[x, y, width, height]` box. */
export type BboxXYWH = [number, number, number, number];

function checkSize(height: number, width: number, what: string): void {
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 0 || width < 0) {
    throw new Error(`${what}: size must be two non-negative integers, got [${height}, ${width}]`);
  }
}

/**
 * Encodes a row-major `height x width` binary mask (any non-zero value is foreground) as an RLE
 * (pycocotools `encode`, which reads the mask column by column).
 */
export function rleEncode(mask: ArrayLike<number>, height: number, width: number): Rle {
  checkSize(height, width, "rleEncode");
  if (mask.length !== height * width) {
    throw new Error(
      `rleEncode: mask has ${mask.length} values, expected height*width = ${height * width}`,
    );
  }
  const runs: number[] = [];
  let prev = 0;
  let c = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== prev) {
        runs.push(c);
        c = 0;
        prev = v;
      }
      c++;
    }
  }
  runs.push(c);
  return { height, width, counts: Uint32Array.from(runs) };
}

/** Decodes an RLE into a row-major `height x width` mask of 0/1 values. */
export function rleDecode(rle: Rle): Uint8Array {
  const { height: h, width: w, counts } = rle;
  const out = new Uint8Array(h * w);
  const n = h * w;
  let p = 0;
  let v = 0;
  for (let j = 0; j < counts.length; j++) {
    const end = Math.min(p + counts[j], n);
    if (v) {
      for (let k = p; k < end; k++) {
        const x = Math.floor(k / h);
        out[(k - x * h) * w + x] = 1;
      }
    }
    p = end;
    v = v ? 0 : 1;
  }
  return out;
}

/**
 * Compressed string form of the run lengths (pycocotools `rleToString`): LEB128-like, 5 bits per
 * character (ASCII 48..111); from the fourth run on, each run is stored as the difference to the
 * run two places before it.
 */
export function rleToString(rle: Rle): string {
  const cnts = rle.counts;
  const chars: number[] = [];
  for (let i = 0; i < cnts.length; i++) {
    let x = cnts[i];
    if (i > 2) x -= cnts[i - 2];
    let more = true;
    while (more) {
      let c = ((x % 32) + 32) % 32; // x & 0x1f for a two's-complement integer
      x = Math.floor(x / 32); // arithmetic shift right by 5
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      chars.push(c + 48);
    }
  }
  return String.fromCharCode(...chars);
}

/** Parses the compressed string form of {@link rleToString} (pycocotools `rleFrString`). */
export function rleFrString(s: string, height: number, width: number): Rle {
  checkSize(height, width, "rleFrString");
  const cnts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error(`rleFrString: truncated counts string "${s}"`);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) {
        throw new Error(`rleFrString: invalid character '${s[p]}' in counts string`);
      }
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k); // sign extension
    }
    const m = cnts.length;
    if (m > 2) x += cnts[m - 2];
    cnts.push(x >>> 0);
  }
  return { height, width, counts: Uint32Array.from(cnts) };
}

/**
 * Converts a COCO JSON RLE (compressed string or uncompressed list) into an {@link Rle}.
 * `what` names the input in error messages.
 */
export function rleFromCoco(obj: CocoRleObject, what = "segmentation"): Rle {
  if (
    obj === null || typeof obj !== "object" || !Array.isArray(obj.size) || obj.size.length !== 2
  ) {
    throw new Error(`${what}: an RLE needs "size": [height, width] and "counts"`);
  }
  const [h, w] = obj.size;
  checkSize(h, w, what);
  if (typeof obj.counts === "string") return rleFrString(obj.counts, h, w);
  if (!Array.isArray(obj.counts)) {
    throw new Error(`${what}: "counts" must be a string or a list of run lengths`);
  }
  let total = 0;
  for (const c of obj.counts) {
    if (!Number.isInteger(c) || c < 0) {
      throw new Error(`${what}: "counts" must hold non-negative integers, got ${c}`);
    }
    total += c;
  }
  if (total !== h * w) {
    throw new Error(`${what}: "counts" sum to ${total}, expected height*width = ${h * w}`);
  }
  return { height: h, width: w, counts: Uint32Array.from(obj.counts) };
}

/** The COCO JSON form of an RLE: compressed (`counts` string, the default) or uncompressed. */
export function rleToCoco(rle: Rle, compressed = true): CocoRleObject {
  return {
    size: [rle.height, rle.width],
    counts: compressed ? rleToString(rle) : Array.from(rle.counts),
  };
}

/** Number of foreground pixels (pycocotools `area`). */
export function rleArea(rle: Rle): number {
  let a = 0;
  for (let j = 1; j < rle.counts.length; j += 2) a += rle.counts[j];
  return a;
}

/**
 * Tight box `[x, y, w, h]` of the foreground with inclusive pixel extents (`w = xmax - xmin + 1`),
 * as pycocotools `toBbox`; an empty mask gives `[0, 0, 0, 0]`.
 */
export function rleToBbox(rle: Rle): BboxXYWH {
  const { height: h, width: w, counts } = rle;
  const m = Math.floor(counts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
  for (let j = 0; j < m; j++) {
    cc += counts[j];
    const t = cc - (j % 2);
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/**
 * Rasterises one polygon `[x0, y0, x1, y1, ...]` (pixel coordinates) exactly like pycocotools
 * `frPoly` (boundary upsampled 5x, a pixel is inside when its centre is).
 */
export function rleFrPoly(xy: ArrayLike<number>, height: number, width: number): Rle {
  checkSize(height, width, "rleFrPoly");
  const h = height, w = width;
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  const x = new Array<number>(k + 1);
  const y = new Array<number>(k + 1);
  for (let j = 0; j < k; j++) x[j] = Math.trunc(scale * xy[j * 2] + 0.5);
  x[k] = x[0];
  for (let j = 0; j < k; j++) y[j] = Math.trunc(scale * xy[j * 2 + 1] + 0.5);
  y[k] = y[0];
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j], xe = x[j + 1], ys = y[j], ye = y[j + 1];
    const dx = Math.abs(xe - xs), dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      [xs, xe] = [xe, xs];
      [ys, ye] = [ye, ys];
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // points along the y-boundary, downsampled
  const a: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    a.push(xd * h + yd);
  }
  a.push(h * w);
  a.sort((p, q) => p - q);
  let prev = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j];
    a[j] -= prev;
    prev = t;
  }
  const b: number[] = [a[0]];
  let j = 1;
  while (j < a.length) {
    if (a[j] > 0) b.push(a[j++]);
    else {
      j++;
      if (j < a.length) b[b.length - 1] += a[j++];
    }
  }
  return { height: h, width: w, counts: Uint32Array.from(b) };
}

/** Rasterises a `[x, y, w, h]` box as its 4-corner polygon (pycocotools `frBbox`). */
export function rleFrBbox(bb: ArrayLike<number>, height: number, width: number): Rle {
  const xs = bb[0], xe = xs + bb[2], ys = bb[1], ye = ys + bb[3];
  return rleFrPoly([xs, ys, xs, ye, xe, ye, xe, ys], height, width);
}

/**
 * Union (or, with `intersect`, intersection) of RLEs of one size (pycocotools `merge`).
 * Masks of different sizes give an empty 0x0 RLE, as in pycocotools.
 */
export function rleMerge(rles: readonly Rle[], intersect = false): Rle {
  if (rles.length === 0) return { height: 0, width: 0, counts: new Uint32Array(0) };
  const { height: h, width: w } = rles[0];
  let acc = rles[0].counts;
  for (let i = 1; i < rles.length; i++) {
    const B = rles[i];
    if (B.height !== h || B.width !== w) return { height: 0, width: 0, counts: new Uint32Array(0) };
    const A = acc;
    const out: number[] = [];
    let ca = A[0], cb = B.counts[0];
    let v = 0, va = 0, vb = 0, a = 1, b = 1, cc = 0, ct = 1;
    while (ct > 0) {
      const c = Math.min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.length) {
        ca = A[a++];
        va = va ? 0 : 1;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.counts.length) {
        cb = B.counts[b++];
        vb = vb ? 0 : 1;
      }
      ct += cb;
      const vp = v;
      v = intersect ? (va && vb ? 1 : 0) : (va || vb ? 1 : 0);
      if (v !== vp || ct === 0) {
        out.push(cc);
        cc = 0;
      }
    }
    acc = Uint32Array.from(out);
  }
  return { height: h, width: w, counts: acc === rles[0].counts ? acc.slice() : acc };
}

/**
 * IoU of `[x, y, w, h]` boxes (pycocotools `bbIou`, continuous coordinates, no `+1`).
 * Returns `D x G` rows; for a crowd gt the union is the det box area.
 */
export function bboxIou(
  dt: readonly ArrayLike<number>[],
  gt: readonly ArrayLike<number>[],
  iscrowd?: ArrayLike<number | boolean>,
): Float64Array[] {
  const out: Float64Array[] = dt.map(() => new Float64Array(gt.length));
  for (let g = 0; g < gt.length; g++) {
    const G = gt[g];
    const ga = G[2] * G[3];
    const crowd = iscrowd ? Boolean(iscrowd[g]) : false;
    for (let d = 0; d < dt.length; d++) {
      const D = dt[d];
      const da = D[2] * D[3];
      const w = Math.min(D[2] + D[0], G[2] + G[0]) - Math.max(D[0], G[0]);
      if (w <= 0) continue;
      const h = Math.min(D[3] + D[1], G[3] + G[1]) - Math.max(D[1], G[1]);
      if (h <= 0) continue;
      const i = w * h;
      const u = crowd ? da : da + ga - i;
      out[d][g] = i / u;
    }
  }
  return out;
}

/**
 * Mask IoU of RLEs (pycocotools `rleIou`): `|A ∩ B| / |A ∪ B|`, 0 when the intersection is empty,
 * union = det area for a crowd gt, and -1 for masks of different sizes. Returns `D x G` rows.
 */
export function rleIou(
  dt: readonly Rle[],
  gt: readonly Rle[],
  iscrowd?: ArrayLike<number | boolean>,
): Float64Array[] {
  const out = bboxIou(dt.map(rleToBbox), gt.map(rleToBbox), iscrowd);
  for (let g = 0; g < gt.length; g++) {
    const crowd = iscrowd ? Boolean(iscrowd[g]) : false;
    const G = gt[g];
    for (let d = 0; d < dt.length; d++) {
      if (!(out[d][g] > 0)) continue;
      const D = dt[d];
      if (D.height !== G.height || D.width !== G.width) {
        out[d][g] = -1;
        continue;
      }
      const dc = D.counts, gc = G.counts;
      let ca = dc[0], cb = gc[0], a = 1, b = 1, va = 0, vb = 0;
      let inter = 0, union = 0, ct = 1;
      while (ct > 0) {
        const c = Math.min(ca, cb);
        if (va || vb) {
          union += c;
          if (va && vb) inter += c;
        }
        ct = 0;
        ca -= c;
        if (!ca && a < dc.length) {
          ca = dc[a++];
          va = va ? 0 : 1;
        }
        ct += ca;
        cb -= c;
        if (!cb && b < gc.length) {
          cb = gc[b++];
          vb = vb ? 0 : 1;
        }
        ct += cb;
      }
      if (inter === 0) union = 1;
      else if (crowd) union = rleArea(D);
      out[d][g] = inter / union;
    }
  }
  return out;
}

/** A COCO `segmentation`: a list of polygons, or an RLE object (compressed or not). */
export type CocoSegmentation = number[][] | CocoRleObject;

/**
 * Converts any COCO `segmentation` to one RLE for an image of `height x width` (pycocotools
 * `annToRLE`): polygons are rasterised with {@link rleFrPoly} and merged; a polygon of exactly 4
 * numbers is read as a `[x, y, w, h]` box, as `frPyObjects` does; RLE objects keep their own size.
 */
export function segmentationToRle(
  segm: CocoSegmentation,
  height: number,
  width: number,
  what = "segmentation",
): Rle {
  if (Array.isArray(segm)) {
    if (segm.length === 0) throw new Error(`${what}: empty polygon list`);
    const parts = segm.map((poly, i) => {
      if (!Array.isArray(poly) || poly.some((v) => typeof v !== "number" || !isFinite(v))) {
        throw new Error(`${what}[${i}]: a polygon must be a list of finite numbers`);
      }
      if (poly.length === 4) return rleFrBbox(poly, height, width);
      if (poly.length < 6) {
        throw new Error(
          `${what}[${i}]: a polygon needs at least 3 points, got ${poly.length} numbers`,
        );
      }
      return rleFrPoly(poly, height, width);
    });
    return parts.length === 1 ? parts[0] : rleMerge(parts);
  }
  return rleFromCoco(segm, what);
}
