/**
 * Reading PyTorch checkpoints written by `torch.save` (the zip format of PyTorch >= 1.6).
 *
 * The archive holds `<name>/data.pkl` (a pickle in which every tensor is
 * `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and every storage a
 * persistent id `('storage', torch.FloatStorage, key, location, numel)`) and the raw
 * little-endian storages `<name>/data/<key>`. The pickle is parsed as data only (see
 * `pickle.ts`): classes such as the authors' `models.ssm.rpn.AnchorGenerator` become inert
 * placeholders, and tensors become {@linkcode HostTensor}s.
 *
 * @example
 * ```ts
 * import { readPth, stateDictFromCheckpoint } from "@covid-ssm/ssm";
 * const ckpt = readPth("ssm_epoch49.pth");
 * const sd = stateDictFromCheckpoint(ckpt.root, "ssm_epoch49.pth");
 * console.log(sd.size, sd.get("backbone.body.conv1.weight")?.shape);
 * ```
 *
 * @module
 */
import { unzipSync } from "fflate";
import { decodeToFloat32, DTYPE_SIZE, type HostTensor, type StorageDtype } from "./host_tensor.ts";
import { PickleGlobal, unpickle } from "./pickle.ts";

/** Storage classes of `torch` and the element type each holds. */
const STORAGE_DTYPES: Readonly<Record<string, StorageDtype>> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

/** The zip magic `PK\x03\x04` that starts a `torch.save` file. */
export function isZipFile(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 &&
    bytes[3] === 0x04;
}

/** A parsed `torch.save` checkpoint. */
export interface PthCheckpoint {
  /** The unpickled root object (`Map` for dicts, arrays for lists/tuples, tensors as HostTensor). */
  root: unknown;
  /** The archive's top-level directory name. */
  archiveName: string;
}

interface StorageRef {
  dtype: StorageDtype;
  key: string;
  numel: number;
  values?: Float32Array;
}

/** Whether a value produced by {@linkcode readPth} is a tensor. */
export function isHostTensor(v: unknown): v is HostTensor {
  return typeof v === "object" && v !== null && (v as HostTensor).data instanceof Float32Array &&
    Array.isArray((v as HostTensor).shape);
}

/**
 * Parses the bytes of a `torch.save` zip checkpoint.
 *
 * @param bytes the whole file
 * @param source file name for error messages
 * @throws {Error} naming `source` for a non-zip file, a missing `data.pkl` or storage, an
 *   unsupported pickle opcode or storage type, or a tensor that reads past its storage
 */
export function parsePth(bytes: Uint8Array, source = "<bytes>"): PthCheckpoint {
  if (!isZipFile(bytes)) {
    throw new Error(
      `${source}: not a torch.save zip archive (legacy pre-1.6 .pth files are not supported)`,
    );
  }
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new Error(`${source}: corrupt zip archive (${(e as Error).message})`);
  }
  const pkl = Object.keys(files).find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new Error(`${source}: no <name>/data.pkl in the archive`);
  const archiveName = pkl.slice(0, -"/data.pkl".length);
  const byteorder = files[`${archiveName}/byteorder`];
  const bigEndian = byteorder !== undefined && new TextDecoder().decode(byteorder).trim() === "big";

  const storages = new Map<string, StorageRef>();
  const loadStorage = (ref: StorageRef): Float32Array => {
    if (ref.values) return ref.values;
    const name = `${archiveName}/data/${ref.key}`;
    let raw = files[name];
    if (!raw) throw new Error(`${source}: storage ${name} is missing from the archive`);
    const size = DTYPE_SIZE[ref.dtype];
    if (raw.byteLength < ref.numel * size) {
      throw new Error(
        `${source}: storage ${name} has ${raw.byteLength} bytes, ${ref.numel} ${ref.dtype} ` +
          `elements need ${ref.numel * size}`,
      );
    }
    if (bigEndian && size > 1) {
      raw = raw.slice(0, ref.numel * size);
      for (let i = 0; i < raw.length; i += size) raw.subarray(i, i + size).reverse();
    }
    ref.values = decodeToFloat32(raw, ref.dtype, ref.numel, `${source}: ${name}`);
    return ref.values;
  };

  const persistentLoad = (pid: unknown): StorageRef => {
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
      throw new Error(`${source}: unsupported persistent id ${JSON.stringify(pid)}`);
    }
    const [, cls, key, , numel] = pid;
    const clsName = cls instanceof PickleGlobal ? cls.name : String(cls);
    const dtype = STORAGE_DTYPES[clsName];
    if (!dtype) throw new Error(`${source}: unsupported storage type ${clsName}`);
    const k = String(key);
    let ref = storages.get(k);
    if (!ref) {
      ref = { dtype, key: k, numel: Number(numel) };
      storages.set(k, ref);
    }
    return ref;
  };

  const rebuildTensor = (args: unknown[]): HostTensor => {
    const [storage, offset, size, stride] = args as [StorageRef, number, number[], number[]];
    if (
      !storage || typeof storage !== "object" || !("key" in storage) || !Array.isArray(size) ||
      !Array.isArray(stride) || size.length !== stride.length
    ) {
      throw new Error(`${source}: malformed _rebuild_tensor_v2 arguments`);
    }
    const values = loadStorage(storage);
    const shape = size.map(Number);
    const strides = stride.map(Number);
    const off = Number(offset);
    const count = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(count);
    if (count > 0) {
      let maxIndex = off;
      for (let d = 0; d < shape.length; d++) maxIndex += (shape[d] - 1) * strides[d];
      if (off < 0 || maxIndex >= values.length) {
        throw new Error(
          `${source}: tensor (offset ${off}, size [${shape}], stride [${strides}]) reads past ` +
            `storage ${storage.key} of ${values.length} elements`,
        );
      }
      let contiguous = true;
      for (let d = shape.length - 1, s = 1; d >= 0; d--) {
        if (shape[d] !== 1 && strides[d] !== s) contiguous = false;
        s *= shape[d];
      }
      if (contiguous) {
        out.set(values.subarray(off, off + count));
      } else {
        const idx = new Array(shape.length).fill(0);
        for (let i = 0; i < count; i++) {
          let p = off;
          for (let d = 0; d < shape.length; d++) p += idx[d] * strides[d];
          out[i] = values[p];
          for (let d = shape.length - 1; d >= 0; d--) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
          }
        }
      }
    }
    return { shape, data: out, dtype: storage.dtype };
  };

  const root = unpickle(files[pkl], `${source}: ${pkl}`, {
    persistentLoad,
    reduce: (g, args) => {
      switch (g.qualname) {
        case "torch._utils._rebuild_tensor_v2":
        case "torch._utils._rebuild_tensor":
          return rebuildTensor(args);
        case "torch._utils._rebuild_parameter":
        case "torch._utils._rebuild_parameter_with_state":
          return args[0];
        default:
          return undefined;
      }
    },
  });
  return { root, archiveName };
}

/**
 * Reads a `torch.save` zip checkpoint from disk.
 *
 * @param path file path
 * @throws {Error} naming the file when it cannot be read or parsed
 */
export function readPth(path: string): PthCheckpoint {
  return parsePth(Deno.readFileSync(path), path);
}

/**
 * The state dict inside an unpickled checkpoint: `model_weights` (the authors' format), else
 * `state_dict` or `model`, else the root itself when it maps names to tensors. Non-tensor
 * entries are dropped.
 *
 * @param root the unpickled root object
 * @param source file name for error messages
 * @throws {Error} when no mapping of names to tensors is found
 */
export function stateDictFromCheckpoint(root: unknown, source: string): Map<string, HostTensor> {
  const asStateDict = (v: unknown): Map<string, HostTensor> | null => {
    if (!(v instanceof Map)) return null;
    const out = new Map<string, HostTensor>();
    for (const [k, t] of v) if (typeof k === "string" && isHostTensor(t)) out.set(k, t);
    return out.size > 0 ? out : null;
  };
  if (root instanceof Map) {
    for (const key of ["model_weights", "state_dict", "model"]) {
      const sd = asStateDict(root.get(key));
      if (sd) return sd;
    }
    const sd = asStateDict(root);
    if (sd) return sd;
  }
  throw new Error(
    `${source}: no state dict found (expected a dict with 'model_weights' or 'state_dict', or a ` +
      `dict of tensors)`,
  );
}
