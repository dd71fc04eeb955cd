/**
 * Registers tfjs' gradient functions.
 *
 * `@tensorflow/tfjs-core`'s Node entry point (the one Deno loads) registers no gradients: without
 * them `tf.grads`, `tf.variableGrads` and optimizers fail with "gradient function not found". The
 * union package `@tensorflow/tfjs` does register them, into the process-global gradient registry
 * that every tfjs package shares (its bundle `require`s the same `@tensorflow/tfjs-core`; the
 * engine and the kernel/gradient registries are globals). It also loads tfjs-layers, -converter
 * and -data and registers the same `cpu` backend package we use; its WebGL backend registers
 * nothing outside a browser. Importing this module once (the backend module does) makes
 * `tf.grads` work.
 *
 * @example
 * ```ts
 * import { gradientsRegistered } from "@covid-ssm/ssm/backend";
 * console.log(gradientsRegistered()); // true
 * ```
 *
 * @module
 */
import "@tensorflow/tfjs";
import * as tf from "@tensorflow/tfjs-core";

/** True when tfjs' gradient functions are registered (checked on `Conv2D` and `Sum`). */
export function gradientsRegistered(): boolean {
  return tf.getGradient("Conv2D") != null && tf.getGradient("Sum") != null;
}
