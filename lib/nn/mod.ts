/**
 * Neural-network building blocks: {@linkcode Module} with PyTorch state_dict names, layers with
 * PyTorch semantics on NHWC tensors, seeded initialisation, and checkpoint I/O.
 *
 * @example
 * ```ts
 * import { Linear } from "@covid-ssm/ssm";
 * const fc = new Linear(640, 512);
 * console.log(fc.numParameters()); // 328192
 * ```
 *
 * @module
 */
export * from "./module.ts";
export * from "./init.ts";
export * from "./layers.ts";
export * from "./host_tensor.ts";
export * from "./atomic.ts";
export * from "./safetensors.ts";
export * from "./pickle.ts";
export * from "./pth.ts";
export * from "./weights.ts";
