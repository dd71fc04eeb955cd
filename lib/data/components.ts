/**
 * 8-connected (or 4-connected) component labelling of a binary mask, with per-component area and
 * bounding box. Boxes follow torchvision: `[x1, y1, x2, y2]` with an exclusive maximum
 * (`x2 = max x + 1`), so a single pixel at (3, 4) has box `[3, 4, 4, 5]` and width 1.
 *
 * @example
 * ```ts
 * import { connectedComponents } from "./components.ts";
 * const mask = new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0, 1]); // a diagonal: one 8-connected component
 * const { components } = connectedComponents(mask, 3, 3);
 * console.log(components.length, components[0].area); // 1 3
 * ```
 * @module
 */

/** One connected component. */
export interface Component {
  /** Label id in the returned label image (1-based). */
  id: number;
  /** Number of pixels. */
  area: number;
  /** `[x1, y1, x2, y2]`, exclusive maximum. */
  box: [number, number, number, number];
}

/** Options for {@linkcode connectedComponents}. */
export interface ComponentOptions {
  /** Neighbourhood: 8 (default) or 4. */
  connectivity?: 4 | 8;
}

/** Result of {@linkcode connectedComponents}. */
export interface ComponentLabels {
  /** Per-pixel component id (0 = background), row-major `height * width`. */
  labels: Int32Array;
  /** Components in raster order of their first pixel. */
  components: Component[];
}

/**
 * Labels the connected components of the non-zero pixels of `mask` (`height * width`, row-major)
 * with an iterative flood fill (no recursion, so large components are safe).
 */
export function connectedComponents(
  mask: ArrayLike<number>,
  width: number,
  height: number,
  options: ComponentOptions = {},
): ComponentLabels {
  const n = width * height;
  if (mask.length !== n) {
    throw new Error(`connectedComponents: mask length ${mask.length} != ${width}x${height}`);
  }
  const eight = (options.connectivity ?? 8) === 8;
  const labels = new Int32Array(n);
  const stack = new Int32Array(n);
  const components: Component[] = [];
  let next = 0;
  for (let start = 0; start < n; start++) {
    if (!mask[start] || labels[start]) continue;
    const id = ++next;
    let top = 0;
    stack[top++] = start;
    labels[start] = id;
    let area = 0;
    let x1 = width, y1 = height, x2 = -1, y2 = -1;
    while (top > 0) {
      const p = stack[--top];
      const y = (p / width) | 0;
      const x = p - y * width;
      area++;
      if (x < x1) x1 = x;
      if (x > x2) x2 = x;
      if (y < y1) y1 = y;
      if (y > y2) y2 = y;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          if (dx === 0 && dy === 0) continue;
          if (!eight && dx !== 0 && dy !== 0) continue;
          const xx = x + dx;
          if (xx < 0 || xx >= width) continue;
          const q = yy * width + xx;
          if (mask[q] && !labels[q]) {
            labels[q] = id;
            stack[top++] = q;
          }
        }
      }
    }
    components.push({ id, area, box: [x1, y1, x2 + 1, y2 + 1] });
  }
  return { labels, components };
}
