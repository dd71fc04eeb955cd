// COCO RLE: pycocotools fixtures (every gt/det mask of every case) and brute-force pixel references.
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fixturesDir } from "./_util.ts";
import {
  bboxIou,
  type Rle,
  rleArea,
  rleDecode,
  rleEncode,
  rleFrBbox,
  rleFromCoco,
  rleFrPoly,
  rleFrString,
  rleIou,
  rleMerge,
  rleToBbox,
  rleToCoco,
  rleToString,
  segmentationToRle,
} from "../lib/metrics/rle.ts";

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random row-major mask made of a few rectangles (so runs are long and short). */
function randomMask(r: () => number, h: number, w: number, density = 0.3): Uint8Array {
  const m = new Uint8Array(h * w);
  const n = Math.floor(r() * 4);
  for (let k = 0; k < n; k++) {
    const x0 = Math.floor(r() * w), y0 = Math.floor(r() * h);
    const x1 = Math.min(w, x0 + 1 + Math.floor(r() * w / 2));
    const y1 = Math.min(h, y0 + 1 + Math.floor(r() * h / 2));
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = 1;
  }
  for (let i = 0; i < m.length; i++) if (r() < density * 0.1) m[i] = 1 - m[i];
  return m;
}

function bruteBbox(m: Uint8Array, h: number, w: number): number[] {
  let xs = Infinity, ys = Infinity, xe = -1, ye = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (m[y * w + x]) {
        xs = Math.min(xs, x);
        ys = Math.min(ys, y);
        xe = Math.max(xe, x);
        ye = Math.max(ye, y);
      }
    }
  }
  return xe < 0 ? [0, 0, 0, 0] : [xs, ys, xe - xs + 1, ye - ys + 1];
}

Deno.test("rleEncode follows the column-major layout of the README example", () => {
  // 4 rows x 5 columns, one pixel at (x=2, y=1): column-major index 2*4+1 = 9
  const m = new Uint8Array(20);
  m[1 * 5 + 2] = 1;
  const rle = rleEncode(m, 4, 5);
  assert.deepEqual(Array.from(rle.counts), [9, 1, 10]);
  assert.equal(rleToString(rle), "91:");
  assert.equal(rleArea(rle), 1);
  assert.deepEqual(rleToBbox(rle), [2, 1, 1, 1]);
  // empty mask: a single run of zeros, box [0,0,0,0]
  const empty = rleEncode(new Uint8Array(20), 4, 5);
  assert.deepEqual(Array.from(empty.counts), [20]);
  assert.deepEqual(rleToBbox(empty), [0, 0, 0, 0]);
  // pixel (0,0) foreground: first zero run is 0
  const first = new Uint8Array(20);
  first[0] = 1;
  assert.deepEqual(Array.from(rleEncode(first, 4, 5).counts), [0, 1, 19]);
});

Deno.test("RLE encode/decode, string round trip, area and toBbox agree with pixel references", () => {
  const r = rng(7);
  for (let it = 0; it < 200; it++) {
    const h = 1 + Math.floor(r() * 40), w = 1 + Math.floor(r() * 40);
    const m = randomMask(r, h, w);
    const rle = rleEncode(m, h, w);
    assert.deepEqual(rleDecode(rle), m);
    let sum = 0;
    for (const c of rle.counts) sum += c;
    assert.equal(sum, h * w);
    const s = rleToString(rle);
    assert.deepEqual(rleFrString(s, h, w).counts, rle.counts);
    assert.equal(rleArea(rle), m.reduce((a, b) => a + b, 0));
    assert.deepEqual(rleToBbox(rle), bruteBbox(m, h, w));
    assert.deepEqual(rleFromCoco(rleToCoco(rle, false)).counts, rle.counts);
    assert.deepEqual(rleFromCoco(rleToCoco(rle, true)).counts, rle.counts);
  }
});

Deno.test("compressed strings handle large runs and negative deltas", () => {
  // large image: runs far above 2^20 and deltas of both signs
  const counts = Uint32Array.from([5_000_000, 3, 1, 70_000_000, 2, 9_999_994 - 0]);
  const rle: Rle = { height: 10_000, width: 8_500, counts };
  const total = counts.reduce((a, b) => a + b, 0);
  rle.counts[5] += 10_000 * 8_500 - total;
  const s = rleToString(rle);
  assert.deepEqual(rleFrString(s, 10_000, 8_500).counts, rle.counts);
});

Deno.test("rleIou and rleMerge agree with pixel-wise set operations", () => {
  const r = rng(11);
  for (let it = 0; it < 60; it++) {
    const h = 5 + Math.floor(r() * 30), w = 5 + Math.floor(r() * 30);
    const dts = [0, 1, 2].map(() => randomMask(r, h, w));
    const gts = [0, 1, 2, 3].map(() => randomMask(r, h, w));
    const crowd = [0, 1, 0, 1];
    const got = rleIou(
      dts.map((m) => rleEncode(m, h, w)),
      gts.map((m) => rleEncode(m, h, w)),
      crowd,
    );
    dts.forEach((d, i) => {
      gts.forEach((g, j) => {
        let inter = 0, uni = 0, da = 0;
        for (let k = 0; k < h * w; k++) {
          if (d[k] && g[k]) inter++;
          if (d[k] || g[k]) uni++;
          if (d[k]) da++;
        }
        const want = inter === 0 ? 0 : inter / (crowd[j] ? da : uni);
        assert.equal(got[i][j], want);
      });
    });
    const rles = dts.map((m) => rleEncode(m, h, w));
    const uni = rleDecode(rleMerge(rles));
    const inter = rleDecode(rleMerge(rles, true));
    for (let k = 0; k < h * w; k++) {
      assert.equal(uni[k], dts[0][k] | dts[1][k] | dts[2][k]);
      assert.equal(inter[k], dts[0][k] & dts[1][k] & dts[2][k]);
    }
    // merge output is canonical (same runs as encoding the decoded mask)
    assert.deepEqual(rleMerge(rles).counts, rleEncode(uni, h, w).counts);
  }
  // two empty masks: IoU 0
  const e = rleEncode(new Uint8Array(16), 4, 4);
  assert.equal(rleIou([e], [e])[0][0], 0);
});

Deno.test("bboxIou uses continuous boxes without +1 and the det area for crowd gts", () => {
  const iou = bboxIou([[0, 0, 10, 10], [5, 5, 10, 10], [10, 0, 5, 5]], [[0, 0, 10, 20]], [0]);
  assert.equal(iou[0][0], 0.5);
  assert.equal(iou[1][0], 50 / (100 + 200 - 50)); // overlap 5 x 10
  assert.equal(iou[2][0], 0); // touching edges: iw = 0
  const crowd = bboxIou([[5, 5, 10, 10]], [[0, 0, 10, 20]], [1]);
  assert.equal(crowd[0][0], 50 / 100);
});

Deno.test("frBbox / frPoly rasterise axis-aligned boxes as pixel-centre inclusion", () => {
  // Box corners on the 1/5-pixel grid never put a pixel centre (i + 0.5) on an edge, so the
  // polygon rasteriser must give exactly the pixels whose centres lie inside.
  const r = rng(3);
  for (let it = 0; it < 300; it++) {
    const h = 4 + Math.floor(r() * 30), w = 4 + Math.floor(r() * 30);
    const x = Math.floor(r() * w * 5) / 5, y = Math.floor(r() * h * 5) / 5;
    const bw = Math.floor(r() * w * 5) / 5, bh = Math.floor(r() * h * 5) / 5;
    const got = rleDecode(rleFrBbox([x, y, bw, bh], h, w));
    const want = new Uint8Array(h * w);
    for (let py = 0; py < h; py++) {
      for (let px = 0; px < w; px++) {
        const cx = px + 0.5, cy = py + 0.5;
        if (cx > x && cx < x + bw && cy > y && cy < y + bh) want[py * w + px] = 1;
      }
    }
    assert.deepEqual(got, want, `box [${x}, ${y}, ${bw}, ${bh}] in ${h}x${w}`);
  }
  // an integer box [x, y, w, h] covers exactly w*h pixels
  const box = rleFrPoly([2, 3, 2, 8, 6, 8, 6, 3], 10, 10);
  assert.equal(rleArea(box), 20);
  assert.deepEqual(rleToBbox(box), [2, 3, 4, 5]);
  // polygon lists: several polygons are merged; a 4-number entry is a box
  const two = segmentationToRle([[0, 0, 0, 2, 2, 2, 2, 0], [5, 5, 7, 5, 7, 7, 5, 7]], 10, 10);
  assert.equal(rleArea(two), 8);
  assert.equal(rleArea(segmentationToRle([[1, 1, 3, 2]], 10, 10)), 6);
  assert.throws(() => segmentationToRle([[1, 1]], 10, 10), /at least 3 points/);
});

Deno.test("rleFromCoco rejects malformed RLE with a message naming the field", () => {
  assert.throws(() => rleFromCoco({ size: [2, 2], counts: [1, 2] }, "ann 7"), /ann 7.*sum to 3/);
  assert.throws(() => rleFromCoco({ size: [2], counts: [4] } as never, "ann 8"), /ann 8.*size/);
  assert.throws(() => rleFrString("0\x7f", 2, 2), /invalid character/);
});

interface FixtureMask {
  id: number;
  area: number;
  bbox: number[];
  mask_indices: number[];
  rle: { size: [number, number]; counts: number[] };
  rle_compressed: { size: [number, number]; counts: string };
}

const dir = fixturesDir();
Deno.test({
  name: "every fixture mask: encode, compressed string, decode, area and toBbox equal pycocotools",
  ignore: !dir,
  fn() {
    const coco = join(dir!, "coco");
    let n = 0;
    for (const f of readdirSync(coco).filter((f) => f.startsWith("case")).sort()) {
      const c = JSON.parse(Deno.readTextFileSync(join(coco, f)));
      const [h, w] = [c.images[0].height, c.images[0].width];
      for (const a of [...c.gts, ...c.dets] as FixtureMask[]) {
        const what = `${f} id ${a.id}`;
        const m = new Uint8Array(h * w);
        for (const i of a.mask_indices) m[i] = 1;
        const rle = rleEncode(m, h, w);
        assert.deepEqual(Array.from(rle.counts), a.rle.counts, what);
        assert.equal(rleToString(rle), a.rle_compressed.counts, what);
        const back = rleFromCoco(a.rle_compressed);
        assert.deepEqual(Array.from(back.counts), a.rle.counts, what);
        assert.deepEqual(rleDecode(back), m, what);
        assert.equal(rleArea(back), a.area, what);
        assert.deepEqual(rleToBbox(back), a.bbox, what);
        n++;
      }
    }
    assert.ok(n > 900, `checked ${n} masks`);
  },
});
