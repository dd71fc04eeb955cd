import assert from "node:assert/strict";
import { join } from "node:path";
import { encode as pngEncode } from "fast-png";
import {
  CLASS_NAMES,
  ClassificationDataset,
  cropImage,
  parseClassificationSplit,
  writeSyntheticDataset,
} from "../lib/data/mod.ts";

Deno.test("split lines parse, with and without a box", () => {
  const e = parseClassificationSplit(
    "# comment\nNCP_1.png 2 10 20 110 220\n\nCP_3.png 1\nNormal_9.png 0 0 0 5 5\r\n",
    "train.txt",
  );
  assert.deepEqual(e, [
    { file: "NCP_1.png", label: 2, box: [10, 20, 110, 220] },
    { file: "CP_3.png", label: 1, box: null },
    { file: "Normal_9.png", label: 0, box: [0, 0, 5, 5] },
  ]);
  assert.deepEqual(CLASS_NAMES, ["Control", "Common Pneumonia", "COVID-19"]);
});

Deno.test("malformed split lines fail with file:line", () => {
  const bad: [string, RegExp][] = [
    ["a.png 1\nb.png 3\n", /s\.txt:2: class '3' is not an integer in 0\.\.2/],
    ["a.png 1 2 3\n", /s\.txt:1: expected 'filename class \[xmin ymin xmax ymax\]', got 4 fields/],
    ["\n\na.png x\n", /s\.txt:3: class 'x'/],
    ["a.png 0 1 2 3 z\n", /s\.txt:1: box '1 2 3 z' must be non-negative integers/],
    ["a.png 0 5 5 5 9\n", /s\.txt:1: empty box/],
    ["# only a comment\n\n", /s\.txt: split file is empty/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseClassificationSplit(text, "s.txt"), re);
});

Deno.test("cropImage takes [x1, x2) x [y1, y2) and rejects boxes outside the image", () => {
  const img = { width: 4, height: 3, data: Float32Array.from({ length: 12 }, (_, i) => i) };
  const c = cropImage(img, [1, 1, 3, 3]);
  assert.equal(c.width, 2);
  assert.equal(c.height, 2);
  assert.deepEqual(Array.from(c.data), [5, 6, 9, 10]);
  assert.throws(
    () => cropImage(img, [0, 0, 5, 3], "x.png"),
    /x\.png: crop box \[0, 0, 5, 3\] does not fit the 4x3 image/,
  );
});

Deno.test("synthetic classification set reads through split files and the folder layout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ssm_cls_" });
  await writeSyntheticDataset({ outDir: dir, nCls: 15, nSeg: 0, size: 96, seed: 4, workers: 0 });
  const root = join(dir, "cls");
  const all = await ClassificationDataset.fromSplitFile(join(root, "split.txt"), root);
  assert.equal(all.length, 15);
  assert.deepEqual(all.classCounts(), [5, 5, 5]);
  const folder = await ClassificationDataset.fromFolder(root);
  assert.equal(folder.length, 15);
  assert.deepEqual(
    [...folder.entries].map((e) => [e.file, e.label]).sort(),
    [...all.entries].map((e) => [e.file, e.label]).sort(),
  );
  // The class is the file-name prefix.
  for (const e of all.entries) assert.equal(Number(e.file.split("_")[0]), e.label);
  const train = await ClassificationDataset.fromSplitFile(join(root, "train.txt"), root);
  const test = await ClassificationDataset.fromSplitFile(join(root, "test.txt"), root);
  assert.equal(train.length + test.length, 15);
  assert.deepEqual(test.classCounts(), [1, 1, 1]);
  const trainFiles = new Set(train.entries.map((e) => e.file));
  for (const e of test.entries) assert.ok(!trainFiles.has(e.file), "train and test are disjoint");
  // Cropping to the body box, then resizing.
  const cropped = new ClassificationDataset(root, [...all.entries], { crop: true });
  const s = await cropped.get(0);
  const box = all.entries[0].box!;
  assert.equal(s.image.width, box[2] - box[0]);
  assert.equal(s.image.height, box[3] - box[1]);
  const full = await all.get(0);
  assert.equal(s.image.data[0], full.image.data[box[1] * 96 + box[0]]);
  // The body box is tight: the body lies inside, air (dark) outside.
  const rowMean = (y: number) => {
    let m = 0;
    for (let x = box[0]; x < box[2]; x++) m += full.image.data[y * 96 + x];
    return m / (box[2] - box[0]);
  };
  assert.ok(rowMean(box[1] + Math.floor((box[3] - box[1]) / 2)) > rowMean(box[1] - 1));
  const resized = await new ClassificationDataset(root, [...all.entries], { crop: true, size: 64 })
    .get(0);
  assert.equal(resized.image.width, 64);
  assert.equal(resized.image.height, 64);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("classification errors name the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ssm_cls_err_" });
  await assert.rejects(ClassificationDataset.fromFolder(dir), /no class-prefixed images/);
  await Deno.writeFile(
    join(dir, "7_a.png"),
    pngEncode({ width: 2, height: 2, data: new Uint8Array(4), depth: 8, channels: 1 }),
  );
  await assert.rejects(
    ClassificationDataset.fromFolder(dir),
    /7_a\.png: class prefix 7 is not in 0\.\.2/,
  );
  await Deno.writeTextFile(join(dir, "split.txt"), "");
  await assert.rejects(
    ClassificationDataset.fromSplitFile(join(dir, "split.txt"), dir),
    /split\.txt: split file is empty/,
  );
  await Deno.writeTextFile(join(dir, "split.txt"), "7_a.png 0 0 0 4 4\n");
  const ds = await ClassificationDataset.fromSplitFile(join(dir, "split.txt"), dir, { crop: true });
  await assert.rejects(ds.get(0), /7_a\.png: crop box \[0, 0, 4, 4\] does not fit the 2x2 image/);
  await Deno.remove(dir, { recursive: true });
});
