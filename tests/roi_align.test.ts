// RoIAlign against torchvision fixtures and an independent float64 implementation of torchvision's
// algorithm (forward and adjoint), on the wasm and cpu backends, with both engines.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backend/mod.ts";
import {
  inferScale,
  LevelMapper,
  MultiScaleRoIAlign,
  roiAlign,
  roiAlignAsync,
  type RoIAlignEngine,
} from "../lib/roi_align.ts";
import { readFixtureJson } from "./_util.ts";

type Arr = { shape: number[]; dtype: string; data: number[] };
type Case = {
  name: string;
  params: Record<string, unknown>;
  inputs: Record<string, unknown>;
  expected: Record<string, unknown>;
};
// webgpu runs where an adapter exists (Mesa's software Vulkan is enough); it cannot read tensors
// synchronously in Deno, so only the tensor engine runs there and results are read with data().
// deno-lint-ignore no-explicit-any
const gpu = (globalThis.navigator as any)?.gpu;
const hasWebGpu = !!(gpu && await gpu.requestAdapter().catch(() => null));
type Backend = "wasm" | "cpu" | "webgpu";
const BACKENDS: Backend[] = ["wasm", "cpu", ...(hasWebGpu ? ["webgpu" as const] : [])];
const ENGINES: RoIAlignEngine[] = ["js", "tensor"];
const enginesOn = (b: Backend): RoIAlignEngine[] => (b === "webgpu" ? ["tensor"] : ENGINES);
const gpuSafe = (
  b: Backend,
) => (b === "webgpu" ? { sanitizeResources: false, sanitizeOps: false } : {});
const read = async (t: tf.Tensor): Promise<Float32Array> => {
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
};

const nhwc = (a: Arr): tf.Tensor4D => {
  const t: tf.Tensor = tf.tensor(a.data, a.shape, "float32");
  return tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
};

/** max |a-b|, and the bound `tol * max(1, max|b|)`. */
function maxErr(a: ArrayLike<number>, b: ArrayLike<number>): { err: number; scale: number } {
  assert.equal(a.length, b.length, "length mismatch");
  let err = 0, scale = 1;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { err, scale };
}
function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  const { err, scale } = maxErr(a, b);
  assert.ok(err <= tol * scale, `${what}: max abs error ${err} > ${tol} * ${scale}`);
}

/** Forward value and gradient w.r.t. features for the upstream gradient `up`. */
async function valueAndGrad(
  feat: tf.Tensor4D,
  up: tf.Tensor,
  run: (f: tf.Tensor4D) => tf.Tensor4D,
): Promise<{ out: Float32Array; grad: Float32Array }> {
  const [o, g] = tf.tidy(
    () => [run(feat), tf.grad((f: tf.Tensor) => run(f as tf.Tensor4D))(feat, up)],
  );
  return { out: await read(o), grad: await read(g) };
}

// ---------------------------------------------------------------------------------------------
// Independent float64 implementation of torchvision's roi_align (aligned and not), straight from
// the published rules: loops over boxes, bins and samples; bilinear with the edge rules.

interface RefOpts {
  oh: number;
  ow: number;
  scale: number;
  sr: number;
  aligned: boolean;
}
type Tap = [number, number, number]; // y, x, weight

function taps(y: number, x: number, H: number, W: number): Tap[] {
  if (y < -1 || y > H || x < -1 || x > W) return [];
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  let y0 = Math.floor(y), x0 = Math.floor(x), y1, x1;
  if (y0 >= H - 1) {
    y0 = y1 = H - 1;
    y = y0;
  } else y1 = y0 + 1;
  if (x0 >= W - 1) {
    x0 = x1 = W - 1;
    x = x0;
  } else x1 = x0 + 1;
  const ly = y - y0, lx = x - x0, hy = 1 - ly, hx = 1 - lx;
  return [[y0, x0, hy * hx], [y0, x1, hy * lx], [y1, x0, ly * hx], [y1, x1, ly * lx]];
}

/** Calls `visit(r, ph, pw, tap, 1/count)` for every bilinear tap of every sample. */
function walk(
  shape: number[],
  rois: number[][],
  o: RefOpts,
  visit: (r: number, b: number, ph: number, pw: number, t: Tap, inv: number) => void,
) {
  const [, H, W] = shape;
  rois.forEach(([b, x1, y1, x2, y2], r) => {
    const off = o.aligned ? 0.5 : 0;
    const sx = x1 * o.scale - off, sy = y1 * o.scale - off;
    let rw = x2 * o.scale - off - sx, rh = y2 * o.scale - off - sy;
    if (!o.aligned) {
      rw = Math.max(rw, 1);
      rh = Math.max(rh, 1);
    }
    const bw = rw / o.ow, bh = rh / o.oh;
    const gy = o.sr > 0 ? o.sr : Math.ceil(rh / o.oh);
    const gx = o.sr > 0 ? o.sr : Math.ceil(rw / o.ow);
    const inv = 1 / Math.max(gy * gx, 1);
    for (let ph = 0; ph < o.oh; ph++) {
      for (let pw = 0; pw < o.ow; pw++) {
        for (let iy = 0; iy < gy; iy++) {
          const y = sy + ph * bh + (iy + 0.5) * bh / gy;
          for (let ix = 0; ix < gx; ix++) {
            const x = sx + pw * bw + (ix + 0.5) * bw / gx;
            for (const t of taps(y, x, H, W)) visit(r, b, ph, pw, t, inv);
          }
        }
      }
    }
  });
}

function refForward(F: Float64Array, shape: number[], rois: number[][], o: RefOpts): Float64Array {
  const [, H, W, C] = shape;
  const out = new Float64Array(rois.length * o.oh * o.ow * C);
  walk(shape, rois, o, (r, b, ph, pw, [y, x, w], inv) => {
    const dst = ((r * o.oh + ph) * o.ow + pw) * C, src = ((b * H + y) * W + x) * C;
    for (let c = 0; c < C; c++) out[dst + c] += w * F[src + c] * inv;
  });
  return out;
}

function refBackward(G: Float64Array, shape: number[], rois: number[][], o: RefOpts): Float64Array {
  const [N, H, W, C] = shape;
  const dF = new Float64Array(N * H * W * C);
  walk(shape, rois, o, (r, b, ph, pw, [y, x, w], inv) => {
    const src = ((r * o.oh + ph) * o.ow + pw) * C, dst = ((b * H + y) * W + x) * C;
    for (let c = 0; c < C; c++) dF[dst + c] += w * G[src + c] * inv;
  });
  return dF;
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Boxes in image coordinates (feature coords / scale) covering the awkward cases. */
function randomRois(
  rand: () => number,
  N: number,
  H: number,
  W: number,
  scale: number,
): number[][] {
  const u = (a: number, b: number) => a + (b - a) * rand();
  const fc: number[][] = [];
  for (let i = 0; i < 6; i++) { // inside
    const x1 = u(0, W - 2), y1 = u(0, H - 2);
    fc.push([x1, y1, u(x1 + 0.5, W), u(y1 + 0.5, H)]);
  }
  fc.push([u(-4, -0.5), u(2, 4), u(1, 5), u(H - 2, H + 3)]); // partly outside left/bottom
  fc.push([u(W - 4, W - 1), u(-3, -0.2), u(W + 0.5, W + 4), u(2, 5)]); // partly outside right/top
  fc.push([u(-9, -6), u(-8, -5), u(-5, -3), u(-4, -2.5)]); // fully outside top-left
  fc.push([u(W + 1.5, W + 3), u(1, 3), u(W + 4, W + 6), u(4, 6)]); // fully outside right
  fc.push([u(-2.5, -1.2), u(H + 1.2, H + 2), u(-1.1, -0.9), u(H + 2.5, H + 3)]); // near corner
  const tx = u(0, W), ty = u(0, H);
  fc.push([tx, ty, tx + 0.03, ty + 0.02]); // tiny
  const zx = u(1, W - 1), zy = u(1, H - 1);
  fc.push([zx, zy, zx, zy]); // zero size
  fc.push([u(W - 0.9, W), u(H - 0.9, H), u(W, W + 0.1), u(H, H + 0.1)]); // forced 1x1 past the edge
  fc.push([u(3, 5), u(3, 5), u(0, 2), u(1, 2)]); // x2 < x1 (malformed)
  fc.push([u(-3, -1), u(-3, -1), u(W + 1, W + 3), u(H + 1, H + 3)]); // larger than the map
  return fc.map((b) => [Math.floor(rand() * N), ...b.map((v) => Math.fround(v / scale))]);
}

// ---------------------------------------------------------------------------------------------

for (const backend of BACKENDS) {
  const fx = readFixtureJson<{ cases: Case[] }>("components", "roi_align.json");
  Deno.test({
    name: `roi_align.json fixtures, forward and gradient [${backend}]`,
    ignore: !fx,
    ...gpuSafe(backend),
    fn: async () => {
      await initBackend(backend);
      for (const c of fx!.cases) {
        const p = c.params as {
          output_size: number[];
          spatial_scale: number;
          sampling_ratio: number;
        };
        const inp = c.inputs as Record<string, Arr>;
        const exp = c.expected as Record<string, Arr>;
        const feat = nhwc(inp.input_nchw);
        const up = nhwc(inp.upstream_grad_kchw);
        const roisT = tf.tensor2d(inp.rois_k5.data, inp.rois_k5.shape as [number, number]);
        // Box tensors are read synchronously except on webgpu (read asynchronously there).
        const rois = backend === "webgpu" ? await roisT.array() : roisT;
        const wantOut = await read(nhwc(exp.output_kchw));
        const wantGrad = await read(nhwc(exp.grad_input_nchw));
        for (const engine of enginesOn(backend)) {
          const cfg = {
            outputSize: p.output_size as [number, number],
            spatialScale: p.spatial_scale,
            samplingRatio: p.sampling_ratio,
            engine,
          };
          if (backend === "webgpu") {
            const viaAsync = await roiAlignAsync(feat, roisT, cfg);
            assertClose(await read(viaAsync), wantOut, 1e-5, `${c.name} async forward`);
          }
          const { out, grad } = await valueAndGrad(feat, up, (f) => roiAlign(f, rois, cfg));
          assertClose(out, wantOut, 1e-5, `${c.name} ${engine} forward`);
          assertClose(grad, wantGrad, 1e-5, `${c.name} ${engine} grad_input`);
        }
        tf.dispose([feat, up, roisT]);
      }
    },
  });

  const ms = readFixtureJson<{ cases: Case[] }>("components", "multiscale_roi_align.json");
  Deno.test({
    name: `multiscale_roi_align.json fixtures [${backend}]`,
    ignore: !ms,
    ...gpuSafe(backend),
    fn: async () => {
      await initBackend(backend);
      for (const c of ms!.cases) {
        const p = c.params as {
          featmap_names: string[];
          output_size: number[];
          sampling_ratio: number;
          image_shapes: number[][];
        };
        const inp = c.inputs as { feature_0_nchw: Arr; boxes_per_image: Arr[] };
        const exp = c.expected as { inferred_scales: number[]; output_kchw: Arr };
        for (const engine of enginesOn(backend)) {
          const m = new MultiScaleRoIAlign({
            featmapNames: p.featmap_names,
            outputSize: p.output_size as [number, number],
            samplingRatio: p.sampling_ratio,
            engine,
          });
          const feats = { "0": nhwc(inp.feature_0_nchw), "ignored": tf.zeros([1, 2, 2, 1]) };
          const boxes = inp.boxes_per_image.map((b) =>
            tf.tensor2d(b.data, b.shape as [number, number])
          );
          const byName = feats as Record<string, tf.Tensor4D>;
          const out = await m.forwardAsync(byName, boxes, p.image_shapes);
          assert.deepEqual(m.scales, exp.inferred_scales);
          assert.deepEqual(out.shape, [5, 7, 7, 4]);
          const want = await read(nhwc(exp.output_kchw));
          assertClose(await read(out), want, 1e-5, `${c.name} ${engine}`);
          // Scales are cached: a later call with other image sizes keeps them.
          tf.dispose(await m.forwardAsync(byName, boxes, p.image_shapes.map(() => [32, 32])));
          assert.deepEqual(m.scales, exp.inferred_scales);
          tf.dispose([...Object.values(feats), ...boxes]);
        }
      }
    },
  });

  Deno.test({
    name: `random boxes vs float64 torchvision algorithm, forward and adjoint [${backend}]`,
    ...gpuSafe(backend),
    fn: async () => {
      await initBackend(backend);
      const rand = rng(backend === "wasm" ? 7 : 11);
      const configs: (RefOpts & { H: number; W: number; N: number; C: number })[] = [
        { H: 12, W: 10, N: 2, C: 5, oh: 7, ow: 7, scale: 0.25, sr: 2, aligned: false },
        { H: 9, W: 13, N: 1, C: 3, oh: 14, ow: 14, scale: 1 / 16, sr: 2, aligned: false },
        { H: 11, W: 11, N: 2, C: 2, oh: 5, ow: 3, scale: 0.5, sr: -1, aligned: false },
        { H: 10, W: 8, N: 1, C: 3, oh: 4, ow: 6, scale: 1, sr: 3, aligned: true },
        { H: 8, W: 9, N: 2, C: 2, oh: 7, ow: 7, scale: 0.25, sr: 0, aligned: true },
        { H: 1, W: 6, N: 1, C: 2, oh: 2, ow: 3, scale: 1, sr: 1, aligned: false },
        // wide boxes: most pixel columns between the samples are skipped
        { H: 6, W: 64, N: 1, C: 4, oh: 2, ow: 3, scale: 1, sr: 2, aligned: false },
        { H: 40, W: 48, N: 2, C: 3, oh: 3, ow: 2, scale: 1, sr: 1, aligned: true },
      ];
      for (const cfg of configs) {
        const shape = [cfg.N, cfg.H, cfg.W, cfg.C];
        const F = Float32Array.from(
          { length: cfg.N * cfg.H * cfg.W * cfg.C },
          () => 2 * rand() - 1,
        );
        const rois = randomRois(rand, cfg.N, cfg.H, cfg.W, cfg.scale);
        const R = rois.length;
        const G = Float32Array.from({ length: R * cfg.oh * cfg.ow * cfg.C }, () => 2 * rand() - 1);
        const wantOut = refForward(Float64Array.from(F), shape, rois, cfg);
        const wantGrad = refBackward(Float64Array.from(G), shape, rois, cfg);
        // The float64 backward is the adjoint of the float64 forward: <fwd(E), G> = <E, bwd(G)>.
        let lhs = 0, rhs = 0;
        wantOut.forEach((v, i) => (lhs += v * G[i]));
        wantGrad.forEach((v, i) => (rhs += v * F[i]));
        assert.ok(Math.abs(lhs - rhs) < 1e-9 * (1 + Math.abs(lhs)), `adjoint ${lhs} vs ${rhs}`);
        // Fully outside boxes pool exactly zero.
        const outside = 8 * cfg.oh * cfg.ow * cfg.C;
        assert.ok(
          wantOut.subarray(outside, outside + cfg.oh * cfg.ow * cfg.C).every((v) => v === 0),
        );

        const feat = tf.tensor4d(F, shape as [number, number, number, number]);
        const up = tf.tensor4d(G, [R, cfg.oh, cfg.ow, cfg.C]);
        for (const engine of enginesOn(backend)) {
          const { out, grad } = await valueAndGrad(feat, up, (f) =>
            roiAlign(f, rois, {
              outputSize: [cfg.oh, cfg.ow],
              spatialScale: cfg.scale,
              samplingRatio: cfg.sr,
              aligned: cfg.aligned,
              engine,
            }));
          const what =
            `H${cfg.H} W${cfg.W} ${cfg.oh}x${cfg.ow} sr${cfg.sr} al${cfg.aligned} ${engine}`;
          // float32 sample positions differ from float64 ones by a few ulp of the coordinate.
          assertClose(out, wantOut, 2e-5, `${what} forward`);
          assertClose(grad, wantGrad, 2e-5, `${what} gradient`);
        }
        tf.dispose([feat, up]);
      }
    },
  });

  Deno.test({
    name: `samples exactly on -1 and on H are kept, just past them dropped [${backend}]`,
    ...gpuSafe(backend),
    fn: async () => {
      await initBackend(backend);
      // H = W = 6, scale 1, 2x2 output, 2 samples per bin: a 4-pixel box starting at s samples at
      // s+0.5, s+1.5, s+2.5, s+3.5, all exact in float32 and float64.
      const H = 6, C = 2;
      const e = 2 ** -22;
      const rois = [
        [-1.5, -1.5, 2.5, 2.5], // first sample at exactly -1 (kept: value of pixel 0)
        [-1.5 - e, -1.5 - e, 2.5 - e, 2.5 - e], // first sample just below -1 (dropped)
        [2.5, 2.5, 6.5, 6.5], // last sample at exactly 6 = H (kept: value of pixel 5)
        [2.5 + 2 * e, 2.5 + 2 * e, 6.5 + 2 * e, 6.5 + 2 * e], // last sample just past H (dropped)
        [-1.5, 2.5, 2.5, 6.5], // -1 in y, H in x
      ].map((b) => [0, ...b]);
      for (const b of rois) {
        for (const v of b) assert.equal(Math.fround(v), v, "test boxes must be exact in float32");
      }
      const rand = rng(3);
      const F = Float32Array.from({ length: H * H * C }, () => 1 + rand());
      const o = { oh: 2, ow: 2, scale: 1, sr: 2, aligned: false };
      const want = refForward(Float64Array.from(F), [1, H, H, C], rois, o);
      const G = Float32Array.from({ length: rois.length * 4 * C }, () => rand());
      const wantGrad = refBackward(Float64Array.from(G), [1, H, H, C], rois, o);
      // Kept vs dropped must change the value (features are >= 1), so the cases really differ.
      const bin = (r: number, k: number) => want[(r * 4 + k) * C];
      assert.ok(
        Math.abs(bin(0, 0) - bin(1, 0)) > 0.5,
        "first bin: kept (box 0) vs dropped (box 1)",
      );
      assert.ok(Math.abs(bin(2, 3) - bin(3, 3)) > 0.5, "last bin: kept (box 2) vs dropped (box 3)");
      const feat = tf.tensor4d(F, [1, H, H, C]);
      const up = tf.tensor4d(G, [rois.length, 2, 2, C]);
      for (const engine of enginesOn(backend)) {
        const { out, grad } = await valueAndGrad(
          feat,
          up,
          (f) => roiAlign(f, rois, { outputSize: 2, spatialScale: 1, samplingRatio: 2, engine }),
        );
        assertClose(out, want, 1e-6, `boundary ${engine} forward`);
        assertClose(grad, wantGrad, 1e-6, `boundary ${engine} gradient`);
      }
      tf.dispose([feat, up]);
    },
  });

  Deno.test({
    name: `batch indices, [R,5] rois, empty box list, no leaks [${backend}]`,
    ...gpuSafe(backend),
    fn: async () => {
      await initBackend(backend);
      const rand = rng(5);
      const F = tf.tensor4d(Float32Array.from({ length: 2 * 6 * 7 * 3 }, rand), [2, 6, 7, 3]);
      const boxes = [[1, 1, 5, 4], [0, 2, 3, 6], [2.5, 0.5, 6, 5]];
      for (const engine of enginesOn(backend)) {
        const before = tf.memory().numTensors;
        const a = roiAlign(F, boxes, { boxIndices: [1, 0, 1], outputSize: 3, engine });
        const b = roiAlign(F, boxes.map((r, i) => [[1, 0, 1][i], ...r]), { outputSize: 3, engine });
        const one = tf.tidy(() =>
          roiAlign(tf.slice(F, [1, 0, 0, 0], [1, -1, -1, -1]), [boxes[0]], {
            outputSize: 3,
            engine,
          })
        );
        const av = await read(a);
        assert.deepEqual(av, await read(b));
        assertClose(av.slice(0, 27), await read(one), 0, "image 1 box");
        const empty = tf.tidy(() => roiAlign(F, [], { engine }));
        assert.deepEqual(empty.shape, [0, 7, 7, 3]);
        // (an empty upstream gradient: tfjs-webgpu cannot sum an empty tensor)
        const g = tf.tidy(() =>
          tf.grad((f: tf.Tensor) => roiAlign(f as tf.Tensor4D, [], { engine }))(
            F,
            tf.zeros([0, 7, 7, 3]),
          )
        );
        assert.deepEqual(await read(g), new Float32Array(2 * 6 * 7 * 3));
        empty.dispose();
        assert.equal(tf.memory().numTensors, before, `${engine} leaked tensors`);
        tf.tidy(() => {
          const t0 = tf.memory().numTensors;
          tf.grad((f: tf.Tensor) => tf.sum(roiAlign(f as tf.Tensor4D, boxes, { engine })))(F);
          assert.ok(tf.memory().numTensors - t0 < 20);
        });
        assert.equal(tf.memory().numTensors, before, `${engine} gradient leaked tensors`);
      }
      F.dispose();
    },
  });
}

Deno.test("bad input raises errors that name the problem", async () => {
  await initBackend("cpu");
  const F = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D;
  assert.throws(
    () => roiAlign(tf.zeros([4, 4, 2]) as unknown as tf.Tensor4D, [[0, 0, 1, 1]]),
    /rank-4/,
  );
  assert.throws(() => roiAlign(F, tf.zeros([2, 3]) as tf.Tensor2D), /boxes must have shape/);
  assert.throws(() => roiAlign(F, [[0, 0, 1, 1]], { outputSize: 0 }), /outputSize/);
  assert.throws(() => roiAlign(F, [[0, 0, 1, 1]], { spatialScale: -1 }), /spatialScale/);
  assert.throws(() => roiAlign(F, [[0, 0, 1, 1]], { samplingRatio: 1.5 }), /samplingRatio/);
  assert.throws(() => roiAlign(F, [[0, 0, 1, 1]], { boxIndices: [1] }), /batch index 1/);
  assert.throws(() => roiAlign(F, [[0, 0, 1, 1]], { boxIndices: [0, 0] }), /2 entries for 1/);
  assert.throws(() => roiAlign(F, [[0, 0, NaN, 1]]), /NaN/);
  assert.throws(() => roiAlign(F, [[0, 0, 0, 1, 1]], { boxIndices: [0] }), /together/);
  const m = new MultiScaleRoIAlign({ featmapNames: ["0"], outputSize: 7, samplingRatio: 2 });
  assert.throws(() => m.forward({ "1": F }, [[[0, 0, 1, 1]]], [[64, 64]]), /'0' is missing/);
  assert.throws(() =>
    new MultiScaleRoIAlign({ featmapNames: [], outputSize: 7, samplingRatio: 2 })
  );
  F.dispose();
});

Deno.test("inferScale and LevelMapper follow torchvision", () => {
  assert.equal(inferScale(32, 512), 1 / 16);
  assert.equal(inferScale(8, 120), 1 / 16); // log2 = -3.907
  assert.equal(inferScale(64, 512), 1 / 8);
  assert.equal(inferScale(3, 2), 2); // log2(1.5) = 0.585 -> 1
  // Levels 2..5 (scales 1/4..1/32): canonical 224 px box -> level 4 -> index 2.
  const lm = new LevelMapper(2, 5);
  assert.deepEqual(
    Array.from(
      lm.levels([0, 0, 224, 224, 0, 0, 112, 112, 0, 0, 10, 10, 0, 0, 2000, 2000, 5, 5, 5, 5]),
    ),
    [2, 1, 0, 3, 0],
  );
});

Deno.test("two-level MultiScaleRoIAlign pools each box from its mapped level", async () => {
  await initBackend("wasm");
  const rand = rng(9);
  const f0 = tf.tensor4d(Float32Array.from({ length: 32 * 32 * 2 }, rand), [1, 32, 32, 2]);
  const f1 = tf.tensor4d(Float32Array.from({ length: 16 * 16 * 2 }, rand), [1, 16, 16, 2]);
  const boxes = [[10, 10, 60, 70], [0, 0, 400, 380], [100, 50, 130, 90], [20, 30, 500, 500]];
  const m = new MultiScaleRoIAlign({ featmapNames: ["p2", "p3"], outputSize: 7, samplingRatio: 2 });
  const up = tf.tensor4d(Float32Array.from({ length: 4 * 49 * 2 }, rand), [4, 7, 7, 2]);
  const [g0, g1] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
    tf.sum(
      tf.mul(m.forward({ p2: a as tf.Tensor4D, p3: b as tf.Tensor4D }, [boxes], [[128, 128]]), up),
    )
  )([f0, f1]);
  assert.deepEqual(m.scales, [0.25, 0.125]);
  const levels = m.mapper!.levels(boxes.flat());
  assert.deepEqual(Array.from(levels), [0, 1, 0, 1]);
  const out = m.forward({ p2: f0, p3: f1 }, [boxes], [[128, 128]]).dataSync();
  const feats = [f0, f1];
  const grads = [new Float64Array(32 * 32 * 2), new Float64Array(16 * 16 * 2)];
  const G = up.dataSync();
  boxes.forEach((b, r) => {
    const l = levels[r];
    const o = { oh: 7, ow: 7, scale: [0.25, 0.125][l], sr: 2, aligned: false };
    const shape = feats[l].shape;
    const want = refForward(Float64Array.from(feats[l].dataSync()), shape, [[0, ...b]], o);
    assertClose(out.slice(r * 98, r * 98 + 98), want, 2e-5, `box ${r}`);
    const g = refBackward(Float64Array.from(G.slice(r * 98, r * 98 + 98)), shape, [[0, ...b]], o);
    g.forEach((v, i) => (grads[l][i] += v));
  });
  assertClose(g0.dataSync(), grads[0], 2e-5, "grad level 0");
  assertClose(g1.dataSync(), grads[1], 2e-5, "grad level 1");
});

Deno.test("SSM-sized workload on wasm: engines agree; timings", async () => {
  await initBackend("wasm");
  const rand = rng(1);
  const proposals = (n: number) =>
    Array.from({ length: n }, () => {
      const w = 8 + 200 * rand() ** 2, h = 8 + 200 * rand() ** 2;
      const x = (512 - w) * rand(), y = (512 - h) * rand();
      return [x, y, x + w, y + h];
    });
  const bench = !!Deno.env.get("SSM_ROI_BENCH");
  const lines: string[] = [];
  for (const size of bench ? [32, 64] : [32]) {
    const feat = tf.randomNormal([1, size, size, 256], 0, 1, "float32", 1) as tf.Tensor4D;
    const scale = size / 512;
    const jobs = [
      { n: 512, out: 7, boxes: proposals(512) },
      { n: 128, out: 14, boxes: proposals(128) },
    ];
    for (const { n, out, boxes } of jobs) {
      const cfg = { outputSize: out, spatialScale: scale, samplingRatio: 2 };
      const up = tf.randomNormal([n, out, out, 256], 0, 1, "float32", 2);
      for (const engine of bench ? ENGINES : ["js" as const]) {
        const run = (f: tf.Tensor) => roiAlign(f as tf.Tensor4D, boxes, { ...cfg, engine });
        const time = (fn: () => tf.Tensor) => {
          fn().dispose(); // warm-up
          const t0 = performance.now();
          fn().dispose();
          return (performance.now() - t0).toFixed(0);
        };
        const fwd = time(() => run(feat));
        const grad = time(() => tf.grad(run)(feat, up));
        lines.push(
          `[1,${size},${size},256] ${n}x${out}x${out} ${engine}: fwd ${fwd} ms, grad ${grad} ms`,
        );
      }
      // The two engines agree at this size (on a subset of the boxes unless benchmarking).
      const sub = bench ? boxes : boxes.slice(0, 48);
      const upSub = tf.slice(up, 0, sub.length);
      const [js, ts] = ENGINES.map((engine) =>
        tf.tidy(() => {
          const run = (f: tf.Tensor) => roiAlign(f as tf.Tensor4D, sub, { ...cfg, engine });
          return [run(feat), tf.grad(run)(feat, upSub)];
        })
      );
      assertClose(await read(js[0]), await read(ts[0]), 1e-5, `${n}x${out} forward js vs tensor`);
      assertClose(await read(js[1]), await read(ts[1]), 1e-5, `${n}x${out} grad js vs tensor`);
      tf.dispose([up, upSub]);
    }
    feat.dispose();
  }
  console.log(`wasm timings:\n  ${lines.join("\n  ")}`);
});
