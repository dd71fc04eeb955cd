import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import {
  AnchorGenerator,
  anchorsToTensor,
  generateCellAnchors,
  gridAnchors,
  roundHalfToEven,
} from "../lib/anchors.ts";
import { readFixtureJson } from "./_util.ts";

interface Arr {
  shape: number[];
  dtype: string;
  data: number[];
}
interface Case {
  name: string;
  inputs: Record<string, Arr | number[]>;
  expected: Record<string, Arr | number | number[]>;
}

const fx = readFixtureJson<{ cases: Case[] }>("components", "anchors.json");
const getCase = (name: string) => fx!.cases.find((c) => c.name === name)!;

/** Exact equality treating -0 as 0. */
function assertSame(actual: ArrayLike<number>, expected: number[], what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(actual[i] === expected[i], `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

await initBackend("cpu");

Deno.test("roundHalfToEven rounds ties to the even neighbour (unlike Math.round)", () => {
  assert.equal(roundHalfToEven(0.5), 0);
  assert.equal(roundHalfToEven(1.5), 2);
  assert.equal(roundHalfToEven(2.5), 2);
  assert.equal(roundHalfToEven(-0.5), 0);
  assert.equal(roundHalfToEven(-1.5), -2);
  assert.equal(roundHalfToEven(-2.5), -2);
  assert.equal(roundHalfToEven(0.316), 0);
  assert.equal(roundHalfToEven(-3.7), -4);
  assert.equal(roundHalfToEven(7), 7);
});

Deno.test("paper anchors: 30 per cell, two of them zero-height (rows 0 and 5)", () => {
  const gen = new AnchorGenerator();
  assert.deepEqual(gen.numAnchorsPerLocation(), [30]);
  const cell = gen.cellAnchors[0];
  const zero: number[] = [];
  for (let r = 0; r < 30; r++) if (cell[r * 4 + 3] - cell[r * 4 + 1] === 0) zero.push(r);
  assert.deepEqual(zero, [0, 5]);
  // ratio 1, size 4 (row 3*5+1): a 4x4 box
  assertSame(cell.subarray(16 * 4, 16 * 4 + 4), [-2, -2, 2, 2], "row 16");
  // ratio 0.25, size 2: w = 4, h = 1 -> y = +-0.5 rounds to 0
  assertSame(cell.subarray(20, 24), [-2, 0, 2, 0], "row 5");
});

Deno.test("grid anchors are placed at x*stride, position-major, with floor-divided strides", () => {
  const gen = new AnchorGenerator({ sizes: [[4]], aspectRatios: [[1, 2]] });
  assert.deepEqual(gen.strides([50, 37], [[3, 2]]), [[16, 18]]);
  const a = gen.generate([50, 37], [[3, 2]]);
  assert.equal(a.length, 3 * 2 * 2 * 4);
  // position (y=1, x=1), anchor 1 -> index (1*2+1)*2+1 = 7
  const c = gen.cellAnchors[0];
  assertSame(a.subarray(28, 32), [c[4] + 18, c[5] + 16, c[6] + 18, c[7] + 16], "anchor 7");
  // two levels are concatenated
  const two = new AnchorGenerator({ sizes: [[4], [8]], aspectRatios: [[1], [1]] });
  const t = two.generate([64, 64], [[4, 4], [2, 2]]);
  assert.equal(t.length, (16 + 4) * 4);
  assertSame(t.subarray(16 * 4, 16 * 4 + 4), [-4, -4, 4, 4], "level 1 first");
  assert.throws(() => two.generate([64, 64], [[4, 4]]), /2 anchor levels/);
  assert.throws(() => new AnchorGenerator({ sizes: [[2]], aspectRatios: [] }), /same number/);
  const tensor = anchorsToTensor(t);
  assert.deepEqual(tensor.shape, [20, 4]);
  tensor.dispose();
});

Deno.test({
  name: "cell anchors match torchvision exactly (anchors.json cell_anchors)",
  ignore: !fx,
  fn() {
    const c = getCase("cell_anchors");
    const cell = generateCellAnchors([2, 4, 8, 16, 32], [0.1, 0.25, 0.5, 1.0, 1.5, 2.0]);
    assertSame(cell, (c.expected.cell_anchors as Arr).data, "cell_anchors");
    // the unrounded values round (half to even) to the stored anchors
    const unrounded = (c.expected.unrounded as Arr).data;
    assertSame(unrounded.map(roundHalfToEven), (c.expected.cell_anchors as Arr).data, "rounded");
    const zero: number[] = [];
    for (let r = 0; r < 30; r++) {
      if ((cell[r * 4 + 2] - cell[r * 4]) * (cell[r * 4 + 3] - cell[r * 4 + 1]) === 0) zero.push(r);
    }
    assert.deepEqual(zero, c.expected.rows_with_zero_area);
  },
});

Deno.test({
  name: "grid anchors match torchvision exactly (64x64/4x4 and 50x37/3x2)",
  ignore: !fx,
  fn() {
    const gen = new AnchorGenerator();
    for (const name of ["image64_feat4", "image50x37_feat3x2"]) {
      const c = getCase(name);
      const img = c.inputs.image_tensor_hw as [number, number];
      const feat = c.inputs.feature_map_hw as [number, number];
      assert.deepEqual(gen.strides(img, [feat])[0], c.expected.strides_hw);
      const a = gen.generate(img, [feat]);
      assert.equal(a.length / 4, c.expected.num_anchors);
      assertSame(a, (c.expected.anchors as Arr).data, name);
      const t = gen.generateTensor(img, [feat]);
      assertSame(t.dataSync(), (c.expected.anchors as Arr).data, `${name} tensor`);
      t.dispose();
    }
  },
});

Deno.test({
  name: "512x512 anchors match torchvision's samples and checksums (image512_feat32)",
  ignore: !fx,
  fn() {
    const c = getCase("image512_feat32");
    const a = new AnchorGenerator().generate([512, 512], [[32, 32]]);
    const n = a.length / 4;
    assert.equal(n, c.expected.num_anchors);
    assertSame(a.subarray(0, 240), (c.expected.first_60 as Arr).data, "first_60");
    assertSame(a.subarray((n - 60) * 4), (c.expected.last_60 as Arr).data, "last_60");
    const idx = c.expected.sampled_indices as number[];
    const sampled = idx.flatMap((i) => [...a.subarray(i * 4, i * 4 + 4)]);
    assertSame(sampled, (c.expected.sampled_anchors as Arr).data, "sampled");
    let sum = 0, sumAbs = 0;
    const col = [0, 0, 0, 0];
    for (let i = 0; i < a.length; i++) {
      sum += a[i];
      sumAbs += Math.abs(a[i]);
      col[i % 4] += a[i];
    }
    assert.equal(sum, c.expected.sum_all_coordinates);
    assert.equal(sumAbs, c.expected.sum_abs_all_coordinates);
    assert.deepEqual(col, c.expected.sum_per_column);
  },
});

Deno.test({
  name: "NHWC RPN head outputs reshaped to [-1,1]/[-1,4] follow the anchor order",
  ignore: !fx,
  fn() {
    const c = getCase("rpn_head_output_layout");
    const obj = c.inputs.objectness as Arr, del = c.inputs.pred_bbox_deltas as Arr;
    const [n, a, h, w] = obj.shape;
    const out = tf.tidy(() => {
      const o = tf.reshape(tf.transpose(tf.tensor4d(obj.data, [n, a, h, w]), [0, 2, 3, 1]), [
        -1,
        1,
      ]);
      const d = tf.reshape(
        tf.transpose(tf.tensor4d(del.data, [n, a * 4, h, w]), [0, 2, 3, 1]),
        [-1, 4],
      );
      return [o.dataSync(), d.dataSync()];
    });
    assertSame(out[0], (c.expected.objectness_flat as Arr).data, "objectness");
    assertSame(out[1], (c.expected.pred_bbox_deltas_flat as Arr).data, "deltas");
  },
});

const ssm = readFixtureJson<{ anchors: Record<string, unknown> }>("ssm", "expected.json");

Deno.test({
  name: "cell anchors equal the SSM fixture's (ssm/expected.json anchors)",
  ignore: !ssm,
  fn() {
    const cell = ssm!.anchors.cell_anchors as number[][] | { data: number[] };
    const flat = Array.isArray(cell) ? cell.flat() : cell.data;
    assertSame(new AnchorGenerator().cellAnchors[0], flat, "ssm cell anchors");
  },
});

Deno.test("gridAnchors adds the stride offsets to every cell anchor", () => {
  const cell = new Float32Array([-1, -2, 1, 2]);
  assertSame(gridAnchors(cell, [2, 2], [10, 20]), [
    -1,
    -2,
    1,
    2,
    19,
    -2,
    21,
    2,
    -1,
    8,
    1,
    12,
    19,
    8,
    21,
    12,
  ], "grid");
});
