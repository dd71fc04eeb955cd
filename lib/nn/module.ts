/**
 * Parameter containers with the authors' (torchvision <= 0.12) checkpoint names.
 *
 * A {@linkcode Module} owns `tf.Variable`s in tfjs layout (NHWC activations, HWIO filters,
 * `[in, out]` linear weights) and remembers each one's PyTorch shape and layout, so that
 * checkpoints can be read and written in PyTorch layout (see `weights.ts`). Names are built like
 * PyTorch's `state_dict` keys: a child registered as `layer1` holding a child `0` holding a
 * parameter `weight` yields `layer1.0.weight`.
 *
 * @example
 * ```ts
 * import { Conv2d } from "@covid-ssm/ssm";
 * const conv = new Conv2d(3, 8, 3, { padding: 1 });
 * console.log(conv.namedParameters().map(([n]) => n)); // ["weight", "bias"]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** How a parameter's tfjs layout maps to its PyTorch layout. */
export type ParamLayout =
  /** conv weight: torch `[out, in, kh, kw]` ↔ tfjs `[kh, kw, in, out]` */
  | { kind: "conv" }
  /** transposed conv weight: torch `[in, out, kh, kw]` ↔ tfjs `[kh, kw, out, in]` */
  | { kind: "convTranspose" }
  /** linear weight: torch `[out, in]` ↔ tfjs `[in, out]` */
  | { kind: "linear" }
  /**
   * linear weight whose input is the NCHW flatten of a `[C, H, W]` map in PyTorch
   * (`k = c*H*W + y*W + x`) and the NHWC flatten in tfjs (`k = (y*W + x)*C + c`).
   */
  | { kind: "linearFromNCHW"; channels: number; height: number; width: number }
  /** vectors (biases, batch-norm parameters and statistics): same in both */
  | { kind: "identity" };

/** One named parameter or buffer of a {@linkcode Module}. */
export interface Parameter {
  /** The value in tfjs layout. */
  variable: tf.Variable;
  /** The shape in PyTorch layout (as in the authors' state_dict). */
  torchShape: number[];
  /** Layout conversion between PyTorch and tfjs. */
  layout: ParamLayout;
  /** True for buffers that are not trained by gradients (batch-norm running statistics). */
  isBuffer: boolean;
}

/** Base class of every layer and model part: named parameters and child modules. */
export class Module {
  /** Whether the module is in training mode (batch norm uses batch statistics). */
  training = false;
  /** Parameters owned directly by this module, by local name. */
  protected readonly ownParams: Map<string, Parameter> = new Map();
  /** Child modules, by local name. */
  protected readonly children: Map<string, Module> = new Map();

  /**
   * Registers a parameter owned by this module; the module keeps the value as a variable.
   *
   * @param name local name (e.g. `weight`)
   * @param value initial value in tfjs layout (kept by the variable; disposed here)
   * @param torchShape the PyTorch shape
   * @param layout the layout conversion
   * @param isBuffer true for non-trainable buffers
   */
  protected addParameter(
    name: string,
    value: tf.Tensor,
    torchShape: number[],
    layout: ParamLayout = { kind: "identity" },
    isBuffer = false,
  ): tf.Variable {
    if (this.ownParams.has(name) || this.children.has(name)) {
      throw new Error(`duplicate parameter name '${name}'`);
    }
    const variable = tf.variable(value, !isBuffer);
    value.dispose();
    this.ownParams.set(name, { variable, torchShape, layout, isBuffer });
    return variable;
  }

  /** Registers a child module under a local name and returns it. */
  addModule<M extends Module>(name: string, module: M): M {
    if (this.ownParams.has(name) || this.children.has(name)) {
      throw new Error(`duplicate module name '${name}'`);
    }
    this.children.set(name, module);
    return module;
  }

  /** The child module registered under `name`, if any. */
  child(name: string): Module | undefined {
    return this.children.get(name);
  }

  /** The child modules, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** All parameters and buffers, recursively, with their full dotted names (state_dict order). */
  namedParameters(prefix = ""): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [n, p] of this.ownParams) out.push([prefix + n, p]);
    for (const [n, c] of this.children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  /** The trainable variables (buffers excluded), recursively. */
  trainableVariables(): tf.Variable[] {
    return this.namedParameters().filter(([, p]) => !p.isBuffer).map(([, p]) => p.variable);
  }

  /** Number of trainable scalars (buffers excluded). */
  numParameters(): number {
    return this.namedParameters().filter(([, p]) => !p.isBuffer)
      .reduce((s, [, p]) => s + p.variable.size, 0);
  }

  /** Sets training mode on this module and all its children; returns `this`. */
  setTraining(mode: boolean): this {
    this.training = mode;
    for (const c of this.children.values()) c.setTraining(mode);
    return this;
  }

  /** Disposes every variable of this module and its children. */
  dispose(): void {
    for (const [, p] of this.namedParameters()) p.variable.dispose();
  }
}
