// `deno task predict`: outputs on a synthetic slice with a small random model, on the SSM fixture,
// on a real slice; refusal without a checkpoint; checkpoint configuration handling.
import assert from "node:assert/strict";
import { join } from "node:path";
import { decode as decodePng } from "fast-png";
import { initBackend } from "../lib/backend/mod.ts";
import { buildSSM } from "../lib/ssm.ts";
import type { SSMConfigInput } from "../lib/config.ts";
import { readCheckpoint, saveWeights, SSM_CONFIG_KEY } from "../lib/nn/weights.ts";
import { readImage, writePng } from "../lib/data/image.ts";
import { renderSlice } from "../lib/data/synthetic.ts";
import { rleDecode, rleFrString } from "../lib/metrics/rle.ts";
import {
  type CliIo,
  inferConfigFromStateDict,
  loadModelFromCheckpoint,
  ProgressBar,
} from "../lib/cli/common.ts";
import { NO_CHECKPOINT_MESSAGE, type PredictionJson, predictMain } from "../lib/cli/predict.ts";
import { fixture, sharedDataDir } from "./_util.ts";

await initBackend("wasm");

function captureIo(): CliIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (s) => lines.push(s), err: (s) => lines.push(s), errIsTTY: false };
}

/** A small model (narrow FPN and heads) that detects something with random weights. */
const SMALL: SSMConfigInput = {
  backbone: { depth: 18, stages: 2, fpnChannels: 32 },
  transform: { minSize: 128, maxSize: 256 },
  roiHeads: { representationSize: 32, maskHeadChannels: 16, scoreThresh: 0, detectionsPerImage: 6 },
  rpn: { preNmsTopN: 300, postNmsTopN: 100 },
  s: { representationSize: 32 },
  seed: 3,
};

function smallCheckpoint(dir: string): string {
  const model = buildSSM(SMALL);
  const path = join(dir, "small.safetensors");
  saveWeights(model, path, { [SSM_CONFIG_KEY]: JSON.stringify(model.config) });
  model.dispose();
  return path;
}

function readJson(path: string): PredictionJson {
  return JSON.parse(Deno.readTextFileSync(path));
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** Checks a prediction's JSON and overlay against each other and the input image. */
async function checkOutputs(outDir: string, stem: string, imagePath: string) {
  const json = readJson(join(outDir, `${stem}.json`));
  const img = await readImage(imagePath);
  const { width: W, height: H } = img;
  assert.deepEqual([json.width, json.height], [W, H]);
  const probs = softmax(json.classLogits);
  probs.forEach((p, k) => assert.ok(Math.abs(p - json.classProbs[k]) < 1e-5));
  assert.equal(json.classIndex, json.classLogits.indexOf(Math.max(...json.classLogits)));
  assert.equal(json.class, json.classNames[json.classIndex]);
  const union = new Uint8Array(W * H);
  for (const d of json.detections) {
    assert.deepEqual(d.maskRLE.size, [H, W]);
    const mask = rleDecode(rleFrString(d.maskRLE.counts as string, H, W));
    let area = 0;
    mask.forEach((v, i) => {
      if (v) {
        area++;
        union[i] = 1;
      }
    });
    assert.equal(area, d.area, "RLE area = reported area");
    const [x1, y1, x2, y2] = d.box;
    assert.ok(0 <= x1 && x1 <= x2 && x2 <= W && 0 <= y1 && y1 <= y2 && y2 <= H, `box ${d.box}`);
  }
  const png = decodePng(Deno.readFileSync(join(outDir, `${stem}.png`)));
  assert.ok(png.width >= W, "the slice at the top-left, 1:1");
  assert.ok(png.height > H, "class-probability panel below the slice");
  const ch = png.channels, p = png.data as Uint8Array, PW = png.width;
  // Pixels away from every box (outline 2 px, labels above) keep the slice's grey exactly;
  // every mask pixel is coloured.
  const nearBox = new Uint8Array(W * H);
  for (const d of json.detections) {
    const [x1, y1, x2, y2] = d.box;
    for (let y = Math.max(0, Math.floor(y1) - 24); y <= Math.min(H - 1, Math.ceil(y2) + 2); y++) {
      for (let x = Math.max(0, Math.floor(x1) - 2); x <= Math.min(W - 1, Math.ceil(x2) + 60); x++) {
        nearBox[y * W + x] = 1;
      }
    }
  }
  let maskPx = 0, coloured = 0, checkedGrey = 0;
  for (let i = 0; i < W * H; i++) {
    const o = (Math.floor(i / W) * PW + (i % W)) * ch;
    const r = p[o], g = p[o + 1], b = p[o + 2];
    if (union[i]) {
      maskPx++;
      if (!(r === g && g === b)) coloured++;
    } else if (!nearBox[i]) {
      const want = Math.min(255, Math.max(0, Math.round(img.data[i] * 255)));
      assert.deepEqual([r, g, b], [want, want, want], `pixel ${i % W},${Math.floor(i / W)}`);
      checkedGrey++;
    }
  }
  assert.equal(coloured, maskPx, "every mask pixel is coloured");
  return { json, maskPx, checkedGrey };
}

Deno.test("predict refuses to run without --checkpoint and says how to get one", async () => {
  const io = captureIo();
  assert.equal(await predictMain(["--out", "/tmp/never", "x.png"], io), 2);
  const text = io.lines.join("\n");
  assert.equal(text, NO_CHECKPOINT_MESSAGE);
  assert.match(text, /--checkpoint/);
  assert.match(text, /deno task train/);
  assert.match(text, /deno task reproduce/);
});

Deno.test("predict: usage errors exit 2 and name the flag", async () => {
  const io = captureIo();
  assert.equal(await predictMain(["--checkpoint", "c", "--depth", "20", "a.png"], io), 2);
  assert.match(io.lines[0], /--depth must be 18 or 34 or 50, got '20'/);
  const io2 = captureIo();
  assert.equal(await predictMain(["--checkpoint", "c", "--bogus", "a.png"], io2), 2);
  const io3 = captureIo();
  assert.equal(await predictMain(["--checkpoint", "c"], io3), 2);
  assert.match(io3.lines[0], /no input images/);
});

Deno.test("predict on a synthetic slice: overlay and JSON agree; bad files are named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ckpt = smallCheckpoint(dir);
    const inDir = join(dir, "in");
    Deno.mkdirSync(inDir);
    const slice = renderSlice(11, 128, 2);
    await writePng(join(inDir, "covid_1.png"), {
      width: 128,
      height: 128,
      channels: 1,
      data: slice.image,
    });
    Deno.writeTextFileSync(join(inDir, "broken.png"), "not a png");
    const out = join(dir, "out");
    const io = captureIo();
    const code = await predictMain(
      ["--backend", "wasm", "--checkpoint", ckpt, "--out", out, "--max-labels", "0", inDir],
      io,
    );
    const log = io.lines.join("\n");
    assert.equal(code, 1, log);
    assert.match(log, /error: .*broken\.png: .*PNG/);
    assert.match(log, /1 of 2 slice\(s\) failed/);
    assert.match(log, /config from the checkpoint's ssm_config metadata/);
    assert.ok(!Deno.statSync(join(out, "covid_1.json")).isDirectory);
    const { json, maskPx, checkedGrey } = await checkOutputs(
      out,
      "covid_1",
      join(inDir, "covid_1.png"),
    );
    assert.ok(json.detections.length > 0 && json.detections.length <= 6);
    assert.ok(maskPx > 0, "the random model's masks cover some pixels");
    assert.ok(checkedGrey > 1000);
    assert.deepEqual(
      [...Deno.readDirSync(out)].map((e) => e.name).sort(),
      ["covid_1.json", "covid_1.png"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpoint config: tensor-name inference, overrides, errors name the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const single = buildSSM({ ...SMALL, variant: "single" });
    const path = join(dir, "converted.safetensors");
    saveWeights(single, path); // no toolkit config, as for a converted .pth
    single.dispose();
    const inferred = inferConfigFromStateDict(readCheckpoint(path).stateDict);
    assert.deepEqual(inferred, {
      backbone: { depth: 18, stages: 2, fpnChannels: 32 },
      variant: "single",
      roiHeads: { representationSize: 32, numClasses: 2, maskHeadChannels: 16 },
      s: { representationSize: 32, boxDetections: 128, numImageClasses: 3 },
    });
    const loaded = loadModelFromCheckpoint(path, { minSize: 96 });
    assert.match(loaded.configSource, /paper's configuration/);
    assert.equal(loaded.config.variant, "single");
    assert.equal(loaded.config.transform.minSize, 96);
    assert.equal(loaded.config.rpn.postNmsTopN, 1000, "unknown fields: the paper's values");
    loaded.model.dispose();
    assert.throws(
      () => loadModelFromCheckpoint(path, { variant: "parallel" }),
      (e: Error) =>
        e.message.includes(path) && /missing key\(s\): roi_heads\.box_head_s2/.test(e.message) &&
        /--depth \/ --stages \/ --variant/.test(e.message),
    );
    assert.throws(() => loadModelFromCheckpoint(join(dir, "nope")), /nope: no such file/);
    Deno.mkdirSync(join(dir, "empty"));
    assert.throws(
      () => loadModelFromCheckpoint(join(dir, "empty")),
      /empty: a folder without model\.safetensors/,
    );
    // A run folder with a `latest` pointer resolves to its model.safetensors.
    Deno.mkdirSync(join(dir, "run", "step-1"), { recursive: true });
    Deno.copyFileSync(path, join(dir, "run", "step-1", "model.safetensors"));
    Deno.writeTextFileSync(join(dir, "run", "latest"), "step-1\n");
    const viaLatest = loadModelFromCheckpoint(join(dir, "run"));
    assert.equal(viaLatest.weightsPath, join(dir, "run", "step-1", "model.safetensors"));
    viaLatest.model.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const fixtureDir = fixture("ssm");

Deno.test({
  name: "predict on the SSM fixture: 75 detections, class 1, S logits and mask union",
  ignore: !fixtureDir,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const expected = JSON.parse(Deno.readTextFileSync(join(fixtureDir!, "expected.json")));
      const ref = expected.reference;
      const weights = join(fixtureDir!, "weights.safetensors");
      assert.equal(readCheckpoint(weights).metadata[SSM_CONFIG_KEY], undefined);
      const io = captureIo();
      const input = join(fixtureDir!, "input.png");
      const code = await predictMain(
        ["--backend", "wasm", "--checkpoint", weights, "--out", dir, "--max-labels", "0", input],
        io,
      );
      assert.equal(code, 0, io.lines.join("\n"));
      assert.match(io.lines.join("\n"), /ResNet18, 3 stages, parallel, size 512, reference/);
      const { json } = await checkOutputs(dir, "input", input);
      assert.equal(json.detections.length, 75);
      assert.equal(json.classIndex, 1);
      assert.equal(json.class, "Common Pneumonia");
      json.classLogits.forEach((v, k) =>
        assert.ok(Math.abs(v - ref.s_module.logits[k]) < 2e-3, `logit ${k}`)
      );
      // Union of the RLE masks against the fixture's union (runs of [start, length] in y*512+x).
      const union = new Uint8Array(512 * 512);
      for (const d of json.detections) {
        rleDecode(rleFrString(d.maskRLE.counts as string, 512, 512)).forEach((v, i) => {
          if (v) union[i] = 1;
        });
      }
      const want = new Uint8Array(512 * 512);
      const runs: number[] = ref.masks.union_rle;
      for (let i = 0; i < runs.length; i += 2) want.fill(1, runs[i], runs[i] + runs[i + 1]);
      let area = 0, diff = 0;
      for (let i = 0; i < union.length; i++) {
        area += union[i];
        if (union[i] !== want[i]) diff++;
      }
      assert.ok(Math.abs(area - ref.masks.union_area) <= 0.005 * ref.masks.union_area, `${area}`);
      assert.ok(diff <= 0.005 * ref.masks.union_area, `${diff} pixels differ from the fixture`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const dataDir = sharedDataDir();

Deno.test({
  name: "predict on a real MedSeg slice (JPEG) with a small model",
  ignore: !dataDir,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const ckpt = smallCheckpoint(dir);
      const image = join(dataDir!, "medseg-covid-ct-train", "images", "0.jpg");
      const io = captureIo();
      const code = await predictMain(
        ["--backend", "wasm", "--checkpoint", ckpt, "--out", dir, "--max-labels", "0", image],
        io,
      );
      assert.equal(code, 0, io.lines.join("\n"));
      const { json } = await checkOutputs(dir, "0", image);
      assert.equal(json.image, image);
      assert.equal(json.classProbs.length, 3);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("ProgressBar: plain lines off a terminal, redrawn line on one", () => {
  const plain = captureIo();
  const bar = new ProgressBar(3, "predict", plain, 0);
  bar.tick("a.png");
  bar.tick("b.png");
  bar.tick("c.png");
  assert.equal(plain.lines.length, 3);
  assert.match(plain.lines[0], /^predict 1\/3 0:0\d ETA 0:0\d {2}a\.png$/);
  assert.match(plain.lines[2], /^predict 3\/3 0:0\d {2}c\.png$/);
  const quiet = captureIo();
  const slow = new ProgressBar(5, "p", quiet, 3600);
  for (let i = 0; i < 5; i++) slow.tick();
  assert.equal(quiet.lines.length, 2, "first and last only");
  const raw: string[] = [];
  const tty = new ProgressBar(2, "p", {
    ...captureIo(),
    errRaw: (s) => raw.push(s),
    errIsTTY: true,
  });
  tty.tick();
  tty.tick();
  assert.ok(raw[0].startsWith("\r\x1b[2Kp [" + "#".repeat(12) + ".".repeat(12) + "] 1/2 "), raw[0]);
  assert.equal(raw.at(-1), "\n");
});
