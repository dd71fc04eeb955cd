import assert from "node:assert/strict";
import {
  augment,
  connectedComponents,
  flipTargetHorizontal,
  type ImageTarget,
  Mulberry32,
  resizeBilinear,
  resizeNearest,
  resizeTarget,
} from "../lib/data/mod.ts";

/** Float64 reference of F.interpolate(mode="bilinear", align_corners=False), written directly. */
function refBilinear(
  src: Float64Array,
  w0: number,
  h0: number,
  w: number,
  h: number,
): Float64Array {
  const out = new Float64Array(w * h);
  const at = (x: number, y: number) => src[Math.min(y, h0 - 1) * w0 + Math.min(x, w0 - 1)];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = Math.max(0, ((x + 0.5) * w0) / w - 0.5),
        sy = Math.max(0, ((y + 0.5) * h0) / h - 0.5);
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      out[y * w + x] = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) +
        fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
    }
  }
  return out;
}

Deno.test("resizeBilinear matches a float64 align_corners=False reference (up and down)", () => {
  const rng = new Mulberry32(99);
  for (const [w0, h0, w, h] of [[13, 9, 31, 20], [40, 33, 16, 11], [7, 7, 7, 7], [5, 8, 12, 3]]) {
    const src = Float64Array.from({ length: w0 * h0 }, () => rng.next());
    const got = resizeBilinear({ width: w0, height: h0, data: Float32Array.from(src) }, w, h);
    const want = refBilinear(src, w0, h0, w, h);
    assert.equal(got.data.length, w * h);
    want.forEach((v, i) =>
      assert.ok(Math.abs(got.data[i] - v) < 1e-5, `${w0}x${h0}->${w}x${h} @${i}`)
    );
  }
  // Hand-checked: 2 -> 4 pixels gives [0, 0.25, 0.75, 1].
  const r = resizeBilinear({ width: 2, height: 1, data: new Float32Array([0, 1]) }, 4, 1);
  assert.deepEqual(Array.from(r.data), [0, 0.25, 0.75, 1]);
});

Deno.test("resizeNearest follows PyTorch nearest: source floor(x * in / out)", () => {
  const src = Uint8Array.from([0, 1, 2, 3, 4, 5]); // 3x2
  assert.deepEqual(Array.from(resizeNearest(src, 3, 2, 6, 2)), [
    0,
    0,
    1,
    1,
    2,
    2,
    3,
    3,
    4,
    4,
    5,
    5,
  ]);
  assert.deepEqual(Array.from(resizeNearest(src, 3, 2, 2, 1)), [0, 1]);
  assert.deepEqual(Array.from(resizeNearest(src, 3, 2, 4, 1)), [0, 0, 1, 2]);
});

function target(): ImageTarget {
  const w = 8, h = 6;
  const mask = new Uint8Array(w * h);
  for (let y = 1; y < 4; y++) for (let x = 1; x < 3; x++) mask[y * w + x] = 1;
  return {
    image: {
      width: w,
      height: h,
      data: Float32Array.from({ length: w * h }, (_, i) => (i % w) / w),
    },
    instances: [{ box: [1, 1, 3, 4], mask, label: 1, area: 6 }],
  };
}

Deno.test("horizontal flip mirrors image, masks and boxes consistently", () => {
  const t = target();
  const f = flipTargetHorizontal(t);
  assert.deepEqual(f.instances[0].box, [5, 1, 7, 4]);
  // The flipped mask's component box equals the flipped box.
  const { components } = connectedComponents(f.instances[0].mask, 8, 6);
  assert.deepEqual(components[0].box, f.instances[0].box);
  assert.equal(f.image.data[0], t.image.data[7]);
  // Flipping twice is the identity.
  const ff = flipTargetHorizontal(f);
  assert.deepEqual(ff.image.data, t.image.data);
  assert.deepEqual(ff.instances[0].mask, t.instances[0].mask);
  assert.deepEqual(ff.instances[0].box, t.instances[0].box);
});

Deno.test("augment is off by default and flips with probability hflipProb", () => {
  const t = target();
  const rng = new Mulberry32(1);
  assert.equal(augment(t, () => rng.next()), t);
  let flips = 0;
  for (let i = 0; i < 400; i++) {
    if (augment(t, () => rng.next(), { hflipProb: 0.5 }) !== t) flips++;
  }
  assert.ok(flips > 150 && flips < 250, `${flips} flips of 400`);
  assert.notEqual(augment(t, () => 0, { hflipProb: 1 }), t);
});

Deno.test("resizeTarget scales boxes and keeps masks inside the scaled boxes", () => {
  const r = resizeTarget(target(), 16, 12);
  assert.deepEqual(r.instances[0].box, [2, 2, 6, 8]);
  assert.equal(r.instances[0].area, 24);
  const { components } = connectedComponents(r.instances[0].mask, 16, 12);
  assert.deepEqual(components[0].box, [2, 2, 6, 8]);
  assert.equal(r.image.width, 16);
});

Deno.test("connectedComponents: 8- vs 4-connectivity and exclusive-max boxes", () => {
  const m = Uint8Array.from([
    1,
    0,
    0,
    1,
    0,
    1,
    0,
    1,
    0,
    0,
    0,
    0,
  ]);
  const c8 = connectedComponents(m, 4, 3).components;
  assert.deepEqual(c8.map((c) => [c.area, c.box]), [[2, [0, 0, 2, 2]], [2, [3, 0, 4, 2]]]);
  const c4 = connectedComponents(m, 4, 3, { connectivity: 4 }).components;
  assert.equal(c4.length, 3);
});
