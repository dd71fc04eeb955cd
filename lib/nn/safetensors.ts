/**
 * Reading and writing safetensors files.
 *
 * Format: an 8-byte little-endian header length `n`, then `n` bytes of JSON mapping each tensor
 * name to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the byte buffer that
 * follows the header) plus an optional `__metadata__` map of strings, then the byte buffer.
 * Reading decodes F32, F16, BF16, F64 and integer tensors into float32; writing stores F32.
 *
 * @example
 * ```ts
 * import { parseSafetensors, serializeSafetensors } from "@covid-ssm/ssm";
 * const bytes = serializeSafetensors(
 *   new Map([["w", { shape: [2], data: new Float32Array([1, 2]), dtype: "F32" }]]),
 *   { note: "demo" },
 * );
 * const file = parseSafetensors(bytes, "demo.safetensors");
 * console.log(file.tensors.get("w")!.data, file.metadata.note);
 * ```
 *
 * @module
 */
import {
  decodeToFloat32,
  DTYPE_SIZE,
  type HostTensor,
  isStorageDtype,
  shapeSize,
} from "./host_tensor.ts";
import { writeFileAtomic } from "./atomic.ts";

/** The content of a safetensors file. */
export interface SafetensorsFile {
  /** Tensors by name, in header order, decoded to float32. */
  tensors: Map<string, HostTensor>;
  /** The `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
}

/** Largest header accepted (the reference implementation's limit). */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Parses the bytes of a safetensors file.
 *
 * @param bytes the whole file
 * @param source file name used in error messages
 * @throws {Error} naming `source` on a corrupt header, unknown dtype, bad shape or offsets
 */
export function parseSafetensors(bytes: Uint8Array, source = "<bytes>"): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new Error(`${source}: not a valid safetensors file: ${msg}`);
  };
  if (bytes.byteLength < 8) fail(`${bytes.byteLength} bytes is too short for the header length`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds ${MAX_HEADER_BYTES}`);
  if (8 + n > bytes.byteLength) {
    fail(`header length ${n} runs past the end of the file (${bytes.byteLength} bytes)`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const buffer = bytes.subarray(8 + n);
  const metadata: Record<string, string> = {};
  const tensors = new Map<string, HostTensor>();
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
        fail("__metadata__ is not an object");
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== "object") fail(`entry '${name}' is not an object`);
    const { dtype, shape, data_offsets: offs } = e;
    if (typeof dtype !== "string" || !isStorageDtype(dtype)) {
      fail(`tensor '${name}' has unsupported dtype ${JSON.stringify(dtype)}`);
    }
    if (
      !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) fail(`tensor '${name}' has invalid shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(offs) || offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    const [begin, end] = offs as number[];
    const count = shapeSize(shape as number[]);
    const dt = dtype as keyof typeof DTYPE_SIZE;
    if (begin > end || end > buffer.byteLength) {
      fail(
        `tensor '${name}' data_offsets [${begin}, ${end}] lie outside the ${buffer.byteLength}-byte ` +
          `data buffer`,
      );
    }
    if (end - begin !== count * DTYPE_SIZE[dt]) {
      fail(
        `tensor '${name}' spans ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} ` +
          `needs ${count * DTYPE_SIZE[dt]}`,
      );
    }
    tensors.set(name, {
      shape: [...(shape as number[])],
      data: decodeToFloat32(buffer.subarray(begin, end), dt, count, `${source}: '${name}'`),
      dtype: dt,
    });
  }
  return { tensors, metadata };
}

/**
 * Reads a safetensors file from disk.
 *
 * @param path file path
 * @throws {Error} naming the file when it cannot be read or is invalid
 */
export function readSafetensors(path: string): SafetensorsFile {
  return parseSafetensors(Deno.readFileSync(path), path);
}

/**
 * Serialises float32 tensors (stored as F32 regardless of their `dtype` field) and metadata into
 * safetensors bytes. The header is space-padded so that the data buffer starts 8-byte aligned.
 *
 * @param tensors tensors by name (row-major data)
 * @param metadata optional `__metadata__` string map
 * @throws {Error} when a tensor's data length does not match its shape
 */
export function serializeSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === "__metadata__") throw new Error("'__metadata__' cannot be a tensor name");
    const count = shapeSize(t.shape);
    if (t.data.length !== count) {
      throw new Error(
        `tensor '${name}': ${t.data.length} values do not fill shape ${JSON.stringify(t.shape)}`,
      );
    }
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * count] };
    offset += 4 * count;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let pos = 8 + json.byteLength;
  const dv = new DataView(out.buffer);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  for (const [, t] of entries) {
    if (le) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else {
      for (let i = 0; i < t.data.length; i++) dv.setFloat32(pos + 4 * i, t.data[i], true);
    }
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * Writes float32 tensors and metadata to a safetensors file atomically (`path.tmp`, then rename).
 *
 * @param path destination
 * @param tensors tensors by name
 * @param metadata optional `__metadata__` string map
 */
export function writeSafetensors(
  path: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
