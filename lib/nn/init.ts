/**
 * Parameter initialisation as torchvision and the SSM authors do it, deterministic per seed.
 *
 * Each initialiser draws from tfjs' seeded random ops with a seed taken from a
 * {@linkcode SeedSequence}, so a model built twice with the same seed has identical weights.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Hands out successive integer seeds from a starting seed. */
export class SeedSequence {
  private next: number;
  /** @param seed the starting seed */
  constructor(seed = 0) {
    this.next = Math.floor(seed) * 1000003 + 17;
  }
  /** The next seed. */
  take(): number {
    this.next = (this.next * 48271 + 11) % 2147483647;
    return this.next;
  }
}

/** The initialisation schemes used by the SSM's layers. */
export type InitScheme =
  /** `nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")`: N(0, 2/fan_out) */
  | { kind: "kaimingNormalFanOut" }
  /** `nn.init.kaiming_uniform_(w, a)`: U(±sqrt(6/((1+a²)·fan_in))) */
  | { kind: "kaimingUniform"; a: number }
  /** `nn.init.normal_(w, std)` */
  | { kind: "normal"; std: number }
  /** `nn.init.uniform_(w, -bound, bound)` */
  | { kind: "uniform"; bound: number }
  /** constant value */
  | { kind: "constant"; value: number };

/** PyTorch's default `nn.Linear` / `nn.Conv2d` weight init: kaiming_uniform with a = √5. */
export const TORCH_DEFAULT_WEIGHT_INIT: InitScheme = { kind: "kaimingUniform", a: Math.sqrt(5) };

/**
 * Draws a tensor of `shape` (tfjs layout) with the given scheme.
 *
 * @param shape tfjs shape of the tensor
 * @param scheme the scheme
 * @param fanIn fan-in as PyTorch computes it (`in * kh * kw`)
 * @param fanOut fan-out as PyTorch computes it (`out * kh * kw`)
 * @param seeds seed source
 */
export function initTensor(
  shape: number[],
  scheme: InitScheme,
  fanIn: number,
  fanOut: number,
  seeds: SeedSequence,
): tf.Tensor {
  switch (scheme.kind) {
    case "kaimingNormalFanOut":
      return tf.randomNormal(shape, 0, Math.sqrt(2 / fanOut), "float32", seeds.take());
    case "kaimingUniform": {
      const bound = Math.sqrt(6 / ((1 + scheme.a * scheme.a) * fanIn));
      return tf.randomUniform(shape, -bound, bound, "float32", seeds.take());
    }
    case "normal":
      return tf.randomNormal(shape, 0, scheme.std, "float32", seeds.take());
    case "uniform":
      return tf.randomUniform(shape, -scheme.bound, scheme.bound, "float32", seeds.take());
    case "constant":
      return tf.fill(shape, scheme.value);
  }
}

/** PyTorch's default bias init for a layer with `fanIn` inputs: U(±1/√fan_in). */
export function torchDefaultBiasInit(fanIn: number): InitScheme {
  return { kind: "uniform", bound: fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0 };
}
