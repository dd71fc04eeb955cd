import assert from "node:assert/strict";
import { join } from "node:path";
import { encode as pngEncode } from "fast-png";
import {
  CNCB_LABELS,
  MEDSEG_LABELS,
  readLabelMap,
  SegmentationDataset,
  STREAM_SEG,
  synthesizeCT,
  writeSyntheticDataset,
} from "../lib/data/mod.ts";
import { sharedDataDir } from "./_util.ts";

/** Independent reference: 8-connected components by BFS, area > minArea, exclusive-max boxes. */
function bfsComponents(lesion: Uint8Array, w: number, h: number, minArea: number) {
  const seen = new Uint8Array(w * h);
  const out: { box: number[]; area: number; pixels: number[] }[] = [];
  for (let s = 0; s < w * h; s++) {
    if (!lesion[s] || seen[s]) continue;
    const queue = [s];
    seen[s] = 1;
    const pixels: number[] = [];
    for (let qi = 0; qi < queue.length; qi++) {
      const p = queue[qi];
      pixels.push(p);
      const x = p % w, y = (p - x) / w;
      for (
        const [dx, dy] of [[-1, -1], [0, -1], [1, -1], [-1, 0], [1, 0], [-1, 1], [0, 1], [1, 1]]
      ) {
        const xx = x + dx, yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
        const q = yy * w + xx;
        if (lesion[q] && !seen[q]) {
          seen[q] = 1;
          queue.push(q);
        }
      }
    }
    if (pixels.length <= minArea) continue;
    const xs = pixels.map((p) => p % w), ys = pixels.map((p) => Math.floor(p / w));
    out.push({
      box: [Math.min(...xs), Math.min(...ys), Math.max(...xs) + 1, Math.max(...ys) + 1],
      area: pixels.length,
      pixels: pixels.sort((a, b) => a - b),
    });
  }
  return out;
}

/** Independent reference of nearest-neighbour resize (PyTorch mode="nearest"). */
function nearest(src: Uint8Array, w0: number, h0: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      out[y * w + x] = src[Math.floor((y * h0) / h) * w0 + Math.floor((x * w0) / w)];
    }
  }
  return out;
}

function lesionOf(labels: Uint8Array, lesionLabels: number[]): Uint8Array {
  return labels.map((v) => (lesionLabels.includes(v) ? 1 : 0));
}

type Inst = { box: number[]; area: number; mask: Uint8Array; label: number };

function assertSameInstances(got: Inst[], want: ReturnType<typeof bfsComponents>, what: string) {
  const key = (b: number[]) => b.join(",");
  const g = [...got].sort((a, b) => key(a.box).localeCompare(key(b.box)));
  const e = [...want].sort((a, b) => key(a.box).localeCompare(key(b.box)));
  assert.equal(g.length, e.length, `${what}: instance count`);
  for (let i = 0; i < g.length; i++) {
    assert.deepEqual(g[i].box, e[i].box, `${what}: box ${i}`);
    assert.equal(g[i].area, e[i].area, `${what}: area ${i}`);
    assert.equal(g[i].label, 1);
    const px: number[] = [];
    g[i].mask.forEach((v, p) => v && px.push(p));
    assert.deepEqual(px, e[i].pixels, `${what}: mask ${i}`);
  }
}

Deno.test("segmentation reader recovers exactly the lesions the generator drew", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ssm_seg_" });
  const size = 160, seed = 11, nSeg = 10;
  await writeSyntheticDataset({ outDir: dir, nCls: 0, nSeg, size, seed, workers: 0 });
  const drawn = synthesizeCT({
    seed,
    size,
    n: nSeg,
    stream: STREAM_SEG,
    classBalance: [0.2, 0.4, 0.4],
  });
  const meta = JSON.parse(await Deno.readTextFile(join(dir, "meta.json")));
  const native = await SegmentationDataset.open({
    imagesDir: join(dir, "seg", "images"),
    masksDir: join(dir, "seg", "masks"),
    ...CNCB_LABELS,
  });
  const at96 = await SegmentationDataset.open({
    imagesDir: join(dir, "seg", "images"),
    masksDir: join(dir, "seg", "masks"),
    ...CNCB_LABELS,
    size: 96,
    minArea: 20,
  });
  assert.equal(native.length, nSeg);
  let withLesions = 0, without = 0;
  for (let i = 0; i < nSeg; i++) {
    const s = await native.get(i);
    const d = drawn[i];
    assert.equal(meta.segClasses[s.name], d.classId);
    // The files hold exactly what the generator rendered.
    assert.deepEqual((await readLabelMap(s.maskPath)).data, d.labels);
    s.image.data.forEach((v, p) => assert.equal(Math.round(v * 255), d.image[p]));
    const want = bfsComponents(lesionOf(d.labels, [2, 3]), size, size, 100);
    assertSameInstances(s.instances, want, `${s.name} native`);
    assert.equal(s.hasLesions, want.length > 0);
    if (d.classId === 0) assert.equal(s.instances.length, 0, "controls have no lesions");
    else assert.ok(d.lesions.length > 0);
    if (s.hasLesions) withLesions++;
    else without++;
    // At the model size, components are measured after a nearest-neighbour resize of the mask.
    const r = await at96.get(i);
    assert.equal(r.image.width, 96);
    assert.equal(r.image.height, 96);
    assert.deepEqual(r.originalSize, { width: size, height: size });
    const small = nearest(d.labels, size, size, 96, 96);
    assertSameInstances(
      r.instances,
      bfsComponents(lesionOf(small, [2, 3]), 96, 96, 20),
      `${s.name} 96`,
    );
  }
  assert.ok(withLesions > 0 && without > 0, `${withLesions} with, ${without} without lesions`);
  await Deno.remove(dir, { recursive: true });
});

async function makeSet(
  files: Record<string, { img?: [number, number]; mask?: Uint8Array; mw?: number; mh?: number }>,
) {
  const dir = await Deno.makeTempDir({ prefix: "ssm_seg_err_" });
  await Deno.mkdir(join(dir, "images"));
  await Deno.mkdir(join(dir, "masks"));
  for (const [stem, f] of Object.entries(files)) {
    if (f.img) {
      const [w, h] = f.img;
      const png = pngEncode({
        width: w,
        height: h,
        data: new Uint8Array(w * h).fill(90),
        depth: 8,
        channels: 1,
      });
      await Deno.writeFile(join(dir, "images", `${stem}.png`), png);
    }
    if (f.mask) {
      const w = f.mw ?? f.img![0], h = f.mh ?? f.img![1];
      await Deno.writeFile(
        join(dir, "masks", `${stem}.png`),
        pngEncode({ width: w, height: h, data: f.mask, depth: 8, channels: 1 }),
      );
    }
  }
  return dir;
}

Deno.test("bad segmentation input fails with the file and the problem", async () => {
  const ok = new Uint8Array(16 * 16);
  // Mask of another size.
  let dir = await makeSet({ a: { img: [16, 16], mask: new Uint8Array(8 * 16), mw: 8, mh: 16 } });
  let ds = await SegmentationDataset.open({
    imagesDir: join(dir, "images"),
    masksDir: join(dir, "masks"),
    ...CNCB_LABELS,
  });
  await assert.rejects(ds.get(0), /masks\/a\.png: mask is 8x16 but slice .*a\.png is 16x16/);
  await Deno.remove(dir, { recursive: true });
  // Unknown label (4 in a CNCB mask; 3 in a MedSeg mask).
  const bad = ok.slice();
  bad[5 * 16 + 3] = 4;
  dir = await makeSet({ a: { img: [16, 16], mask: bad } });
  ds = await SegmentationDataset.open({
    imagesDir: join(dir, "images"),
    masksDir: join(dir, "masks"),
    ...CNCB_LABELS,
  });
  await assert.rejects(ds.get(0), /a\.png: unknown label 4 at pixel \(3,5\)/);
  const three = ok.slice();
  three[0] = 3;
  await Deno.writeFile(
    join(dir, "masks", "a.png"),
    pngEncode({ width: 16, height: 16, data: three, depth: 8, channels: 1 }),
  );
  ds = await SegmentationDataset.open({
    imagesDir: join(dir, "images"),
    masksDir: join(dir, "masks"),
    ...MEDSEG_LABELS,
  });
  await assert.rejects(ds.get(0), /unknown label 3 .*known labels are \[0, 1, 2\]/);
  await Deno.remove(dir, { recursive: true });
  // Missing mask.
  dir = await makeSet({ a: { img: [16, 16], mask: ok }, b: { img: [16, 16] } });
  await assert.rejects(
    SegmentationDataset.open({
      imagesDir: join(dir, "images"),
      masksDir: join(dir, "masks"),
      ...CNCB_LABELS,
    }),
    /images\/b\.png: no mask with stem 'b'/,
  );
  // Empty split file, and a split naming a slice that does not exist.
  await Deno.writeTextFile(join(dir, "empty.txt"), "\n  \n# nothing\n");
  await assert.rejects(
    SegmentationDataset.open({
      imagesDir: join(dir, "images"),
      masksDir: join(dir, "masks"),
      ...CNCB_LABELS,
      splitFile: join(dir, "empty.txt"),
    }),
    /empty\.txt: split file is empty/,
  );
  await Deno.writeTextFile(join(dir, "split.txt"), "a\nzzz\n");
  await assert.rejects(
    SegmentationDataset.open({
      imagesDir: join(dir, "images"),
      masksDir: join(dir, "masks"),
      ...CNCB_LABELS,
      splitFile: join(dir, "split.txt"),
    }),
    /split\.txt: 'zzz' is not a slice/,
  );
  // A split file selects (and orders) slices; names may carry an extension.
  await Deno.writeTextFile(join(dir, "split.txt"), "a.png\n");
  ds = await SegmentationDataset.open({
    imagesDir: join(dir, "images"),
    masksDir: join(dir, "masks"),
    ...CNCB_LABELS,
    splitFile: join(dir, "split.txt"),
  });
  assert.deepEqual(ds.items.map((i) => i.name), ["a"]);
  const s = await ds.get(0);
  assert.equal(s.hasLesions, false);
  assert.equal(s.instances.length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("minArea keeps only components strictly larger than it", async () => {
  const w = 30, h = 20;
  const mask = new Uint8Array(w * h);
  // A 10x10 block of label 2 (area 100) and a 10x11 block of label 3 (area 110).
  for (let y = 2; y < 12; y++) for (let x = 1; x < 11; x++) mask[y * w + x] = 2;
  for (let y = 2; y < 13; y++) for (let x = 15; x < 25; x++) mask[y * w + x] = 3;
  mask[0] = 1; // lung label: not a lesion
  const dir = await makeSet({ s: { img: [w, h], mask } });
  const open = (minArea: number) =>
    SegmentationDataset.open({
      imagesDir: join(dir, "images"),
      masksDir: join(dir, "masks"),
      ...CNCB_LABELS,
      minArea,
    });
  const a = await (await open(100)).get(0);
  assert.deepEqual(a.instances.map((i) => [i.box, i.area]), [[[15, 2, 25, 13], 110]]);
  const b = await (await open(99)).get(0);
  assert.deepEqual(b.instances.map((i) => [i.box, i.area]), [[[1, 2, 11, 12], 100], [[
    15,
    2,
    25,
    13,
  ], 110]]);
  await Deno.remove(dir, { recursive: true });
});

const shared = sharedDataDir();
const medseg = shared ? join(shared, "medseg-covid-ct-train") : null;
let medsegPresent = false;
try {
  medsegPresent = !!medseg && Deno.statSync(medseg).isDirectory;
} catch { /* absent */ }

Deno.test({
  name: "real MedSeg slices: all 50 load, lesion labels 1 and 2, instances match a BFS",
  ignore: !medsegPresent,
  async fn() {
    const cfg = {
      imagesDir: join(medseg!, "images"),
      masksDir: join(medseg!, "masks"),
      ...MEDSEG_LABELS,
    };
    const ds = await SegmentationDataset.open(cfg);
    const ds128 = await SegmentationDataset.open({ ...cfg, size: 128, minArea: 10 });
    assert.equal(ds.length, 50);
    const seen = new Set<number>();
    let total = 0, slicesWithLesions = 0;
    for (let i = 0; i < ds.length; i++) {
      const s = await ds.get(i);
      const labels = (await readLabelMap(s.maskPath)).data;
      labels.forEach((v) => seen.add(v));
      const { width: w, height: h } = s.image;
      const want = bfsComponents(lesionOf(labels, [1, 2]), w, h, 100);
      assertSameInstances(s.instances, want, s.name);
      total += s.instances.length;
      if (s.hasLesions) slicesWithLesions++;
      const r = await ds128.get(i);
      const small = nearest(labels, w, h, 128, 128);
      assert.equal(
        r.instances.length,
        bfsComponents(lesionOf(small, [1, 2]), 128, 128, 10).length,
        `${s.name} @128`,
      );
    }
    assert.deepEqual([...seen].sort(), [0, 1, 2]);
    assert.ok(slicesWithLesions >= 40, `${slicesWithLesions} slices with lesions`);
    console.log(
      `MedSeg: ${total} instances (area > 100 px, native size) in ${slicesWithLesions}/50 slices`,
    );
  },
});
