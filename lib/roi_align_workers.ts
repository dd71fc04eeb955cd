/**
 * Worker threads for the `js` RoIAlign engine, so that it uses more than one core.
 *
 * With {@linkcode setRoIAlignThreads}`(n)` (n > 1), large RoIAlign calls are split between the
 * calling thread and `n - 1` workers: the forward pass by boxes (each box's output is written by
 * one thread), the backward pass by bands of feature rows (each thread adds every box's
 * contribution to its own rows, in the box order), so the results are bitwise those of one
 * thread. Features, gradients and outputs travel through `SharedArrayBuffer`s; the calling
 * thread does its share and then blocks (`Atomics.wait`) until the workers are done, so RoIAlign
 * stays a synchronous op. The workers are `node:worker_threads` workers evaluated from the
 * engine's source text (`roi_align_js.ts`) and unreferenced, so they never keep a process alive.
 *
 * `initBackend("wasm", { wasmThreads })` sets the same count as the wasm backend's threads;
 * `reproduce` and `eval`, which run one job per core, keep 1.
 *
 * @example
 * ```ts
 * import { setRoIAlignThreads } from "./roi_align_workers.ts";
 * setRoIAlignThreads(2); // the next large roiAlign calls use a second core
 * setRoIAlignThreads(1); // back to one thread (the worker is stopped)
 * ```
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import {
  backwardBand,
  type BoxPlan,
  forwardRange,
  planAll,
  planBox,
  sampleAxis,
} from "./roi_align_js.ts";

/** Smallest forward output / backward gradient (floats) worth splitting between threads. */
export const PARALLEL_MIN_FLOATS = 1 << 18;

/** Longest a call waits for a worker before giving up. */
const WAIT_MS = 300_000;

let threads = 1;
const workers: Worker[] = [];

/** Sets the threads of the `js` RoIAlign engine (1-8; 1 stops the workers). */
export function setRoIAlignThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 8) {
    throw new Error(`RoIAlign threads must be an integer from 1 to 8, got ${n}`);
  }
  threads = n;
  while (workers.length > n - 1) workers.pop()!.terminate();
}

/** Threads the `js` RoIAlign engine uses for large calls. */
export function roiAlignThreads(): number {
  return threads;
}

function workerSource(): string {
  const fns = [sampleAxis, planBox, planAll, forwardRange, backwardBand].map(String).join("\n");
  return `"use strict";
const { parentPort } = require("node:worker_threads");
const f32 = Math.fround;
${fns}
parentPort.on("message", (m) => {
  const flag = new Int32Array(m.flag);
  try {
    const feats = m.feats.map((b, l) => new Float32Array(b, 0, m.sizes[l]));
    const plans = planAll(m.coords, m.images, m.levels, m.scales, m.shapes, m.oh, m.ow, m.sr, m.aligned);
    if (m.op === "forward") {
      forwardRange(feats, m.shapes, plans, m.oh, m.ow, m.C, new Float32Array(m.out, 0, m.outLen), m.r0, m.r1);
    } else {
      backwardBand(new Float32Array(m.g, 0, m.gLen), m.shapes, plans, m.oh, m.ow, feats, m.bands);
    }
    Atomics.store(flag, 0, 1);
  } catch (e) {
    const msg = new TextEncoder().encode(String(e && e.stack || e)).subarray(0, 1000);
    new Uint8Array(m.flag, 8).set(msg);
    Atomics.store(flag, 1, msg.length);
    Atomics.store(flag, 0, 2);
  }
  Atomics.notify(flag, 0);
});
`;
}

function pool(): Worker[] {
  while (workers.length < threads - 1) {
    const w = new Worker(workerSource(), { eval: true });
    w.unref();
    workers.push(w);
  }
  return workers;
}

/** Grow-only shared buffers, one per role, reused across calls. */
const buffers = new Map<string, SharedArrayBuffer>();

/** A Float32Array of `n` floats on the shared buffer `key` (contents unspecified). */
function shared(key: string, n: number): Float32Array {
  let b = buffers.get(key);
  if (!b || b.byteLength < n * 4) {
    b = new SharedArrayBuffer(Math.max(n * 4, 4));
    buffers.set(key, b);
  }
  return new Float32Array(b, 0, n);
}

/** What a worker needs besides the data: the box geometry and the pooling settings. */
export interface SplitGeometry {
  coords: Float32Array;
  images: Int32Array;
  levels: Int32Array;
  scales: number[];
  shapes: number[][];
  oh: number;
  ow: number;
  samplingRatio: number;
  aligned: boolean;
}

interface Job {
  flag: SharedArrayBuffer;
  worker: Worker;
}

function post(worker: Worker, g: SplitGeometry, extra: Record<string, unknown>): Job {
  const flag = new SharedArrayBuffer(8 + 1000);
  worker.postMessage({
    flag,
    coords: g.coords,
    images: g.images,
    levels: g.levels,
    scales: g.scales,
    shapes: g.shapes,
    oh: g.oh,
    ow: g.ow,
    sr: g.samplingRatio,
    aligned: g.aligned,
    ...extra,
  });
  return { flag, worker };
}

function wait(jobs: Job[]): void {
  for (const { flag } of jobs) {
    const f = new Int32Array(flag);
    if (Atomics.wait(f, 0, 0, WAIT_MS) === "timed-out") {
      throw new Error(`roiAlign: a worker thread did not answer within ${WAIT_MS / 1000} s`);
    }
    if (Atomics.load(f, 0) === 2) {
      const text = new TextDecoder().decode(new Uint8Array(flag, 8, Atomics.load(f, 1)));
      throw new Error(`roiAlign: a worker thread failed: ${text}`);
    }
  }
}

/** Copies per-level data into shared buffers. */
function shareLevels(prefix: string, data: Float32Array[]): Float32Array[] {
  return data.map((d, l) => {
    const s = shared(`${prefix}${l}`, d.length);
    s.set(d);
    return s;
  });
}

/** Per-box work estimate: pixels touched in the first pass plus output bins. */
function boxCost(pl: BoxPlan, oh: number, ow: number): number {
  return pl.ys.len === 0 || pl.xs.len === 0 ? 0 : oh * 4 * pl.xs.used.length + oh * ow * 4;
}

/**
 * The forward pass of the `js` engine on `threads` threads (the caller checked that it is worth
 * it): boxes are cut into contiguous ranges of about equal estimated work.
 */
export function forwardParallel(
  feats: Float32Array[],
  g: SplitGeometry,
  plans: BoxPlan[],
  C: number,
): Float32Array {
  const { oh, ow } = g;
  const ws = pool();
  const parts = ws.length + 1;
  const R = plans.length;
  const cost = plans.map((p) => boxCost(p, oh, ow));
  const total = cost.reduce((a, b) => a + b, 0);
  const cuts = [0];
  let acc = 0;
  for (let r = 0; r < R && cuts.length < parts; r++) {
    acc += cost[r];
    if (acc >= (total * cuts.length) / parts) cuts.push(r + 1);
  }
  while (cuts.length < parts) cuts.push(R);
  cuts.push(R);
  const sf = shareLevels("feat", feats);
  const outLen = R * oh * ow * C;
  const out = shared("out", outLen);
  const jobs = ws.map((w, i) =>
    post(w, g, {
      op: "forward",
      feats: sf.map((s) => s.buffer),
      sizes: sf.map((s) => s.length),
      C,
      out: out.buffer,
      outLen,
      r0: cuts[i + 1],
      r1: cuts[i + 2],
    })
  );
  forwardRange(sf, g.shapes, plans, oh, ow, C, out, cuts[0], cuts[1]);
  wait(jobs);
  return out;
}

/**
 * The backward pass of the `js` engine on `threads` threads: each level's rows are cut into bands
 * of about equal estimated work. Returns one shared gradient array per level.
 */
export function backwardParallel(
  G: Float32Array,
  g: SplitGeometry,
  plans: BoxPlan[],
): Float32Array[] {
  const { oh, ow, shapes } = g;
  const ws = pool();
  const parts = ws.length + 1;
  // Work per feature row of each level: every box adds its used columns to its rows.
  const rowCost = shapes.map(([, H]) => new Float64Array(H));
  for (const pl of plans) {
    if (pl.ys.len === 0 || pl.xs.len === 0) continue;
    const per = oh * pl.xs.used.length + (oh * ow * pl.xs.used.length) / pl.ys.len;
    for (let j = 0; j < pl.ys.len; j++) rowCost[pl.level][pl.ys.lo + j] += per;
  }
  const cuts = rowCost.map((rc) => {
    const H = rc.length;
    const total = rc.reduce((a, b) => a + b, 0);
    const c = [0];
    let acc = 0;
    for (let y = 0; y < H && c.length < parts; y++) {
      acc += rc[y];
      if (acc >= (total * c.length) / parts) c.push(y + 1);
    }
    while (c.length < parts) c.push(H);
    c.push(H);
    return c;
  });
  const bandsOf = (i: number) => cuts.map((c) => [c[i], c[i + 1]] as [number, number]);
  const sg = shared("grad-in", G.length);
  sg.set(G);
  const grads = shapes.map((s, l) => shared(`grad${l}`, s[0] * s[1] * s[2] * s[3]));
  const jobs = ws.map((w, i) =>
    post(w, g, {
      op: "backward",
      feats: grads.map((s) => s.buffer),
      sizes: grads.map((s) => s.length),
      g: sg.buffer,
      gLen: sg.length,
      bands: bandsOf(i + 1),
    })
  );
  backwardBand(sg, shapes, plans, oh, ow, grads, bandsOf(0));
  wait(jobs);
  return grads;
}
