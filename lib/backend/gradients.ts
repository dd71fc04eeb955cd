/**
 * Registers tfjs' gradient functions.
 *
 * `@tensorflow/tfjs-core`'s Node entry point does not register the gradients of its kernels;
 * the union package `@tensorflow/tfjs` does, into the engine-global registry shared by every
 * tfjs package. Importing this module once (the backend module does) makes `tf.grads` work.
 *
 * @module
 */
import "@tensorflow/tfjs";
