/**
 * Worker threads for the `js` RoIAlign engine, so that it uses more than one core.
 *
 * With {@linkcode setRoIAlignThreads}`(n)` (n > 1), large RoIAlign calls are split between the
 * calling thread and `n - 1` workers: the forward pass by boxes (each box's output is written by
 * one thread), the backward pass by bands of feature rows (each thread adds every box's
 * contribution to its own rows, in the box order), so the results are bitwise those of one
 * thread. Features, gradients and outputs are shared with the workers: in place when they live in
 * shared memory (the heap of the threaded wasm build), else through shared copies. The calling
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
import { axpyKernel, axpyModuleBytes } from "./axpy_wasm.ts";
import {
  type Axpy,
  axpyLoop,
  backwardBand,
  type BoxPlan,
  forwardRange,
  heapAxpy,
  planAll,
  planBox,
  type PoolGeometry,
  sampleAxis,
  scratchFloats,
  scratchOf,
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
  const fns = [
    sampleAxis,
    planBox,
    planAll,
    axpyLoop,
    heapAxpy,
    scratchOf,
    scratchFloats,
    forwardRange,
    backwardBand,
  ].map(String).join("\n");
  return `"use strict";
const { parentPort } = require("node:worker_threads");
const f32 = Math.fround;
${fns}
let heapAx = null, setupError = null;
parentPort.on("message", (m) => {
  if (m.op === "setup") {
    // A failure is reported by the next call that needs the kernel.
    try {
      const mod = new WebAssembly.Module(m.bytes);
      heapAx = heapAxpy(new WebAssembly.Instance(mod, { env: { memory: m.memory } }).exports.axpy);
      setupError = null;
    } catch (e) {
      heapAx = null;
      setupError = e;
    }
    return;
  }
  const flag = new Int32Array(m.flag);
  try {
    const view = (r) => new Float32Array(r.buffer, r.byteOffset, r.length);
    const maps = m.maps.map(view);
    // On the wasm heap: its SIMD kernel and this thread's scratch there.
    if (m.scratch && !heapAx) throw setupError ?? new Error("no SIMD kernel on the heap");
    const ax = m.scratch ? heapAx : axpyLoop;
    const scratch = m.scratch ? view(m.scratch) : undefined;
    if (m.op === "forward") {
      // Only its own boxes' plans; a band of the backward pass may touch any box.
      const plans = planAll(m, m.r0, m.r1);
      forwardRange(maps, m.shapes, plans, m.oh, m.ow, m.C, view(m.out), m.r0, m.r1, ax, scratch);
    } else {
      const plans = planAll(m);
      backwardBand(view(m.g), m.shapes, plans, m.oh, m.ow, maps, m.bands, ax, scratch);
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

/** The heap memory each worker has instantiated the kernel on. */
const workerMemory = new WeakMap<Worker, WebAssembly.Memory>();

/** The workers; with `memory`, each has the SIMD kernel on it. */
function pool(memory?: WebAssembly.Memory): Worker[] {
  while (workers.length < threads - 1) {
    const w = new Worker(workerSource(), { eval: true });
    w.unref();
    workers.push(w);
  }
  if (memory) {
    for (const w of workers) {
      if (workerMemory.get(w) === memory) continue;
      w.postMessage({ op: "setup", memory, bytes: axpyModuleBytes(true) });
      workerMemory.set(w, memory);
    }
  }
  return workers;
}

/**
 * The wasm backend's shared heap and one scratch array on it per thread (the calling thread's
 * first), for the SIMD kernel.
 */
export interface HeapScratch {
  /** The heap (a shared memory, for the workers to use in place). */
  memory: WebAssembly.Memory;
  /** Scratch per thread, at least {@linkcode scratchFloats} each. */
  scratch: Float32Array[];
}

/**
 * `heap` when every array lives on its shared memory (the threaded wasm build), so every thread
 * can run the SIMD kernel in place; otherwise nothing (the JavaScript loop, on shared copies).
 */
function onSharedHeap(heap: HeapScratch | undefined, arrays: Float32Array[]): HeapScratch | null {
  if (!heap || !(heap.memory.buffer instanceof SharedArrayBuffer)) return null;
  const shared = arrays.every((a) => a.buffer instanceof SharedArrayBuffer);
  return shared && heap.scratch.length >= threads ? heap : null;
}

/** The calling thread's SIMD kernel on the heap. */
function heapAxpy0(heap: HeapScratch): Axpy {
  return heapAxpy(axpyKernel(heap.memory));
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

interface Job {
  flag: SharedArrayBuffer;
  worker: Worker;
}

function post(worker: Worker, g: PoolGeometry, extra: Record<string, unknown>): Job {
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
    samplingRatio: g.samplingRatio,
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

/**
 * Cuts `[0, cost.length)` into `parts` contiguous ranges of about equal total cost: returns the
 * `parts + 1` boundaries.
 */
export function cutByCost(cost: ArrayLike<number>, parts: number): number[] {
  const n = cost.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += cost[i];
  const cuts = [0];
  let acc = 0;
  for (let i = 0; i < n && cuts.length < parts; i++) {
    acc += cost[i];
    if (acc >= (total * cuts.length) / parts) cuts.push(i + 1);
  }
  while (cuts.length < parts) cuts.push(n);
  cuts.push(n);
  return cuts;
}

/**
 * Per-box work estimate from the box's coordinates, before planning: the pixels of the first pass
 * (its width in feature pixels bounds the columns it uses, two per sample at most) plus the
 * output bins, plus the cost of planning it.
 */
function estimatedCost(g: PoolGeometry, r: number): number {
  const l = g.levels[r], scale = g.scales[l];
  const width = Math.max((g.coords[r * 4 + 2] - g.coords[r * 4]) * scale, g.aligned ? 0 : 1);
  const perSample = g.samplingRatio > 0 ? 2 * g.ow * g.samplingRatio : Infinity;
  const cols = Math.min(Math.ceil(width) + 2, perSample, g.shapes[l][2]);
  return g.oh * 4 * cols + g.oh * g.ow * 4 + PLAN_COST;
}

/** Planning one box, in the units of `estimatedCost` (about a fifth of pooling a 7x7 box). */
const PLAN_COST = 200;

/** An array as a worker receives it: its buffer (shared), offset and length. */
interface SharedRef {
  buffer: SharedArrayBuffer;
  byteOffset: number;
  length: number;
}

/**
 * `a` itself when it lives in shared memory (e.g. the heap of the threaded wasm build), else a
 * cached shared copy (`copyIn`: with `a`'s values).
 */
function asShared(key: string, a: Float32Array, copyIn: boolean): Float32Array {
  if (a.buffer instanceof SharedArrayBuffer) return a;
  const s = shared(key, a.length);
  if (copyIn) s.set(a);
  return s;
}

function ref(a: Float32Array): SharedRef {
  return { buffer: a.buffer as SharedArrayBuffer, byteOffset: a.byteOffset, length: a.length };
}

/**
 * The forward pass of the `js` engine on `threads` threads into `out` (the caller checked that it
 * is worth it): boxes are cut into contiguous ranges of about equal estimated work, and each
 * thread plans its own range. Arrays in
 * shared memory are used in place; others go through shared copies.
 */
export function forwardParallel(
  feats: Float32Array[],
  g: PoolGeometry,
  C: number,
  out: Float32Array,
  heap?: HeapScratch,
): void {
  const { oh, ow } = g;
  const onHeap = onSharedHeap(heap, [...feats, out]);
  const ws = pool(onHeap?.memory);
  const cost = Float64Array.from({ length: g.images.length }, (_, r) => estimatedCost(g, r));
  const cuts = cutByCost(cost, ws.length + 1);
  const sf = feats.map((f, l) => asShared(`feat${l}`, f, true));
  const so = asShared("out", out, false);
  const jobs = ws.map((w, i) =>
    post(w, g, {
      op: "forward",
      maps: sf.map(ref),
      C,
      out: ref(so),
      r0: cuts[i + 1],
      r1: cuts[i + 2],
      scratch: onHeap ? ref(onHeap.scratch[i + 1]) : undefined,
    })
  );
  const [ax, scratch] = onHeap ? [heapAxpy0(onHeap), onHeap.scratch[0]] : [axpyLoop, undefined];
  // Each thread plans its own boxes.
  const plans = planAll(g, cuts[0], cuts[1]);
  forwardRange(sf, g.shapes, plans, oh, ow, C, so, cuts[0], cuts[1], ax, scratch);
  wait(jobs);
  if (so !== out) out.set(so);
}

/**
 * The backward pass of the `js` engine on `threads` threads into `grads` (one array per level):
 * each level's rows are cut into bands of about equal estimated work.
 */
export function backwardParallel(
  G: Float32Array,
  g: PoolGeometry,
  plans: BoxPlan[],
  grads: Float32Array[],
  heap?: HeapScratch,
): void {
  const { oh, ow, shapes } = g;
  const onHeap = onSharedHeap(heap, [G, ...grads]);
  const ws = pool(onHeap?.memory);
  const parts = ws.length + 1;
  // Work per feature row of each level: every box adds its used columns to its rows.
  const rowCost = shapes.map(([, H]) => new Float64Array(H));
  for (const pl of plans) {
    if (pl.ys.len === 0 || pl.xs.len === 0) continue;
    const per = oh * pl.xs.used.length + (oh * ow * pl.xs.used.length) / pl.ys.len;
    for (let j = 0; j < pl.ys.len; j++) rowCost[pl.level][pl.ys.lo + j] += per;
  }
  const cuts = rowCost.map((rc) => cutByCost(rc, parts));
  const bandsOf = (i: number) => cuts.map((c) => [c[i], c[i + 1]] as [number, number]);
  const sg = asShared("grad-in", G, true);
  const sd = grads.map((d, l) => asShared(`grad${l}`, d, false));
  const jobs = ws.map((w, i) =>
    post(w, g, {
      op: "backward",
      maps: sd.map(ref),
      g: ref(sg),
      bands: bandsOf(i + 1),
      scratch: onHeap ? ref(onHeap.scratch[i + 1]) : undefined,
    })
  );
  const [ax, scratch] = onHeap ? [heapAxpy0(onHeap), onHeap.scratch[0]] : [axpyLoop, undefined];
  backwardBand(sg, shapes, plans, oh, ow, sd, bandsOf(0), ax, scratch);
  wait(jobs);
  sd.forEach((d, l) => d !== grads[l] && grads[l].set(d));
}
