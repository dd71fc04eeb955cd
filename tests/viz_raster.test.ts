// Raster figures: canvas primitives, the bitmap font, prediction overlays and the RoI batch figure.
import assert from "node:assert/strict";
import { decode as decodePng } from "fast-png";
import {
  blendPixel,
  createCanvas,
  FONT_CHARACTERS,
  glyph,
  renderOverlay,
  renderRoiBatch,
  roiBatchFromStages,
  scaleColumns,
  strokeRect,
  textWidth,
  viridis,
  writeOverlayPng,
  writeRoiBatchPng,
} from "../lib/viz/mod.ts";
import { drawText } from "../lib/viz/font.ts";
import { instanceColor } from "../lib/viz/colors.ts";

function px(img: { width: number; rgba: Uint8Array }, x: number, y: number): number[] {
  const o = (y * img.width + x) * 4;
  return [img.rgba[o], img.rgba[o + 1], img.rgba[o + 2], img.rgba[o + 3]];
}

function gradient(w: number, h: number): Float32Array {
  const d = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) d[y * w + x] = ((x * 7 + y * 3) % 97) / 96;
  }
  return d;
}

Deno.test("blendPixel is the over operator on an opaque background, rounded", () => {
  const c = createCanvas(2, 1, [100, 50, 0]);
  blendPixel(c, 0, 0, [200, 250, 255], 0.3);
  assert.deepEqual(px(c, 0, 0), [
    Math.round(0.7 * 100 + 0.3 * 200),
    Math.round(0.7 * 50 + 0.3 * 250),
    Math.round(0.3 * 255),
    255,
  ]);
  blendPixel(c, 5, 0, [1, 2, 3]); // outside: no-op, no throw
  assert.deepEqual(px(c, 1, 0), [100, 50, 0, 255]);
});

Deno.test("strokeRect draws the inclusive outline only, clipped", () => {
  const c = createCanvas(10, 10);
  strokeRect(c, 2, 3, 6, 8, [255, 0, 0], 1);
  let n = 0;
  for (let y = 0; y < 10; y++) {
    for (let x = 0; x < 10; x++) {
      const on = px(c, x, y)[0] === 255;
      const edge = x >= 2 && x <= 6 && y >= 3 && y <= 8 &&
        (x === 2 || x === 6 || y === 3 || y === 8);
      assert.equal(on, edge, `pixel ${x},${y}`);
      if (on) n++;
    }
  }
  assert.equal(n, 2 * 5 + 2 * 6 - 4);
  strokeRect(c, -1, -1, 20, 20, [0, 255, 0], 2); // clipped, no throw
  assert.equal(px(c, 0, 5)[1], 255);
  assert.equal(px(c, 1, 5)[1], 0);
});

Deno.test("font: distinct glyphs, case folding, widths and scaling", () => {
  const seen = new Map<string, string>();
  for (const ch of FONT_CHARACTERS) {
    const key = Array.from(glyph(ch)).join(",");
    assert.ok(!seen.has(key), `glyphs '${ch}' and '${seen.get(key)}' are identical`);
    seen.set(key, ch);
  }
  assert.deepEqual(glyph("a"), glyph("A"));
  assert.deepEqual(glyph("\u00e9"), glyph("?"));
  assert.equal(textWidth(""), 0);
  assert.equal(textWidth("AB"), 11);
  assert.equal(textWidth("AB", 3), 33);
  const count = (s: number) => {
    const c = createCanvas(80, 30);
    const end = drawText(c, "0.5%", 1, 1, [255, 255, 255], s);
    let n = 0, maxX = 0, maxY = 0;
    for (let y = 0; y < 30; y++) {
      for (let x = 0; x < 80; x++) {
        if (px(c, x, y)[0] === 255) {
          n++;
          maxX = Math.max(maxX, x);
          maxY = Math.max(maxY, y);
        }
      }
    }
    assert.ok(maxX <= textWidth("0.5%", s), `ink beyond the text width at scale ${s}`);
    assert.ok(maxY <= 7 * s, `ink below the glyph height at scale ${s}`);
    assert.equal(end, 1 + textWidth("0.5%", s));
    return n;
  };
  const n1 = count(1);
  assert.ok(n1 > 20);
  assert.equal(count(2), 4 * n1);
});

Deno.test("renderOverlay: grey slice, translucent masks with solid contours, boxes, class bars", () => {
  const W = 96, H = 80;
  const image = { width: W, height: H, data: gradient(W, H) };
  const grey = (x: number, y: number) => Math.round(image.data[y * W + x] * 255);
  // Detection 0 (score 0.6): a 10x8 mask at (20, 30); detection 1 (score 0.9): box only, no mask
  // pixels; detection 2 below minScore.
  const m0 = { x0: 20, y0: 30, width: 10, height: 8, mask: new Uint8Array(80).fill(1) };
  const m1 = { x0: 60, y0: 10, width: 5, height: 5, mask: new Uint8Array(25) };
  const m2 = { x0: 0, y0: 0, width: 4, height: 4, mask: new Uint8Array(16).fill(1) };
  const probs = [0.25, 0.15, 0.6];
  const out = renderOverlay(image, {
    detections: {
      boxes: [20, 30, 30, 38, 60.5, 10.2, 80, 40, 0, 0, 4, 4],
      scores: [0.6, 0.9, 0.05],
      masks: [m0, m1, m2],
    },
    classProbs: probs,
  }, { maskAlpha: 0.5, maxLabels: 0, minScore: 0.1 });
  assert.equal(out.imageX, 0);
  assert.ok(out.height > H);
  // Rank 0 = detection 1 (0.9), rank 1 = detection 0 (0.6).
  const c0 = instanceColor(1), c1 = instanceColor(0);
  // Interior mask pixel: 50% blend (the box outline of detection 0 covers the mask's border).
  for (const [x, y] of [[22, 32], [27, 35]]) {
    const g = grey(x, y);
    assert.deepEqual(px(out, x, y).slice(0, 3), c0.map((v) => Math.round(0.5 * g + 0.5 * v)));
  }
  // Box of detection 0 outline at its corner; box of detection 1 spans x 60..79, y 10..39.
  assert.deepEqual(px(out, 20, 30).slice(0, 3), [...c0]);
  assert.deepEqual(px(out, 60, 25).slice(0, 3), [...c1]);
  assert.deepEqual(px(out, 79, 39).slice(0, 3), [...c1]);
  // Inside box 1 (no mask) and everywhere else: the exact grey level.
  for (const [x, y] of [[70, 25], [61, 11], [5, 70], [50, 50], [1, 1], [3, 3]]) {
    const g = grey(x, y);
    assert.deepEqual(px(out, x, y), [g, g, g, 255], `pixel ${x},${y}`);
  }
  // Class bars: the filled share of each bar is its probability.
  const colours = [[60, 180, 75], [245, 150, 30], [220, 40, 40]];
  const filled = colours.map((col) => {
    let best = 0;
    for (let y = H; y < out.height; y++) {
      let n = 0;
      for (let x = 0; x < out.width; x++) if (px(out, x, y).slice(0, 3).join() === col.join()) n++;
      best = Math.max(best, n);
    }
    return best;
  });
  let track = 0;
  for (let y = H; y < out.height; y++) {
    let n = 0;
    for (let x = 0; x < out.width; x++) if (px(out, x, y).slice(0, 3).join() === "64,64,70") n++;
    track = Math.max(track, n);
  }
  // Row of the smallest bar: fill + track = bar width.
  const barW = track + filled[1];
  filled.forEach((f, k) => assert.ok(Math.abs(f - probs[k] * barW) <= 1, `bar ${k}: ${f}/${barW}`));
});

Deno.test("renderOverlay labels the best detections and names bad input", () => {
  const image = { width: 64, height: 64, data: new Uint8Array(64 * 64).fill(128) };
  const det = { boxes: [10, 20, 40, 50], scores: [0.87] };
  const plain = renderOverlay(image, { detections: det }, { maxLabels: 0 });
  const labelled = renderOverlay(image, { detections: det }, { maxLabels: 5 });
  assert.equal(plain.height, 64); // no class probabilities: no panel
  let diff = 0, minY = 64;
  for (let y = 0; y < 64; y++) {
    for (let x = 0; x < 64; x++) {
      if (px(plain, x, y).join() !== px(labelled, x, y).join()) {
        diff++;
        minY = Math.min(minY, y);
      }
    }
  }
  assert.ok(diff > 20, "the score label changed pixels");
  assert.equal(minY, 20 - 9, "the label sits right above the box");
  assert.throws(
    () => renderOverlay(image, { detections: { boxes: [1, 2, 3], scores: [0.5] } }),
    /3 box values for 1 scores/,
  );
  const bad = { x0: 60, y0: 0, width: 10, height: 2, mask: new Uint8Array(20) };
  assert.throws(
    () => renderOverlay(image, { detections: { ...det, masks: [bad] } }),
    /mask 0 .* outside the 64x64 image/,
  );
  assert.throws(
    () => renderOverlay({ width: 4, height: 4, data: new Float32Array(3) }, { detections: det }),
    /image: data has 3 values/,
  );
});

Deno.test("writeOverlayPng writes the rendered pixels as a PNG", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const image = { width: 40, height: 30, data: gradient(40, 30) };
    const pred = {
      detections: {
        boxes: [5, 5, 20, 15],
        scores: [0.7],
        masks: [{ x0: 6, y0: 6, width: 3, height: 3, mask: new Uint8Array(9).fill(1) }],
      },
      classProbs: [0.1, 0.8, 0.1],
    };
    const path = `${dir}/o.png`;
    const out = await writeOverlayPng(path, image, pred);
    const png = decodePng(Deno.readFileSync(path));
    assert.equal(png.width, out.width);
    assert.equal(png.height, out.height);
    assert.equal(png.channels, 4);
    assert.deepEqual(new Uint8Array(png.data as Uint8Array), out.rgba);
    assert.ok(![...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".tmp")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scaleColumns min-max scales each column on its own", () => {
  const batch = new Float32Array([1, -2, 5, 0, 0, 3, 2, 5, 0, 0, 2, 0, 5, 0, 0]);
  const s = scaleColumns(batch, 5);
  const rows = 3;
  for (let j = 0; j < 5; j++) {
    const col = Array.from({ length: rows }, (_, r) => batch[r * 5 + j]);
    const lo = Math.min(...col), hi = Math.max(...col);
    col.forEach((v, r) => {
      const want = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      assert.ok(Math.abs(s[r * 5 + j] - want) < 1e-6);
    });
  }
});

Deno.test("renderRoiBatch: boxes coloured by rank, heatmap cells, colour bar", async () => {
  const W = 64, H = 64, rows = 4;
  const image = { width: W, height: H, data: gradient(W, H) };
  const boxes = new Float32Array([2, 2, 12, 12, 20, 2, 30, 12, 2, 20, 12, 30, 40, 40, 60, 60]);
  const roiBatch = new Float32Array(rows * 5).map((_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
  const fig = renderRoiBatch({ image, boxes, roiBatch });
  const { imageX: ix, imageY: iy } = fig;
  for (let r = 0; r < rows; r++) {
    const want = viridis(1 - r / (rows - 1));
    assert.deepEqual(px(fig, ix + boxes[4 * r], iy + boxes[4 * r + 1]).slice(0, 3), [...want]);
    // Colour bar row r, just left of the heatmap.
    assert.deepEqual(
      px(fig, fig.heatmapX - 3, iy + r * fig.cellHeight).slice(0, 3),
      [...want],
      `colour bar row ${r}`,
    );
  }
  // Inside a box: the slice's grey.
  const g = Math.round(image.data[6 * W + 6] * 255);
  assert.deepEqual(px(fig, ix + 6, iy + 6), [g, g, g, 255]);
  const scaled = scaleColumns(roiBatch, 5);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < 5; j++) {
      const p = px(fig, fig.heatmapX + j * fig.cellWidth + 2, iy + r * fig.cellHeight + 1);
      assert.deepEqual(p.slice(0, 3), [...viridis(scaled[r * 5 + j])], `cell ${r},${j}`);
    }
  }
  assert.throws(
    () => renderRoiBatch({ image, boxes, roiBatch: roiBatch.subarray(1) }),
    /not R x 5/,
  );
  assert.throws(
    () => renderRoiBatch({ image, boxes: boxes.subarray(4), roiBatch }),
    /12 box values for 4 rows/,
  );
  const dir = await Deno.makeTempDir();
  try {
    await writeRoiBatchPng(`${dir}/r.png`, { image, boxes, roiBatch });
    const png = decodePng(Deno.readFileSync(`${dir}/r.png`));
    assert.deepEqual([png.width, png.height], [fig.width, fig.height]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("roiBatchFromStages maps decoded boxes to the original frame", () => {
  const image = { width: 200, height: 100, data: new Float32Array(200 * 100) };
  const input = roiBatchFromStages({
    roiBatch: new Float32Array(10),
    imageSize: [64, 128],
    originalSize: [100, 200],
    roiSelection: { decodedBoxes: new Float32Array([0, 0, 64, 32, 10, 20, 30, 40]), numPadded: 1 },
  }, image);
  const want = [0, 0, 100, 50, 10 * 200 / 128, 20 * 100 / 64, 30 * 200 / 128, 40 * 100 / 64];
  Array.from(input.boxes).forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-4));
  assert.equal(input.numPadded, 1);
  assert.throws(
    () =>
      roiBatchFromStages({
        roiBatch: new Float32Array(5),
        imageSize: [10, 10],
        originalSize: [20, 20],
        roiSelection: { decodedBoxes: new Float32Array(4), numPadded: 0 },
      }, image),
    /image is 200x100, the stages' original size is 20x20/,
  );
});
