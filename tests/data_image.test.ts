import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import dicomParser from "dicom-parser";
import { encode as pngEncode } from "fast-png";
import { encode as jpegEncode } from "jpeg-js";
import {
  decodeImage,
  decodeLabelMap,
  detectFormat,
  grayToBytes,
  readImage,
  readLabelMap,
  toRGBData,
  writePng,
} from "../lib/data/mod.ts";
import { writeDicom } from "./assets/dicom_writer.ts";
import { jpegPattern } from "./assets/make_jpeg_assets.ts";

const ASSETS = fileURLToPath(new URL("./assets/", import.meta.url));

async function tmpDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "ssm_data_image_" });
}

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

Deno.test("8-bit grey PNG round-trips exactly through writePng and readImage", async () => {
  const dir = await tmpDir();
  const w = 37, h = 23;
  const bytes = randomBytes(w * h, 1);
  const p = join(dir, "g.png");
  await writePng(p, { width: w, height: h, channels: 1, data: bytes });
  const img = await readImage(p);
  assert.equal(img.width, w);
  assert.equal(img.height, h);
  for (let i = 0; i < w * h; i++) assert.equal(Math.round(img.data[i] * 255), bytes[i]);
  assert.deepEqual(grayToBytes(img).data, bytes);
  // No temporary file is left behind.
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["g.png"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("16-bit grey PNG decodes to value / 65535", () => {
  const w = 5, h = 4;
  const data = new Uint16Array(w * h).map((_, i) => i * 3000 + 7);
  const png = pngEncode({ width: w, height: h, data, depth: 16, channels: 1 });
  const img = decodeImage(png, "g16.png");
  for (let i = 0; i < w * h; i++) assert.ok(Math.abs(img.data[i] - data[i] / 65535) < 1e-7);
});

Deno.test("RGB and RGBA PNG decode to luma; grey stored as RGB stays exact", () => {
  const w = 3, h = 2;
  const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 10, 10, 200, 200, 200, 1, 2, 3]);
  const img = decodeImage(
    pngEncode({ width: w, height: h, data: rgb, depth: 8, channels: 3 }),
    "c",
  );
  const expected = [
    0.299,
    0.587,
    0.114,
    10 / 255,
    200 / 255,
    (0.299 + 0.587 * 2 + 0.114 * 3) / 255,
  ];
  expected.forEach((e, i) => assert.ok(Math.abs(img.data[i] - e) < 1e-6, `pixel ${i}`));
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) rgba.set([...rgb.subarray(3 * i, 3 * i + 3), 128], 4 * i);
  const img2 = decodeImage(
    pngEncode({ width: w, height: h, data: rgba, depth: 8, channels: 4 }),
    "c",
  );
  assert.deepEqual(img2.data, img.data);
});

Deno.test("palette PNG decodes to palette luma, and label maps read palette indices", async () => {
  const w = 4, h = 3;
  const idx = new Uint8Array([0, 1, 2, 3, 3, 2, 1, 0, 0, 0, 2, 2]);
  const palette = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]];
  const png = pngEncode({ width: w, height: h, data: idx, depth: 8, channels: 1, palette });
  const img = decodeImage(png, "pal.png");
  const lum = palette.map((c) => (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255);
  idx.forEach((k, i) => assert.ok(Math.abs(img.data[i] - lum[k]) < 1e-6));
  const labels = decodeLabelMap(png, "pal.png");
  assert.deepEqual(labels.data, idx);
  const dir = await tmpDir();
  await Deno.writeFile(join(dir, "m.png"), png);
  assert.deepEqual((await readLabelMap(join(dir, "m.png"))).data, idx);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sub-byte grey PNG (2-bit) unpacks per row", () => {
  const w = 5, h = 2; // 5 pixels * 2 bits = 10 bits -> 2 bytes per row
  const values = [0, 1, 2, 3, 1, 3, 2, 1, 0, 2];
  const packed = new Uint8Array(4);
  values.forEach((v, i) => {
    const y = Math.floor(i / w), x = i % w;
    packed[y * 2 + (x >> 2)] |= v << (6 - 2 * (x & 3));
  });
  const png = pngEncode({ width: w, height: h, data: packed, depth: 2, channels: 1 });
  const labels = decodeLabelMap(png, "m2.png");
  assert.deepEqual(Array.from(labels.data), values);
  const img = decodeImage(png, "m2.png");
  values.forEach((v, i) => assert.ok(Math.abs(img.data[i] - v / 3) < 1e-6));
});

Deno.test("baseline and progressive JPEG decode to the same pixels, close to the source", async () => {
  const base = await readImage(join(ASSETS, "baseline.jpg"));
  const prog = await readImage(join(ASSETS, "progressive.jpg"));
  const progBytes = await Deno.readFile(join(ASSETS, "progressive.jpg"));
  // The asset really is progressive (SOF2 marker) and the baseline one is not.
  const hasMarker = (b: Uint8Array, m: number) => b.some((v, i) => v === 0xff && b[i + 1] === m);
  assert.ok(hasMarker(progBytes, 0xc2));
  assert.ok(hasMarker(await Deno.readFile(join(ASSETS, "baseline.jpg")), 0xc0));
  assert.equal(prog.width, 48);
  assert.equal(prog.height, 40);
  // jpegtran keeps the DCT coefficients: the decodes are identical.
  assert.deepEqual(prog.data, base.data);
  let maxErr = 0;
  for (let y = 0; y < 40; y++) {
    for (let x = 0; x < 48; x++) {
      maxErr = Math.max(maxErr, Math.abs(prog.data[y * 48 + x] * 255 - jpegPattern(x, y)));
    }
  }
  assert.ok(maxErr < 12, `max error ${maxErr}`);
});

Deno.test("JPEG encoded by jpeg-js round-trips within quantisation error", () => {
  const w = 32, h = 24;
  const rgba = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) {
    const v = Math.round(255 * (i % w) / (w - 1));
    rgba.set([v, v, v, 255], 4 * i);
  }
  const jpg = new Uint8Array(jpegEncode({ width: w, height: h, data: rgba }, 100).data);
  assert.equal(detectFormat(jpg), "jpeg");
  const img = decodeImage(jpg, "x.jpg");
  for (let i = 0; i < w * h; i++) assert.ok(Math.abs(img.data[i] * 255 - rgba[4 * i]) <= 3);
});

Deno.test("readImage dispatches on magic bytes, not on the extension", async () => {
  const dir = await tmpDir();
  const png = pngEncode({
    width: 2,
    height: 1,
    data: new Uint8Array([0, 255]),
    depth: 8,
    channels: 1,
  });
  await Deno.writeFile(join(dir, "actually_png.jpg"), png);
  const img = await readImage(join(dir, "actually_png.jpg"));
  assert.deepEqual(Array.from(img.data), [0, 1]);
  await Deno.copyFile(join(ASSETS, "baseline.jpg"), join(dir, "actually_jpeg.png"));
  assert.equal((await readImage(join(dir, "actually_jpeg.png"))).width, 48);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("corrupt and unsupported files fail with the file name and the reason", async () => {
  const dir = await tmpDir();
  const png = pngEncode({
    width: 64,
    height: 64,
    data: randomBytes(64 * 64, 3),
    depth: 8,
    channels: 1,
  });
  const truncated = join(dir, "truncated.png");
  await Deno.writeFile(truncated, png.subarray(0, Math.floor(png.length / 2)));
  await assert.rejects(readImage(truncated), (e: Error) => {
    assert.match(e.message, /truncated\.png/);
    assert.match(e.message, /corrupt|truncated/i);
    return true;
  });
  const jpg = await Deno.readFile(join(ASSETS, "baseline.jpg"));
  const tj = join(dir, "cut.jpg");
  await Deno.writeFile(tj, jpg.subarray(0, 300));
  await assert.rejects(readImage(tj), /cut\.jpg: corrupt or unsupported JPEG/);
  const txt = join(dir, "notes.png");
  await Deno.writeTextFile(txt, "hello");
  await assert.rejects(readImage(txt), /notes\.png: unrecognised image format/);
  await assert.rejects(readImage(join(dir, "missing.png")), /missing\.png: cannot read file/);
  await Deno.writeFile(join(dir, "mask.jpg"), jpg);
  await assert.rejects(readLabelMap(join(dir, "mask.jpg")), /mask\.jpg: a mask must be a PNG/);
  const colour = pngEncode({
    width: 1,
    height: 1,
    data: new Uint8Array([1, 2, 3]),
    depth: 8,
    channels: 3,
  });
  assert.throws(
    () => decodeLabelMap(colour, "colour.png"),
    /colour\.png: colour mask pixel \(0,0\)/,
  );
  await Deno.remove(dir, { recursive: true });
});

/** Independent float64 reference of rescale + window. */
function windowed(v: number, slope: number, intercept: number, width: number, level: number) {
  const hu = v * slope + intercept;
  return Math.min(1, Math.max(0, (hu - (level - width / 2)) / width));
}

Deno.test("DICOM explicit VR LE 16-bit signed: rescale then lung window", async () => {
  const rows = 6, cols = 7;
  const pixels = Array.from({ length: rows * cols }, (_, i) => -1200 + i * 60);
  const bytes = writeDicom({ rows, cols, pixels, signed: true, slope: 1, intercept: -24 });
  // dicom-parser really parses what the test writer produced.
  const ds = dicomParser.parseDicom(bytes);
  assert.equal(ds.string("x00020010"), "1.2.840.10008.1.2.1");
  assert.equal(ds.uint16("x00280010"), rows);
  assert.equal(ds.uint16("x00280011"), cols);
  assert.equal(ds.elements.x7fe00010.length, rows * cols * 2);
  const dir = await tmpDir();
  const p = join(dir, "slice.dcm");
  await Deno.writeFile(p, bytes);
  const img = await readImage(p);
  assert.equal(img.width, cols);
  assert.equal(img.height, rows);
  pixels.forEach((v, i) => {
    assert.ok(Math.abs(img.data[i] - windowed(v, 1, -24, 1500, -600)) < 1e-6, `pixel ${i}`);
  });
  // A configurable window.
  const soft = await readImage(p, { dicom: { window: { width: 400, level: 40 } } });
  pixels.forEach((v, i) => assert.ok(Math.abs(soft.data[i] - windowed(v, 1, -24, 400, 40)) < 1e-6));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("DICOM implicit VR LE, big endian, unsigned with slope and MONOCHROME1", () => {
  const rows = 4, cols = 5;
  const pixels = Array.from({ length: rows * cols }, (_, i) => i * 150);
  for (
    const ts of ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"]
  ) {
    const bytes = writeDicom({
      rows,
      cols,
      pixels,
      slope: 0.5,
      intercept: -1024,
      transferSyntax: ts,
    });
    const img = decodeImage(bytes, `u_${ts}.dcm`);
    pixels.forEach((v, i) => {
      assert.ok(Math.abs(img.data[i] - windowed(v, 0.5, -1024, 1500, -600)) < 1e-6, `${ts} ${i}`);
    });
  }
  const m1 = decodeImage(
    writeDicom({ rows, cols, pixels, slope: 0.5, intercept: -1024, photometric: "MONOCHROME1" }),
    "m1.dcm",
  );
  pixels.forEach((v, i) => {
    assert.ok(Math.abs(m1.data[i] - (1 - windowed(v, 0.5, -1024, 1500, -600))) < 1e-6);
  });
  const b8 = decodeImage(
    writeDicom({
      rows,
      cols,
      pixels: pixels.map((v) => v % 256),
      bitsAllocated: 8,
      intercept: -1000,
    }),
    "b8.dcm",
  );
  pixels.forEach((v, i) => {
    assert.ok(Math.abs(b8.data[i] - windowed(v % 256, 1, -1000, 1500, -600)) < 1e-6);
  });
});

Deno.test("DICOM with a compressed transfer syntax fails naming the syntax", () => {
  const bytes = writeDicom({
    rows: 2,
    cols: 2,
    pixels: [0, 0, 0, 0],
    transferSyntax: "1.2.840.10008.1.2.4.90",
    encapsulated: true,
  });
  const ds = dicomParser.parseDicom(bytes);
  assert.equal(ds.string("x00020010"), "1.2.840.10008.1.2.4.90");
  assert.throws(
    () => decodeImage(bytes, "j2k.dcm"),
    /j2k\.dcm: compressed transfer syntax 1\.2\.840\.10008\.1\.2\.4\.90 \(JPEG 2000/,
  );
  const rle = writeDicom({
    rows: 2,
    cols: 2,
    pixels: [0, 0, 0, 0],
    transferSyntax: "1.2.840.10008.1.2.5",
    encapsulated: true,
  });
  assert.throws(() => decodeImage(rle, "rle.dcm"), /rle\.dcm: .*RLE Lossless/);
});

Deno.test("truncated DICOM fails with the file name", () => {
  const bytes = writeDicom({ rows: 16, cols: 16, pixels: new Array(256).fill(5) });
  assert.throws(() => decodeImage(bytes.subarray(0, bytes.length - 100), "cut.dcm"), /cut\.dcm: /);
  assert.throws(() => decodeImage(bytes.subarray(0, 200), "head.dcm"), /head\.dcm: /);
});

Deno.test("toRGBData replicates grey into NHWC channels and normalises", () => {
  const img = { width: 2, height: 1, data: new Float32Array([0.25, 1]) };
  assert.deepEqual(Array.from(toRGBData(img)), [0.25, 0.25, 0.25, 1, 1, 1]);
  const n = toRGBData(img, { mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] });
  const expected = [-0.5, 0, 0.125, 1, 3, 0.5];
  expected.forEach((e, i) => assert.ok(Math.abs(n[i] - e) < 1e-6));
});
