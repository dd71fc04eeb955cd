/**
 * Layers with PyTorch semantics on NHWC tensors: conv2d (symmetric padding), transposed conv,
 * batch norm (eps 1e-5, momentum 0.1, unbiased running variance), linear, ReLU and max pool.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Conv2d, BatchNorm2d } from "@covid-ssm/ssm";
 * const conv = new Conv2d(3, 8, 3, { stride: 2, padding: 1, bias: false });
 * const bn = new BatchNorm2d(8);
 * const y = bn.apply(conv.apply(tf.zeros([1, 16, 16, 3]) as tf.Tensor4D)); // [1, 8, 8, 8]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { batchNormTrain, fusedBatchNormAvailable } from "./batch_norm_kernel.ts";
import {
  type InitScheme,
  initTensor,
  SeedSequence,
  TORCH_DEFAULT_WEIGHT_INIT,
  torchDefaultBiasInit,
} from "./init.ts";
import { Module, type ParamLayout } from "./module.ts";

/** Options of {@linkcode Conv2d}. */
export interface Conv2dOptions {
  /** Stride (default 1). */
  stride?: number;
  /** Symmetric zero padding as in PyTorch (default 0). */
  padding?: number;
  /** Whether the layer has a bias (default true). */
  bias?: boolean;
  /** Weight init (default: PyTorch's default conv init). */
  weightInit?: InitScheme;
  /** Bias init (default: PyTorch's default, U(±1/√fan_in)). */
  biasInit?: InitScheme;
  /** Seed source for the init (default: seed 0). */
  seeds?: SeedSequence;
}

/** Explicit NHWC padding for a symmetric PyTorch padding `p`, or `valid` when `p` is 0. */
export function torchPadding(
  p: number,
): "valid" | [[0, 0], [number, number], [number, number], [0, 0]] {
  return p === 0 ? "valid" : [[0, 0], [p, p], [p, p], [0, 0]];
}

/** `nn.Conv2d` on NHWC input; weight `weight` ([kh,kw,in,out] here, [out,in,kh,kw] in PyTorch). */
export class Conv2d extends Module {
  /** Filter `[kh, kw, in, out]`. */
  readonly weight: tf.Variable;
  /** Bias `[out]`, or null. */
  readonly bias: tf.Variable | null;
  /** Stride. */
  readonly stride: number;
  /** Symmetric padding. */
  readonly padding: number;

  /**
   * @param inChannels input channels
   * @param outChannels output channels
   * @param kernelSize square kernel size
   * @param opts stride, padding, bias, init
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    opts: Conv2dOptions = {},
  ) {
    super();
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    const seeds = opts.seeds ?? new SeedSequence(0);
    const k = kernelSize;
    const fanIn = inChannels * k * k, fanOut = outChannels * k * k;
    this.weight = this.addParameter(
      "weight",
      initTensor(
        [k, k, inChannels, outChannels],
        opts.weightInit ?? TORCH_DEFAULT_WEIGHT_INIT,
        fanIn,
        fanOut,
        seeds,
      ),
      [outChannels, inChannels, k, k],
      { kind: "conv" },
    );
    this.bias = (opts.bias ?? true)
      ? this.addParameter(
        "bias",
        initTensor(
          [outChannels],
          opts.biasInit ?? torchDefaultBiasInit(fanIn),
          fanIn,
          fanOut,
          seeds,
        ),
        [outChannels],
      )
      : null;
  }

  /**
   * `[N,H,W,in]` → `[N,H',W',out]`, optionally followed by a ReLU. Bias and activation are fused
   * into the convolution kernel (`tf.fused.conv2d`; tfjs unfuses it when recording gradients).
   * Without either, the plain `tf.conv2d` runs (the same kernel and result): its gradient
   * computes the input's gradient only when something needs it, where the fused op's always does
   * (for the stem, the image's gradient: ~50 ms per 512 px training step on one thread).
   */
  apply(x: tf.Tensor4D, activation: FusedActivation = "linear"): tf.Tensor4D {
    const pad = torchPadding(this.padding);
    if (!this.bias && activation === "linear") {
      return tf.conv2d(x, this.weight as tf.Tensor4D, this.stride, pad);
    }
    return tf.fused.conv2d({
      x,
      filter: this.weight as tf.Tensor4D,
      strides: this.stride,
      pad,
      bias: this.bias ?? undefined,
      activation,
    });
  }
}

/** Activations fused into {@linkcode Conv2d.apply}, {@linkcode Linear.apply} and friends. */
export type FusedActivation = "linear" | "relu";

/** `nn.ConvTranspose2d` with kernel = stride and no padding (the mask head's 2x2/2 upsampling). */
export class ConvTranspose2d extends Module {
  /** Filter `[k, k, out, in]` (PyTorch `[in, out, k, k]`). */
  readonly weight: tf.Variable;
  /** Bias `[out]`. */
  readonly bias: tf.Variable;

  /**
   * @param inChannels input channels
   * @param outChannels output channels
   * @param kernelSize kernel size, equal to the stride
   * @param opts init options
   */
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize = 2,
    opts: { weightInit?: InitScheme; biasInit?: InitScheme; seeds?: SeedSequence } = {},
  ) {
    super();
    const seeds = opts.seeds ?? new SeedSequence(0);
    const k = kernelSize;
    // PyTorch computes fan_in of a ConvTranspose weight [in, out, k, k] from dim 1: out*k*k.
    const fanIn = outChannels * k * k, fanOut = inChannels * k * k;
    this.weight = this.addParameter(
      "weight",
      initTensor(
        [k, k, outChannels, inChannels],
        opts.weightInit ?? TORCH_DEFAULT_WEIGHT_INIT,
        fanIn,
        fanOut,
        seeds,
      ),
      [inChannels, outChannels, k, k],
      { kind: "convTranspose" },
    );
    this.bias = this.addParameter(
      "bias",
      initTensor([outChannels], opts.biasInit ?? torchDefaultBiasInit(fanIn), fanIn, fanOut, seeds),
      [outChannels],
    );
  }

  /**
   * `[N,H,W,in]` → `[N,kH,kW,out]`, optionally followed by a ReLU. With kernel = stride the
   * output blocks do not overlap, so the layer is one matrix product (see
   * {@linkcode ConvTranspose2d.applyBlocks}) followed by an interleave.
   */
  apply(x: tf.Tensor4D, activation: FusedActivation = "linear"): tf.Tensor4D {
    return tf.tidy(() => {
      const [n, h, w] = x.shape;
      return blocksToImage(this.applyBlocks(x, activation), n, h, w, this.kernelSize);
    });
  }

  /**
   * The output in block order: `[N·H·W·k·k, out]`, row `((n·H + y)·W + x)·k·k + i·k + j` holding
   * output pixel `(n, y·k + i, x·k + j)`. It is `[N·H·W, in] · [in, k·k·out]` with bias and
   * activation fused; per-pixel layers that follow (a 1x1 conv) can run on it before
   * {@linkcode blocksToImage}.
   */
  applyBlocks(x: tf.Tensor4D, activation: FusedActivation = "linear"): tf.Tensor2D {
    return tf.tidy(() => {
      const [n, h, w, cin] = x.shape;
      const k = this.kernelSize, cout = this.outChannels;
      const x2 = tf.reshape(x, [n * h * w, cin]) as tf.Tensor2D;
      // weight [k, k, out, in] → [in, k·k·out] with columns (i, j, out).
      const wm = tf.reshape(tf.transpose(this.weight, [3, 0, 1, 2]), [cin, k * k * cout]);
      const y = tf.fused.matMul({
        a: x2,
        b: wm as tf.Tensor2D,
        bias: tf.tile(this.bias, [k * k]),
        activation,
      });
      return tf.reshape(y, [n * h * w * k * k, cout]) as tf.Tensor2D;
    });
  }
}

/**
 * Interleaves block-ordered rows (see {@linkcode ConvTranspose2d.applyBlocks}) `[N·H·W·k·k, C]`
 * into the image `[N, H·k, W·k, C]`.
 */
export function blocksToImage(
  blocks: tf.Tensor2D,
  n: number,
  h: number,
  w: number,
  k: number,
): tf.Tensor4D {
  return tf.tidy(() => {
    const c = blocks.shape[1];
    const t = tf.transpose(tf.reshape(blocks, [n * h, w, k, k * c]), [0, 2, 1, 3]);
    return tf.reshape(t, [n, h * k, w * k, c]) as tf.Tensor4D;
  });
}

/**
 * `nn.BatchNorm2d` on NHWC input. In training mode it normalises with the batch statistics
 * and updates the running statistics (momentum 0.1, unbiased variance, as PyTorch); in eval
 * mode it is the affine map given by the running statistics. Training mode runs as one fused
 * kernel (and fused gradients) on `wasm` and `cpu`, as tfjs ops elsewhere.
 */
export class BatchNorm2d extends Module {
  /** Scale γ. */
  readonly weight: tf.Variable;
  /** Shift β. */
  readonly bias: tf.Variable;
  /** Running mean (buffer). */
  readonly runningMean: tf.Variable;
  /** Running variance (buffer). */
  readonly runningVar: tf.Variable;

  /**
   * @param numFeatures channels
   * @param eps variance epsilon (PyTorch's 1e-5)
   * @param momentum running-statistics momentum (PyTorch's 0.1)
   */
  /**
   * Use the fused training-mode kernels where the backend has them (`wasm`, `cpu`; see
   * `batch_norm_kernel.ts`). Default true; false forces the composed tfjs ops.
   */
  fused = true;

  constructor(readonly numFeatures: number, readonly eps = 1e-5, readonly momentum = 0.1) {
    super();
    this.weight = this.addParameter("weight", tf.ones([numFeatures]), [numFeatures]);
    this.bias = this.addParameter("bias", tf.zeros([numFeatures]), [numFeatures]);
    this.runningMean = this.addParameter("running_mean", tf.zeros([numFeatures]), [numFeatures], {
      kind: "identity",
    }, true);
    this.runningVar = this.addParameter("running_var", tf.ones([numFeatures]), [numFeatures], {
      kind: "identity",
    }, true);
  }

  /** Normalises `[N,H,W,C]`, optionally followed by a ReLU (fused where possible). */
  apply(x: tf.Tensor4D, activation: "linear" | "relu" = "linear"): tf.Tensor4D {
    if (!this.training) {
      return tf.tidy(() => {
        const scale = tf.mul(this.weight, tf.rsqrt(tf.add(this.runningVar, this.eps)));
        const shift = tf.sub(this.bias, tf.mul(this.runningMean, scale));
        const y = tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
        return activation === "relu" ? tf.relu(y) : y;
      });
    }
    let y: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor;
    if (this.fused && fusedBatchNormAvailable()) {
      ({ y, mean, variance } = batchNormTrain(x, this.weight, this.bias, this.eps, activation));
    } else {
      ({ mean, variance } = tf.moments(x, [0, 1, 2]));
      y = tf.tidy(() => {
        const z = tf.add(
          tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.eps))), this.weight),
          this.bias,
        );
        return activation === "relu" ? tf.relu(z) : z;
      });
    }
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    const m = this.momentum;
    const [rm, rv] = tf.tidy(() => {
      // Running statistics are a side effect: they do not feed the output, so no gradient flows.
      return [
        tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)),
        tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, (m * n) / Math.max(n - 1, 1))),
      ];
    });
    this.runningMean.assign(rm);
    this.runningVar.assign(rv);
    rm.dispose();
    rv.dispose();
    mean.dispose();
    variance.dispose();
    return y as tf.Tensor4D;
  }
}

/** `nn.Linear`: `y = x · W + b` with W stored `[in, out]` (PyTorch `[out, in]`). */
export class Linear extends Module {
  /** Weight `[in, out]`. */
  readonly weight: tf.Variable;
  /** Bias `[out]`. */
  readonly bias: tf.Variable;

  /**
   * @param inFeatures inputs
   * @param outFeatures outputs
   * @param opts init and layout (use `linearFromNCHW` for a layer fed with flattened NHWC maps
   *   whose PyTorch twin was fed NCHW flattens)
   */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: {
      weightInit?: InitScheme;
      biasInit?: InitScheme;
      seeds?: SeedSequence;
      layout?: ParamLayout;
    } = {},
  ) {
    super();
    const seeds = opts.seeds ?? new SeedSequence(0);
    this.weight = this.addParameter(
      "weight",
      initTensor(
        [inFeatures, outFeatures],
        opts.weightInit ?? TORCH_DEFAULT_WEIGHT_INIT,
        inFeatures,
        outFeatures,
        seeds,
      ),
      [outFeatures, inFeatures],
      opts.layout ?? { kind: "linear" },
    );
    this.bias = this.addParameter(
      "bias",
      initTensor(
        [outFeatures],
        opts.biasInit ?? torchDefaultBiasInit(inFeatures),
        inFeatures,
        outFeatures,
        seeds,
      ),
      [outFeatures],
    );
  }

  /** `[N, in]` → `[N, out]`, optionally followed by a ReLU (bias and activation fused). */
  apply(x: tf.Tensor2D, activation: FusedActivation = "linear"): tf.Tensor2D {
    return tf.fused.matMul({
      a: x,
      b: this.weight as tf.Tensor2D,
      bias: this.bias,
      activation,
    }) as tf.Tensor2D;
  }
}

/** PyTorch `nn.MaxPool2d(kernel, stride, padding)` on NHWC (padding acts as −∞). */
export function maxPool2d(x: tf.Tensor4D, kernel = 3, stride = 2, padding = 1): tf.Tensor4D {
  return tf.maxPool(x, kernel, stride, padding === 0 ? "valid" : padding);
}

function foldConvBn(conv: Conv2d, bn: BatchNorm2d): { filter: tf.Tensor4D; bias: tf.Tensor1D } {
  return tf.tidy(() => {
    const scale = tf.mul(bn.weight, tf.rsqrt(tf.add(bn.runningVar, bn.eps)));
    const filter = tf.mul(conv.weight, scale) as tf.Tensor4D;
    let shift = tf.sub(bn.bias, tf.mul(bn.runningMean, scale));
    if (conv.bias) shift = tf.add(shift, tf.mul(conv.bias, scale));
    return { filter, bias: shift as tf.Tensor1D };
  });
}

/**
 * `bn(conv(x))` in eval mode (running statistics), optionally followed by a ReLU, as one fused
 * convolution: the batch norm is folded into the filter (`W·γ/√(σ²+ε)`) and a bias
 * (`β − μ·γ/√(σ²+ε)`). The folding is recomputed on every call (an element-wise pass over the
 * filter, ~1% of the convolution's time at 512 px) rather than cached: the result then always
 * follows the current parameters, the model holds no hidden tensors, and while gradients are
 * recorded they reach the conv and batch-norm parameters through the folding. Throws when `bn`
 * is in training mode (batch statistics cannot be folded).
 */
export function convBatchNormEval(
  conv: Conv2d,
  bn: BatchNorm2d,
  x: tf.Tensor4D,
  activation: FusedActivation = "linear",
): tf.Tensor4D {
  if (bn.training) throw new Error("convBatchNormEval: the batch norm is in training mode");
  const run = (filter: tf.Tensor4D, bias: tf.Tensor1D) =>
    tf.fused.conv2d({
      x,
      filter,
      strides: conv.stride,
      pad: torchPadding(conv.padding),
      bias,
      activation,
    });
  return tf.tidy(() => {
    const f = foldConvBn(conv, bn);
    return run(f.filter, f.bias);
  });
}
