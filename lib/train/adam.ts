/**
 * Adam with PyTorch's semantics (`torch.optim.Adam`, not AdamW): weight decay is added to the
 * gradient, moments are bias-corrected, `eps` is added to the bias-corrected root of the second
 * moment. On `wasm` and `cpu` the update runs as one fused kernel (`adam_kernel.ts`), elsewhere as
 * tfjs ops. One optimiser (one state) serves both steps of the SSM's training iteration; each
 * parameter keeps its own step count, advanced only when the parameter is updated.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs-core";
 * import { Adam } from "@covid-ssm/ssm";
 * const w = tf.variable(tf.tensor1d([1, 2]));
 * const opt = new Adam({ lr: 1e-3 });
 * opt.step(new Map([["w", { variable: w, grad: tf.tensor1d([0.5, -0.5]) }]]));
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { fusedAdamAvailable, fusedAdamUpdate } from "./adam_kernel.ts";

/** Adam hyper-parameters (defaults: the paper's lr 1e-5 and weight decay 1e-3). */
export interface AdamConfig {
  /** Learning rate. */
  lr: number;
  /** β₁. */
  beta1: number;
  /** β₂. */
  beta2: number;
  /** ε. */
  eps: number;
  /** L2 weight decay added to the gradient. */
  weightDecay: number;
}

/** The paper's optimiser settings. */
export const DEFAULT_ADAM: AdamConfig = {
  lr: 1e-5,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 1e-3,
};

/** A parameter and its gradient for one update. */
export interface ParamGrad {
  /** The parameter. */
  variable: tf.Variable;
  /** Its gradient (not disposed by the optimiser). */
  grad: tf.Tensor;
}

interface SlotState {
  m: tf.Variable;
  v: tf.Variable;
  step: number;
}

/** Serialisable optimiser state: per parameter name, its step and moment values. */
export interface AdamState {
  /** Hyper-parameters. */
  config: AdamConfig;
  /** Per parameter: step count and first/second moments (flat, tfjs layout). */
  slots: Record<string, { step: number; m: Float32Array; v: Float32Array; shape: number[] }>;
}

/** PyTorch-style Adam over named parameters. */
export class Adam {
  /** Hyper-parameters (restored by {@linkcode Adam.setState}). */
  config: AdamConfig;
  private slots = new Map<string, SlotState>();

  /**
   * @param config hyper-parameters (defaults: {@linkcode DEFAULT_ADAM})
   * @param fused use the fused update kernel where the backend has one (`wasm`, `cpu`; default
   *   true); false forces the composed tfjs ops everywhere
   */
  constructor(config: Partial<AdamConfig> = {}, readonly fused = true) {
    this.config = { ...DEFAULT_ADAM, ...config };
  }

  /** Step count of a parameter (0 before its first update). */
  stepOf(name: string): number {
    return this.slots.get(name)?.step ?? 0;
  }

  /**
   * Updates each given parameter with its gradient.
   *
   * @param params parameter name → variable and gradient
   * @param lrOf optional per-parameter learning rate (by name); parameters it returns
   *   `undefined` for, and all parameters without it, use `config.lr`
   */
  step(params: Map<string, ParamGrad>, lrOf?: (name: string) => number | undefined): void {
    const { beta1, beta2, eps, weightDecay } = this.config;
    const fused = this.fused && fusedAdamAvailable();
    for (const [name, { variable, grad }] of params) {
      const lr = lrOf?.(name) ?? this.config.lr;
      let s = this.slots.get(name);
      if (!s) {
        // tidy frees the initial values; the variables keep their own copies.
        s = tf.tidy(() => ({
          m: tf.variable(tf.zerosLike(variable), false),
          v: tf.variable(tf.zerosLike(variable), false),
          step: 0,
        }));
        this.slots.set(name, s);
      }
      s.step += 1;
      const bc1 = 1 - beta1 ** s.step;
      const bc2 = 1 - beta2 ** s.step;
      const slot = s;
      const { m, v, param: p } = fused
        ? fusedAdamUpdate(variable, grad, slot.m, slot.v, {
          lr,
          beta1,
          beta2,
          eps,
          weightDecay,
          step: slot.step,
        })
        : tf.tidy(() => {
          const g = weightDecay !== 0 ? tf.add(grad, tf.mul(variable, weightDecay)) : grad;
          const m = tf.add(tf.mul(slot.m, beta1), tf.mul(g, 1 - beta1));
          const v = tf.add(tf.mul(slot.v, beta2), tf.mul(tf.square(g), 1 - beta2));
          const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps);
          const p = tf.sub(variable, tf.mul(tf.div(m, denom), lr / bc1));
          return { m, v, param: p };
        });
      slot.m.assign(m);
      slot.v.assign(v);
      variable.assign(p);
      m.dispose();
      v.dispose();
      p.dispose();
    }
  }

  /** A copy of the state (moments read to the CPU), for checkpoints. */
  getState(): AdamState {
    const slots: AdamState["slots"] = {};
    for (const [name, s] of this.slots) {
      slots[name] = {
        step: s.step,
        m: s.m.dataSync() as Float32Array,
        v: s.v.dataSync() as Float32Array,
        shape: s.m.shape,
      };
    }
    return { config: { ...this.config }, slots };
  }

  /** Restores a state (hyper-parameters included) from {@linkcode Adam.getState}. */
  setState(state: AdamState): void {
    this.dispose();
    this.config = { ...state.config };
    for (const [name, s] of Object.entries(state.slots)) {
      this.slots.set(
        name,
        tf.tidy(() => ({
          step: s.step,
          m: tf.variable(tf.tensor(s.m, s.shape), false),
          v: tf.variable(tf.tensor(s.v, s.shape), false),
        })),
      );
    }
  }

  /** Disposes the moment variables. */
  dispose(): void {
    for (const s of this.slots.values()) {
      s.m.dispose();
      s.v.dispose();
    }
    this.slots.clear();
  }
}
