import assert from "node:assert/strict";
import { join } from "node:path";
import { decode as pngDecode } from "fast-png";
import {
  assignClasses,
  connectedComponents,
  ensureSyntheticData,
  renderSlice,
  resizeNearest,
  sampleGrid,
  synthesizeCT,
  writeSyntheticDataset,
} from "../lib/data/mod.ts";
import { main as synthMain } from "../lib/cli/data_synth.ts";

async function listAll(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listAll(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

Deno.test("same seed gives byte-identical files, whatever the number of workers", async () => {
  const a = await Deno.makeTempDir({ prefix: "ssm_synth_a_" });
  const b = await Deno.makeTempDir({ prefix: "ssm_synth_b_" });
  const c = await Deno.makeTempDir({ prefix: "ssm_synth_c_" });
  const opts = { nCls: 9, nSeg: 5, size: 64, seed: 42 };
  await writeSyntheticDataset({ ...opts, outDir: a, workers: 0 });
  await writeSyntheticDataset({ ...opts, outDir: b, workers: 2 });
  await writeSyntheticDataset({ ...opts, seed: 43, outDir: c, workers: 0 });
  const files = await listAll(a);
  assert.deepEqual(await listAll(b), files);
  assert.equal(files.filter((f) => f.startsWith("cls/") && f.endsWith(".png")).length, 9);
  assert.equal(files.filter((f) => f.startsWith("seg/images/")).length, 5);
  assert.equal(files.filter((f) => f.startsWith("seg/masks/")).length, 5);
  for (
    const f of [
      "cls/split.txt",
      "cls/train.txt",
      "cls/test.txt",
      "seg/train.txt",
      "seg/test.txt",
      "meta.json",
    ]
  ) {
    assert.ok(files.includes(f), f);
  }
  assert.ok(!files.some((f) => f.endsWith(".tmp")), "no temporary files left");
  for (const f of files) {
    assert.deepEqual(await Deno.readFile(join(b, f)), await Deno.readFile(join(a, f)), f);
  }
  // Another seed changes the pixels.
  const slice = files.find((f) => f.startsWith("seg/images/"))!;
  assert.notDeepEqual(await Deno.readFile(join(c, slice)), await Deno.readFile(join(a, slice)));
  // In-memory generation is deterministic too.
  assert.deepEqual(renderSlice(7, 64, 2).image, renderSlice(7, 64, 2).image);
  for (const d of [a, b, c]) await Deno.remove(d, { recursive: true });
});

Deno.test("class balance is met exactly (largest remainder) and the split is stratified", async () => {
  const classes = assignClasses(10, [1, 1, 1], 5);
  assert.deepEqual([0, 1, 2].map((k) => classes.filter((c) => c === k).length), [4, 3, 3]);
  assert.deepEqual(
    [0, 1, 2].map((k) => assignClasses(20, [0.2, 0.4, 0.4], 1).filter((c) => c === k).length),
    [4, 8, 8],
  );
  assert.throws(() => assignClasses(3, [0, 0, 0]), /classBalance/);
  const s = synthesizeCT({ seed: 3, size: 48, n: 6, classBalance: [0, 0, 1] });
  assert.ok(s.every((x) => x.classId === 2));
  // Held-out division: round(0.2 * n) per set, proportional to the classes, disjoint from train.
  const dir = await Deno.makeTempDir({ prefix: "ssm_split_" });
  await writeSyntheticDataset({ outDir: dir, nCls: 30, nSeg: 20, size: 48, seed: 8, workers: 0 });
  const read = async (f: string) => (await Deno.readTextFile(join(dir, f))).trim().split("\n");
  const clsTest = await read("cls/test.txt"), clsTrain = await read("cls/train.txt");
  assert.equal(clsTest.length, 6);
  assert.equal(clsTrain.length, 24);
  assert.deepEqual(
    [0, 1, 2].map((k) => clsTest.filter((l) => l.split(" ")[1] === String(k)).length),
    [2, 2, 2],
  );
  const segTest = await read("seg/test.txt"), segTrain = await read("seg/train.txt");
  assert.equal(segTest.length, 4);
  assert.equal(new Set([...segTest, ...segTrain]).size, 20);
  const meta = JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
  // segBalance [0.2, 0.4, 0.4] of 20 = 4/8/8, so the 4 test slices are 1/2/1 or 0/2/2 ... never 3+ of one.
  const perClass = [0, 1, 2].map((k) => segTest.filter((n) => meta.segClasses[n] === k).length);
  assert.ok(Math.max(...perClass) <= 2, `seg test classes ${perClass}`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lesions depend on the class as specified", () => {
  const slices = synthesizeCT({ seed: 5, size: 128, n: 60 });
  let cp = 0, oneSided = 0;
  for (const s of slices) {
    const lesionPx = s.labels.filter((l) => l >= 2).length;
    const lungPx = s.labels.filter((l) => l >= 1).length;
    const cons = s.labels.filter((l) => l === 3).length;
    const ggo = s.labels.filter((l) => l === 2).length;
    const mid = s.size / 2;
    let left = 0, right = 0;
    s.labels.forEach((l, p) => {
      if (l >= 2) p % s.size < mid ? left++ : right++;
    });
    if (s.classId === 0) {
      assert.equal(lesionPx, 0, "Control: no lesion");
      assert.equal(s.lesions.length, 0);
    } else if (s.classId === 1) {
      // Common Pneumonia: consolidation dominates, mostly in one lung.
      assert.ok(cons > 2 * ggo, `CP consolidation ${cons} vs GGO ${ggo}`);
      assert.ok(cons > 0.05 * lungPx, `CP consolidation ${cons} of lung ${lungPx}`);
      if (Math.max(left, right) >= 0.7 * lesionPx) oneSided++;
      cp++;
    } else {
      // COVID-19: bilateral ground glass, consolidation at most a minor part.
      assert.ok(left > 0 && right > 0, `COVID bilateral: ${left}/${right}`);
      assert.ok(ggo > cons, `COVID GGO ${ggo} vs consolidation ${cons}`);
      assert.ok(s.lesions.some((l) => l.kind === "ggo" && l.lung === 0));
      assert.ok(s.lesions.some((l) => l.kind === "ggo" && l.lung === 1));
    }
    // Lesions are visible: brighter than the surrounding lung on average.
    if (s.classId > 0) {
      let lungMean = 0, lesMean = 0, nl = 0, ns = 0;
      s.labels.forEach((l, p) => {
        if (l === 1) (lungMean += s.image[p], nl++);
        if (l >= 2) (lesMean += s.image[p], ns++);
      });
      assert.ok(
        lesMean / ns > lungMean / nl + 25,
        `lesion contrast ${lesMean / ns} vs ${lungMean / nl}`,
      );
    }
  }
});

Deno.test("a simple classifier learns the class from lung intensities (held-out seed)", () => {
  // Nearest centroid on two image features measured inside the lung region (labels >= 1, what a
  // lung segmentation gives; lesion labels are not used): after a 5x5 mean filter, the fractions
  // of interior lung pixels in the ground-glass range [110, 200) and the dense range [200, 255].
  const feats = (s: { image: Uint8Array; labels: Uint8Array; size: number }) => {
    const S = s.size, r = 2;
    let n = 0, mid = 0, hi = 0;
    for (let y = r; y < S - r; y++) {
      for (let x = r; x < S - r; x++) {
        let inside = true, sum = 0;
        for (let dy = -r; dy <= r && inside; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const q = (y + dy) * S + x + dx;
            if (s.labels[q] < 1) {
              inside = false;
              break;
            }
            sum += s.image[q];
          }
        }
        if (!inside) continue;
        const m = sum / 25;
        n++;
        if (m >= 200) hi++;
        else if (m >= 110) mid++;
      }
    }
    return [mid / n, hi / n];
  };
  const train = synthesizeCT({ seed: 101, size: 128, n: 45 });
  const test = synthesizeCT({ seed: 202, size: 128, n: 45 });
  const centroids = [0, 1, 2].map((c) => {
    const fs = train.filter((s) => s.classId === c).map(feats);
    return fs[0].map((_, k) => fs.reduce((a, f) => a + f[k], 0) / fs.length);
  });
  let correct = 0;
  for (const s of test) {
    const f = feats(s);
    const d = centroids.map((c) => c.reduce((a, v, k) => a + (v - f[k]) ** 2, 0));
    if (d.indexOf(Math.min(...d)) === s.classId) correct++;
  }
  assert.ok(correct / test.length >= 0.85, `accuracy ${correct}/${test.length}`);
});

Deno.test("most lesion components exceed 100 px at a 128 px model size", () => {
  const size = 256;
  const slices = synthesizeCT({ seed: 9, size, n: 30, classBalance: [0, 1, 1] });
  let big = 0, all = 0;
  for (const s of slices) {
    const m = resizeNearest(s.labels, size, size, 128, 128).map((v) => (v >= 2 ? 1 : 0));
    for (const c of connectedComponents(m, 128, 128).components) {
      all++;
      if (c.area > 100) big++;
    }
  }
  assert.ok(all >= 30);
  assert.ok(big / all >= 0.85, `${big}/${all} components > 100 px`);
});

Deno.test("ensureSyntheticData generates once, atomically, then reuses the cache", async () => {
  const root = await Deno.makeTempDir({ prefix: "ssm_cache_" });
  const cacheDir = join(root, "synth");
  const dir = await ensureSyntheticData({ cacheDir, nCls: 3, nSeg: 2, size: 48, seed: 1 });
  assert.equal(dir, cacheDir);
  assert.deepEqual(
    [...Deno.readDirSync(root)].map((e) => e.name),
    ["synth"],
    "no temp folder left",
  );
  const before = Deno.statSync(join(dir, "meta.json")).mtime;
  const again = await ensureSyntheticData({ cacheDir, nCls: 3, nSeg: 2, size: 48, seed: 1 });
  assert.equal(again, dir);
  assert.deepEqual(Deno.statSync(join(dir, "meta.json")).mtime, before);
  // A failing generation leaves nothing behind.
  await assert.rejects(ensureSyntheticData({ cacheDir: join(root, "bad"), nCls: -1 }), /nCls/);
  assert.deepEqual([...Deno.readDirSync(root)].map((e) => e.name), ["synth"]);
  await Deno.remove(root, { recursive: true });
});

Deno.test("data:synth CLI writes the dataset and the grid; bad flags fail", async () => {
  const root = await Deno.makeTempDir({ prefix: "ssm_cli_" });
  const log = console.log, err = console.error;
  const lines: string[] = [];
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  console.error = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    assert.equal(await synthMain(["--help"]), 0);
    assert.match(lines.join("\n"), /--n-seg/);
    const out = join(root, "out"), grid = join(root, "grid.png");
    const code = await synthMain([
      "--out",
      out,
      "--n",
      "6",
      "--n-seg",
      "3",
      "--size",
      "64",
      "--seed",
      "2",
      "--grid",
      grid,
    ]);
    assert.equal(code, 0, lines.join("\n"));
    const split = (await Deno.readTextFile(join(out, "cls", "split.txt"))).trim().split("\n");
    assert.equal(split.length, 6);
    assert.equal(
      (await Deno.readTextFile(join(out, "seg", "train.txt"))).trim().split("\n").length +
        (await Deno.readTextFile(join(out, "seg", "test.txt"))).trim().split("\n").length,
      3,
    );
    const png = pngDecode(await Deno.readFile(grid));
    assert.equal(png.channels, 3);
    assert.equal(await synthMain(["--bogus"]), 2);
    assert.equal(await synthMain(["--out", out, "--size", "abc"]), 1);
    assert.equal(await synthMain(["--n", "5"]), 1);
  } finally {
    console.log = log;
    console.error = err;
  }
  await Deno.remove(root, { recursive: true });
});

Deno.test("sample grid: rows are classes; outlines only on lesion rows", () => {
  const size = 64, perClass = 3, gap = 4;
  const g = sampleGrid({ seed: 1, size, perClass });
  assert.equal(g.width, perClass * size + (perClass + 1) * gap);
  assert.equal(g.height, 3 * size + 4 * gap);
  const colouredInRow = (row: number) => {
    let n = 0;
    for (let y = gap + row * (size + gap); y < gap + row * (size + gap) + size; y++) {
      for (let x = 0; x < g.width; x++) {
        const o = (y * g.width + x) * 3;
        if (g.data[o] !== g.data[o + 1] || g.data[o + 1] !== g.data[o + 2]) n++;
      }
    }
    return n;
  };
  assert.equal(colouredInRow(0), 0);
  assert.ok(colouredInRow(1) > 0);
  assert.ok(colouredInRow(2) > 0);
});
