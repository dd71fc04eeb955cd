import assert from "node:assert/strict";
import {
  expandBoxes,
  pastedMaskToImage,
  pasteMask,
  pasteMasksInImage,
  pasteMasksInImageFull,
} from "../lib/paste_masks.ts";
import { Rng } from "../lib/rng.ts";
import { readFixtureJson } from "./_util.ts";

interface Arr {
  shape: number[];
  dtype: string;
  data: number[];
}
interface Case {
  name: string;
  params: { img_shape_hw: [number, number]; padding: number };
  inputs: Record<string, Arr>;
  expected: Record<string, Arr | number | number[] | number[][]>;
}

const fx = readFixtureJson<{ cases: Case[] }>("components", "paste_masks.json");

/** Independent float64 reference: materialise the full resized mask, then paste (torchvision). */
function referencePaste(
  mask: Float32Array,
  m: number,
  box: number[],
  imH: number,
  imW: number,
): Float64Array {
  const mp = m + 2;
  const scale = mp / m;
  const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
  const hw = (box[2] - box[0]) / 2 * scale, hh = (box[3] - box[1]) / 2 * scale;
  const b = [cx - hw, cy - hh, cx + hw, cy + hh].map(Math.trunc);
  const w = Math.max(b[2] - b[0] + 1, 1), h = Math.max(b[3] - b[1] + 1, 1);
  const P = (y: number, x: number) =>
    y >= 1 && y <= m && x >= 1 && x <= m ? mask[(y - 1) * m + (x - 1)] : 0;
  const src = (d: number, nIn: number, nOut: number) => {
    const s = Math.max((nIn / nOut) * (d + 0.5) - 0.5, 0);
    const i0 = Math.floor(s);
    return [i0, Math.min(i0 + 1, nIn - 1), s - i0];
  };
  const resized = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    const [y0, y1, ly] = src(y, mp, h);
    for (let x = 0; x < w; x++) {
      const [x0, x1, lx] = src(x, mp, w);
      resized[y * w + x] = (1 - ly) * ((1 - lx) * P(y0, x0) + lx * P(y0, x1)) +
        ly * ((1 - lx) * P(y1, x0) + lx * P(y1, x1));
    }
  }
  const out = new Float64Array(imH * imW);
  for (let y = Math.max(b[1], 0); y < Math.min(b[3] + 1, imH); y++) {
    for (let x = Math.max(b[0], 0); x < Math.min(b[2] + 1, imW); x++) {
      out[y * imW + x] = resized[(y - b[1]) * w + (x - b[0])];
    }
  }
  return out;
}

function probsToImage(p: ReturnType<typeof pasteMask>, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  for (let r = 0; r < p.height; r++) {
    for (let c = 0; c < p.width; c++) out[(p.y0 + r) * w + p.x0 + c] = p.probs![r * p.width + c];
  }
  return out;
}

Deno.test({
  name: "pasteMasksInImage matches torchvision paste_masks_in_image (paste_masks.json, all cases)",
  ignore: !fx,
  fn() {
    for (const c of fx!.cases) {
      const [imH, imW] = c.params.img_shape_hw;
      const masks = Float32Array.from(c.inputs.masks.data);
      const boxes = Float32Array.from(c.inputs.boxes.data);
      const n = boxes.length / 4;
      const scale = c.expected.scale as number;
      assert.equal(scale, 30 / 28);
      const expanded = expandBoxes(boxes, scale);
      assert.deepEqual([...expanded], (c.expected.expanded_boxes as Arr).data.map(Math.fround));
      const pasted = pasteMasksInImage(masks, boxes, imH, imW, { returnProbs: true });
      const full = pasteMasksInImageFull(masks, boxes, imH, imW);
      const expPasted = (c.expected.pasted as Arr).data;
      const intBoxes = (c.expected.int_boxes as Arr).data;
      const sizes = c.expected.resized_mask_sizes_wh as number[][];
      const thr = c.expected.thresholded_gt_0_5_flat_indices as number[][];
      const counts = c.expected.thresholded_counts as number[];
      for (let i = 0; i < n; i++) {
        const p = pasted[i];
        assert.deepEqual(
          p.expandedBoxInt,
          intBoxes.slice(i * 4, i * 4 + 4),
          `${c.name} int box ${i}`,
        );
        const [bx1, by1, bx2, by2] = p.expandedBoxInt;
        assert.deepEqual([Math.max(bx2 - bx1 + 1, 1), Math.max(by2 - by1 + 1, 1)], sizes[i]);
        const img = probsToImage(p, imH, imW);
        let maxErr = 0, sum = 0, expSum = 0;
        for (let k = 0; k < imH * imW; k++) {
          maxErr = Math.max(maxErr, Math.abs(img[k] - expPasted[i * imH * imW + k]));
          expSum += expPasted[i * imH * imW + k];
          sum += img[k];
        }
        assert.ok(maxErr <= 1e-5, `${c.name} mask ${i}: max err ${maxErr}`);
        assert.ok(Math.abs(p.probSum - sum) < 1e-6 * (1 + sum), "probSum is the sum of probs");
        assert.ok(Math.abs(p.probSum - expSum) <= 1e-4 * (1 + expSum), `${c.name} prob sum ${i}`);
        const bin = full.subarray(i * imH * imW, (i + 1) * imH * imW);
        const idx: number[] = [];
        bin.forEach((v, k) => v && idx.push(k));
        assert.deepEqual(idx, thr[i], `${c.name} mask ${i} > 0.5`);
        assert.equal(p.area, counts[i]);
        // the float64 reference that materialises the whole resized mask agrees
        const ref = referencePaste(
          masks.subarray(i * 784, (i + 1) * 784),
          28,
          [...boxes.subarray(i * 4, i * 4 + 4)],
          imH,
          imW,
        );
        for (let k = 0; k < ref.length; k++) assert.ok(Math.abs(ref[k] - img[k]) < 1e-6);
      }
    }
  },
});

Deno.test("pasteMask truncates expanded boxes toward zero and pastes inclusive boxes", () => {
  const ones = new Float32Array(28 * 28).fill(1);
  // box 0..28 expands by 30/28 about 14 -> -1 .. 29: truncation gives x1 = -1 (floor too);
  // box -2..10: centre 4, half-width 6*30/28 = 6.43, so x1 = -2.43 -> -2 (floor would give -3)
  const p = pasteMask(ones, 28, [-2, 0, 10, 28], 40, 40);
  assert.equal(p.expandedBoxInt[0], -2);
  assert.equal(p.expandedBoxInt[2], 10); // 10.43 -> 10; inclusive
  assert.equal(p.x0, 0);
  assert.equal(p.width, 11); // columns 0..10
  assert.equal(p.expandedBoxInt[1], -1);
  assert.equal(p.expandedBoxInt[3], 29);
  assert.equal(p.height, 30); // rows 0..29
  // a box entirely outside the image gives an empty crop
  const out = pasteMask(ones, 28, [50, 50, 60, 60], 40, 40);
  assert.equal(out.width, 0);
  assert.equal(out.area, 0);
  assert.equal(pastedMaskToImage(out, 40, 40).reduce((a, b) => a + b), 0);
  // zero-height box: one pasted row
  const z = pasteMask(ones, 28, [5, 10, 20, 10], 40, 40, { returnProbs: true });
  assert.equal(z.height, 1);
  assert.equal(z.y0, 10);
});

Deno.test("pasteMask binarises with a strict > threshold", () => {
  const half = new Float32Array(4).fill(0.5);
  // M=2, no padding, a box whose resize is exact: every pasted value is 0.5
  const p = pasteMask(half, 2, [0, 0, 3, 3], 8, 8, { padding: 0, returnProbs: true });
  assert.ok(p.probs!.every((v) => v === 0.5));
  assert.equal(p.area, 0);
  assert.equal(pasteMask(half, 2, [0, 0, 3, 3], 8, 8, { padding: 0, threshold: 0.49 }).area, 16);
  assert.throws(() => pasteMasksInImage(new Float32Array(10), new Float32Array(4), 8, 8), /square/);
});

Deno.test("pasteMasksInImage agrees with a float64 reference on random masks and boxes", () => {
  const rng = new Rng(17);
  const n = 20, imH = 64, imW = 80;
  const masks = new Float32Array(n * 784).map(() => rng.uniform());
  const boxes = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = rng.uniform() * 100 - 20, y = rng.uniform() * 80 - 20;
    boxes.set([x, y, x + rng.uniform() * 40, y + rng.uniform() * 40], i * 4);
  }
  const pasted = pasteMasksInImage(masks, boxes, imH, imW, { returnProbs: true });
  for (let i = 0; i < n; i++) {
    const ref = referencePaste(
      masks.subarray(i * 784, (i + 1) * 784),
      28,
      [...boxes.subarray(i * 4, i * 4 + 4)],
      imH,
      imW,
    );
    const got = probsToImage(pasted[i], imH, imW);
    const bin = pastedMaskToImage(pasted[i], imH, imW);
    let area = 0;
    for (let k = 0; k < ref.length; k++) {
      assert.ok(Math.abs(ref[k] - got[k]) < 1e-6, `mask ${i} pixel ${k}`);
      if (Math.abs(ref[k] - 0.5) > 1e-6) assert.equal(bin[k], ref[k] > 0.5 ? 1 : 0);
      area += bin[k];
    }
    assert.equal(area, pasted[i].area);
  }
});

Deno.test("pasting 128 masks into a 512x512 image is fast", () => {
  const rng = new Rng(5);
  const n = 128;
  const masks = new Float32Array(n * 784).map(() => rng.uniform());
  const boxes = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = rng.uniform() * 450, y = rng.uniform() * 450;
    boxes.set([x, y, x + 8 + rng.uniform() * 120, y + 8 + rng.uniform() * 120], i * 4);
  }
  pasteMasksInImage(masks, boxes, 512, 512); // warm-up
  const t0 = performance.now();
  const reps = 5;
  for (let r = 0; r < reps; r++) pasteMasksInImage(masks, boxes, 512, 512);
  const ms = (performance.now() - t0) / reps;
  console.log(`128 masks (boxes 8..128 px) into 512x512: ${ms.toFixed(2)} ms`);
  assert.ok(ms < 100, `${ms} ms`);
});

interface SsmVariant {
  detections: { boxes: number[][] };
  masks: {
    probs_28x28: number[][];
    pasted: {
      expanded_box_int: number[];
      area: number;
      prob_sum: number;
      prob_sum_sq: number;
      rle: number[];
    }[];
    union_area: number;
    union_rle: number[];
  };
}
const ssm = readFixtureJson<Record<string, SsmVariant>>("ssm", "expected.json");

function rle(bin: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bin.length;) {
    if (!bin[i]) {
      i++;
      continue;
    }
    let j = i;
    while (j < bin.length && bin[j]) j++;
    out.push(i, j - i);
    i = j;
  }
  return out;
}

Deno.test({
  name: "pasted SSM detections match the fixture (expanded boxes, areas, prob sums, RLE, union)",
  ignore: !ssm,
  fn() {
    for (const variant of ["reference", "torchvision_0_14"]) {
      const v = ssm![variant];
      const probs = Float32Array.from(v.masks.probs_28x28.flat());
      const boxes = Float32Array.from(v.detections.boxes.flat());
      const pasted = pasteMasksInImage(probs, boxes, 512, 512, { returnProbs: true });
      const union = new Uint8Array(512 * 512);
      pasted.forEach((p, i) => {
        const e = v.masks.pasted[i];
        const what = `${variant} detection ${i}`;
        assert.deepEqual(p.expandedBoxInt, e.expanded_box_int, what);
        assert.equal(p.area, e.area, `${what} area`);
        assert.ok(Math.abs(p.probSum - e.prob_sum) <= 1e-4 * e.prob_sum, `${what} prob_sum`);
        let sq = 0;
        for (const x of p.probs!) sq += x * x;
        assert.ok(Math.abs(sq - e.prob_sum_sq) <= 1e-4 * e.prob_sum_sq, `${what} prob_sum_sq`);
        const full = pastedMaskToImage(p, 512, 512);
        assert.deepEqual(rle(full), e.rle, `${what} rle`);
        for (let k = 0; k < full.length; k++) union[k] |= full[k];
      });
      assert.equal(union.reduce((a, b) => a + b, 0), v.masks.union_area);
      assert.deepEqual(rle(union), v.masks.union_rle);
    }
  },
});
