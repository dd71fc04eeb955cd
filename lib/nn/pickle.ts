/**
 * A data-only reader for the subset of Python's pickle format (protocols 2-4) that
 * `torch.save` writes.
 *
 * Nothing from the pickle is executed. `GLOBAL` references resolve to inert
 * {@linkcode PickleGlobal} descriptors; `REDUCE`/`NEWOBJ` of a global either go through a
 * caller-supplied hook (which decides what a known callable such as
 * `torch._utils._rebuild_tensor_v2` builds) or become a {@linkcode PickleObject} placeholder that
 * records the class name, its arguments and its state. `dict` and `collections.OrderedDict`
 * become `Map`s, lists and tuples become arrays.
 *
 * @example
 * ```ts
 * import { unpickle } from "@covid-ssm/ssm";
 * // pickle.dumps({"a": 1}, protocol=2)
 * const bytes = new Uint8Array([0x80, 2, 0x7d, 0x71, 0, 0x58, 1, 0, 0, 0, 0x61, 0x71, 1, 0x4b, 1,
 *   0x73, 0x2e]);
 * console.log(unpickle(bytes, "x.pkl")); // Map { "a" => 1 }
 * ```
 *
 * @module
 */

/** A reference to a Python global (`module.name`), never resolved to code. */
export class PickleGlobal {
  /**
   * @param module the Python module
   * @param name the attribute name
   */
  constructor(readonly module: string, readonly name: string) {}
  /** `module.name`. */
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An inert placeholder for an instance of a class the reader does not know. */
export class PickleObject {
  /** State given by `BUILD` (usually the instance `__dict__`), or undefined. */
  state: unknown = undefined;
  /** Items added by `SETITEM(S)` when the class is a dict subclass. */
  readonly items: Map<unknown, unknown> = new Map();
  /** Items added by `APPEND(S)` when the class is a list subclass. */
  readonly list: unknown[] = [];
  /**
   * @param className fully qualified Python class name
   * @param args constructor arguments from `REDUCE` / `NEWOBJ`
   */
  constructor(readonly className: string, readonly args: unknown[]) {}
}

/** Hooks that give meaning to persistent ids and known callables. */
export interface UnpickleHooks {
  /** Called for `BINPERSID`/`PERSID` with the persistent id; its result is pushed. */
  persistentLoad?: (pid: unknown) => unknown;
  /**
   * Called for `REDUCE`/`NEWOBJ` of a global; return `undefined` to get the default
   * (Map for `collections.OrderedDict`, a {@linkcode PickleObject} otherwise).
   */
  reduce?: (callable: PickleGlobal, args: unknown[]) => unknown;
}

/**
 * Parses a pickle without executing anything.
 *
 * @param bytes the pickle stream
 * @param source file name for error messages
 * @param hooks persistent-id and callable hooks
 * @returns the unpickled root object
 * @throws {Error} naming the opcode, its offset and `source` for unsupported or malformed input
 */
export function unpickle(bytes: Uint8Array, source: string, hooks: UnpickleHooks = {}): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder("utf-8");
  const latin1 = new TextDecoder("latin1");
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let opPos = 0;
  let op = 0;

  const fail = (msg: string): never => {
    throw new Error(
      `${source}: pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${opPos}: ${msg}`,
    );
  };
  const need = (n: number) => {
    if (pos + n > bytes.byteLength) fail(`truncated (needs ${n} more bytes)`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), pos += 2, dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), pos += 4, dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), pos += 4, dv.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    pos += 8;
    const v = dv.getBigUint64(pos - 8, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("length too large");
    return Number(v);
  };
  const take = (n: number) => (need(n), pos += n, bytes.subarray(pos - n, pos));
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("unterminated text line");
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) {
      fail("stack underflow");
    }
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail("no MARK on the stack");
    return stack.splice(m!);
  };
  const long = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v;
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (kv.length % 2 !== 0) fail("odd number of items for SETITEMS");
    const map = target instanceof Map
      ? target
      : target instanceof PickleObject
      ? target.items
      : fail(`cannot set items on ${describe(target)}`);
    for (let i = 0; i < kv.length; i += 2) map.set(kv[i], kv[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]) => {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof PickleObject) target.list.push(...items);
    else fail(`cannot append to ${describe(target)}`);
  };
  const callGlobal = (callable: unknown, args: unknown) => {
    if (!(callable instanceof PickleGlobal)) fail(`cannot call ${describe(callable)}`);
    const g = callable as PickleGlobal;
    const a = Array.isArray(args) ? args : fail(`arguments of ${g.qualname} are not a tuple`);
    const r = hooks.reduce?.(g, a as unknown[]);
    if (r !== undefined) return r;
    if (g.qualname === "collections.OrderedDict" || g.qualname === "builtins.dict") {
      const m = new Map<unknown, unknown>();
      const init = (a as unknown[])[0];
      if (Array.isArray(init)) {
        for (const kv of init) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
      }
      return m;
    }
    return new PickleObject(g.qualname, a as unknown[]);
  };

  for (;;) {
    opPos = pos;
    if (pos >= bytes.byteLength) fail("stream ended without STOP");
    op = bytes[pos++];
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("unsupported protocol");
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`stack holds ${stack.length} items at STOP`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x64: { // DICT
        const m = new Map();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x6c: // LIST
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop(), a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) fail(`memo key ${k} is undefined`);
        stack.push(memo.get(k));
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(take(u64())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(take(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(latin1.decode(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x8a: // LONG1
        stack.push(long(take(u8())));
        break;
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0) fail("negative LONG4 length");
        stack.push(long(take(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(dv.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail("ADDITEMS on a non-set");
        for (const it of items) (s as Set<unknown>).add(it);
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(new PickleGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          fail("STACK_GLOBAL needs two strings");
        }
        stack.push(new PickleGlobal(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        stack.push(callGlobal(callable, args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = pop();
        stack.push(callGlobal(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof PickleObject) obj.state = state;
        // BUILD on anything else (e.g. an OrderedDict's empty state) carries no data we use.
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) fail("persistent id without a persistent_load hook");
        stack.push(hooks.persistentLoad!(pid));
        break;
      }
      default:
        fail(`unsupported opcode '${String.fromCharCode(op)}'`);
    }
  }
}

function describe(v: unknown): string {
  if (v instanceof PickleObject) return `an instance of ${v.className}`;
  if (v instanceof PickleGlobal) return `the global ${v.qualname}`;
  if (v === null) return "None";
  if (Array.isArray(v)) return "a tuple/list";
  return typeof v;
}
