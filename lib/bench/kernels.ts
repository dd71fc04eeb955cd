/**
 * Kernel throughput benchmark: the convolutions of a ResNet18-FPN SSM at 512x512 input and the
 * matrix product, per backend, in GFLOP/s.
 *
 * For each convolution shape it times the forward pass (`Conv2D`), the input gradient
 * (`Conv2DBackpropInput`) and the filter gradient (`Conv2DBackpropFilter`); all three do the same
 * `2*N*OH*OW*KH*KW*C*CO` FLOPs. For the 2x2/2 transposed convolution of the mask head the forward
 * pass is `Conv2DBackpropInput`, its input gradient `Conv2D`. The matrix product is timed plain and
 * with `transposeA` / `transposeB`. Each measurement is one warm-up run, then the median of
 * `reps` runs, each ending with the output read back (so asynchronous backends are timed fully).
 *
 * @example
 * ```ts
 * import { formatKernelTable, runKernelBench } from "./kernels.ts";
 * const result = await runKernelBench({ backends: ["wasm"], reps: 3 });
 * console.log(formatKernelTable(result));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { type BackendName, initBackend } from "../backend/mod.ts";

/** One convolution of the benchmark. */
export interface ConvBenchShape {
  /** Where the convolution occurs in the model. */
  name: string;
  /** Input `[N, H, W, C]`. */
  input: [number, number, number, number];
  /** Kernel size. */
  kernel: number;
  /** Output channels. */
  outChannels: number;
  /** Stride. */
  stride: number;
  /** Symmetric (torch-style) zero padding. */
  pad: number;
  /** True for a transposed convolution (input is its `dy`-side tensor). */
  transposed?: boolean;
}

/**
 * The convolution shapes of the ResNet18 backbone (3 stages), the single-level FPN and the mask
 * head, for one 512x512 image (`rois` RoIs in the mask head).
 */
export function resnet18ConvShapes(batch = 1, rois = 16): ConvBenchShape[] {
  return [
    {
      name: "stem 7x7/2",
      input: [batch, 512, 512, 3],
      kernel: 7,
      outChannels: 64,
      stride: 2,
      pad: 3,
    },
    {
      name: "layer1 3x3",
      input: [batch, 128, 128, 64],
      kernel: 3,
      outChannels: 64,
      stride: 1,
      pad: 1,
    },
    {
      name: "layer2 3x3/2",
      input: [batch, 128, 128, 64],
      kernel: 3,
      outChannels: 128,
      stride: 2,
      pad: 1,
    },
    {
      name: "layer2 3x3",
      input: [batch, 64, 64, 128],
      kernel: 3,
      outChannels: 128,
      stride: 1,
      pad: 1,
    },
    {
      name: "layer2 down 1x1/2",
      input: [batch, 128, 128, 64],
      kernel: 1,
      outChannels: 128,
      stride: 2,
      pad: 0,
    },
    {
      name: "layer3 3x3/2",
      input: [batch, 64, 64, 128],
      kernel: 3,
      outChannels: 256,
      stride: 2,
      pad: 1,
    },
    {
      name: "layer3 3x3",
      input: [batch, 32, 32, 256],
      kernel: 3,
      outChannels: 256,
      stride: 1,
      pad: 1,
    },
    {
      name: "layer3 down 1x1/2",
      input: [batch, 64, 64, 128],
      kernel: 1,
      outChannels: 256,
      stride: 2,
      pad: 0,
    },
    {
      name: "fpn lateral 1x1",
      input: [batch, 32, 32, 256],
      kernel: 1,
      outChannels: 256,
      stride: 1,
      pad: 0,
    },
    {
      name: "fpn out 3x3",
      input: [batch, 32, 32, 256],
      kernel: 3,
      outChannels: 256,
      stride: 1,
      pad: 1,
    },
    {
      name: "mask head 3x3",
      input: [rois, 14, 14, 256],
      kernel: 3,
      outChannels: 256,
      stride: 1,
      pad: 1,
    },
    {
      name: "mask convT 2x2/2",
      input: [rois, 14, 14, 256],
      kernel: 2,
      outChannels: 256,
      stride: 2,
      pad: 0,
      transposed: true,
    },
  ];
}

/** One row of the result: GFLOP/s (null: not run or failed) per measured column. */
export interface KernelBenchRow {
  /** Backend the row was measured on. */
  backend: string;
  /** Shape name, e.g. `layer1 3x3` or `matMul 1024^3`. */
  name: string;
  /** Human-readable shape. */
  shape: string;
  /** GFLOPs of one run. */
  gflop: number;
  /** Throughput per column (`forward`, `backwardInput`, `backwardFilter`, or matMul columns). */
  gflops: Record<string, number | null>;
  /** Median milliseconds per column. */
  ms: Record<string, number | null>;
  /** Errors per column, when a kernel failed. */
  errors?: Record<string, string>;
}

/** Result of {@linkcode runKernelBench}. */
export interface KernelBenchResult {
  /** When the run started (ISO 8601). */
  date: string;
  /** Runs per measurement after the warm-up. */
  reps: number;
  /** Backends measured and the ones that could not be initialised (with the reason). */
  backends: { name: string; ok: boolean; reason?: string }[];
  /** The measurements. */
  rows: KernelBenchRow[];
}

/** Options of {@linkcode runKernelBench}. */
export interface KernelBenchOptions {
  /** Backends to measure (default: every one that initialises, except the slow `cpu`). */
  backends?: Exclude<BackendName, "auto">[];
  /** Timed runs per measurement (default 5; the median is reported). */
  reps?: number;
  /** Images per batch for the backbone shapes (default 1). */
  batch?: number;
  /** Matrix size of the matMul ceiling (default 1024). */
  matMulSize?: number;
  /** Only shapes whose name contains one of these strings (default: all). */
  only?: string[];
  /** Called after each row (for progress output). */
  onRow?: (row: KernelBenchRow) => void;
}

/**
 * The default backend list: everything but `cpu` (one 128x128x64 backward pass takes minutes);
 * a software WebGPU adapter is skipped too unless `webgpu` is asked for.
 */
export const DEFAULT_BENCH_BACKENDS: readonly Exclude<BackendName, "auto">[] = [
  "tensorflow-gpu",
  "tensorflow",
  "webgpu",
  "wasm",
];

/** True when the WebGPU adapter is a software fallback (Mesa's llvmpipe). */
async function softwareAdapter(): Promise<boolean> {
  // deno-lint-ignore no-explicit-any
  const gpu = (navigator as any).gpu;
  if (!gpu) return false;
  try {
    const adapter = await gpu.requestAdapter();
    return Boolean(adapter?.isFallbackAdapter || adapter?.info?.isFallbackAdapter);
  } catch {
    return false;
  }
}

async function timeMedian(reps: number, f: () => tf.Tensor): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    const out = f();
    await out.data();
    const ms = performance.now() - t0;
    out.dispose();
    return ms;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push(await once());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

async function measure(
  row: KernelBenchRow,
  column: string,
  reps: number,
  f: () => tf.Tensor,
): Promise<void> {
  try {
    const ms = await timeMedian(reps, f);
    row.ms[column] = ms;
    row.gflops[column] = row.gflop / ms * 1e3;
  } catch (e) {
    row.ms[column] = null;
    row.gflops[column] = null;
    row.errors = { ...row.errors, [column]: (e as Error).message.split("\n")[0] };
  }
}

async function benchConv(
  backend: string,
  s: ConvBenchShape,
  reps: number,
): Promise<KernelBenchRow> {
  const [n, h, w, c] = s.input;
  const k = s.kernel;
  const pad = [[0, 0], [s.pad, s.pad], [s.pad, s.pad], [0, 0]] as tf.backend_util.ExplicitPadding;
  // For a transposed convolution the model's input plays the role of `dy` of a forward conv.
  const big = s.transposed
    ? [n, (h - 1) * s.stride + k - 2 * s.pad, (w - 1) * s.stride + k - 2 * s.pad, s.outChannels]
    : [n, h, w, c];
  const filterShape = s.transposed ? [k, k, s.outChannels, c] : [k, k, c, s.outChannels];
  const oh = s.transposed ? h : Math.floor((h + 2 * s.pad - k) / s.stride) + 1;
  const ow = s.transposed ? w : Math.floor((w + 2 * s.pad - k) / s.stride) + 1;
  const small = [n, oh, ow, s.transposed ? c : s.outChannels];
  const gflop = 2 * n * oh * ow * k * k * big[3] * small[3] / 1e9;
  const row: KernelBenchRow = {
    backend,
    name: s.name,
    shape: `[${s.input}] k${k}/${s.stride} -> ${s.transposed ? `[${big}]` : `[${small}]`}`,
    gflop,
    gflops: {},
    ms: {},
  };
  const x = tf.randomNormal(big);
  const filter = tf.randomNormal(filterShape);
  const dy = tf.randomNormal(small);
  const conv = () => tf.conv2d(x as tf.Tensor4D, filter as tf.Tensor4D, s.stride, pad);
  const backInput = () =>
    tf.engine().runKernel("Conv2DBackpropInput", { dy, filter }, {
      strides: [s.stride, s.stride],
      pad,
      dataFormat: "NHWC",
      inputShape: big,
    }) as tf.Tensor;
  const backFilter = () =>
    tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      strides: [s.stride, s.stride],
      pad,
      dataFormat: "NHWC",
      filterShape,
    }) as tf.Tensor;
  try {
    if (s.transposed) {
      await measure(row, "forward", reps, backInput);
      await measure(row, "backwardInput", reps, conv);
    } else {
      await measure(row, "forward", reps, conv);
      await measure(row, "backwardInput", reps, backInput);
    }
    await measure(row, "backwardFilter", reps, backFilter);
  } finally {
    tf.dispose([x, filter, dy]);
  }
  return row;
}

async function benchMatMul(backend: string, size: number, reps: number): Promise<KernelBenchRow> {
  const row: KernelBenchRow = {
    backend,
    name: `matMul ${size}^3`,
    shape: `[${size},${size}] x [${size},${size}]`,
    gflop: 2 * size ** 3 / 1e9,
    gflops: {},
    ms: {},
  };
  const a = tf.randomNormal([size, size]);
  const b = tf.randomNormal([size, size]);
  try {
    await measure(row, "plain", reps, () => tf.matMul(a, b));
    await measure(row, "transposeA", reps, () => tf.matMul(a, b, true, false));
    await measure(row, "transposeB", reps, () => tf.matMul(a, b, false, true));
  } finally {
    tf.dispose([a, b]);
  }
  return row;
}

/**
 * Measures every shape of {@linkcode resnet18ConvShapes} and the matMul ceiling on each backend.
 * Backends that cannot be initialised are listed in the result with the reason.
 */
export async function runKernelBench(options: KernelBenchOptions = {}): Promise<KernelBenchResult> {
  const reps = options.reps ?? 5;
  if (!Number.isInteger(reps) || reps < 1) {
    throw new Error(`reps must be a positive integer, got ${reps}`);
  }
  const result: KernelBenchResult = {
    date: new Date().toISOString(),
    reps,
    backends: [],
    rows: [],
  };
  const shapes = resnet18ConvShapes(options.batch ?? 1).filter((s) =>
    !options.only || options.only.some((o) => s.name.includes(o))
  );
  const includeMatMul = !options.only || options.only.some((o) => "matMul".includes(o));
  for (const backend of options.backends ?? DEFAULT_BENCH_BACKENDS) {
    if (!options.backends && backend === "webgpu" && await softwareAdapter()) {
      result.backends.push({
        name: backend,
        ok: false,
        reason:
          "software WebGPU adapter (e.g. llvmpipe), slow; pass --backend webgpu to measure it",
      });
      continue;
    }
    try {
      await initBackend(backend);
    } catch (e) {
      result.backends.push({ name: backend, ok: false, reason: (e as Error).message });
      continue;
    }
    result.backends.push({ name: backend, ok: true });
    const rows: KernelBenchRow[] = [];
    for (const s of shapes) rows.push(await benchConv(backend, s, reps));
    if (includeMatMul) rows.push(await benchMatMul(backend, options.matMulSize ?? 1024, reps));
    for (const r of rows) {
      result.rows.push(r);
      options.onRow?.(r);
    }
  }
  return result;
}

const fmt = (v: number | null | undefined) => v == null ? "-" : v.toFixed(1);

/** Formats the result as a fixed-width text table (GFLOP/s). */
export function formatKernelTable(result: KernelBenchResult): string {
  const lines: string[] = [];
  const head = (cols: string[]) =>
    `${"backend".padEnd(15)}${"shape".padEnd(20)}${"GFLOP".padStart(7)}` +
    cols.map((c) => c.padStart(12)).join("");
  const conv = result.rows.filter((r) => !r.name.startsWith("matMul"));
  const mm = result.rows.filter((r) => r.name.startsWith("matMul"));
  const line = (r: KernelBenchRow, cols: string[]) =>
    `${r.backend.padEnd(15)}${r.name.padEnd(20)}${r.gflop.toFixed(2).padStart(7)}` +
    cols.map((c) => fmt(r.gflops[c]).padStart(12)).join("");
  if (conv.length) {
    const cols = ["forward", "backwardInput", "backwardFilter"];
    lines.push("convolutions, GFLOP/s (forward | input gradient | filter gradient)");
    lines.push(head(["fwd", "bwd-input", "bwd-filter"]));
    for (const r of conv) lines.push(line(r, cols));
  }
  if (mm.length) {
    lines.push("", "matrix product, GFLOP/s");
    lines.push(head(["plain", "transposeA", "transposeB"]));
    for (const r of mm) lines.push(line(r, ["plain", "transposeA", "transposeB"]));
  }
  for (const b of result.backends.filter((b) => !b.ok)) {
    lines.push(`skipped ${b.name}: ${b.reason}`);
  }
  for (const r of result.rows.filter((r) => r.errors)) {
    for (const [c, e] of Object.entries(r.errors!)) {
      lines.push(`error ${r.backend} ${r.name} ${c}: ${e}`);
    }
  }
  return lines.join("\n");
}
