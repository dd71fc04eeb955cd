/**
 * Optional per-stage timing of the model's forward and backward passes.
 *
 * The model files call {@linkcode profiler}`.stage(name, fn)` around their stages (backbone, FPN,
 * RPN, RoIAlign, box heads, mask head, paste, S) and {@linkcode profiler}`.mark(name, x)` on a
 * stage's output inside a taped function. While the profiler is disabled (the default) both are
 * pass-throughs: no extra work, no synchronisation. When enabled, `stage` reads every tensor the
 * stage returns back with `dataSync` (so asynchronous backends are timed fully) and adds the
 * elapsed time to the stage; `mark` wraps the tensor in an identity whose gradient records when
 * the backward sweep reaches it. tfjs processes the tape in reverse recording order, so the time
 * between two consecutive marks is the backward time of the stage between them.
 *
 * @example
 * ```ts
 * import { profiler } from "./profiler.ts";
 * profiler.enable();
 * // ... run model.predict(image) ...
 * const times = profiler.take(); // { backbone: {ms, calls}, ... }
 * profiler.disable();
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Accumulated time of one stage. */
export interface StageTime {
  /** Milliseconds summed over the calls. */
  ms: number;
  /** Number of calls. */
  calls: number;
}

/** Stage times by name (forward stages, and `<name> bwd` for backward stages). */
export type StageTimes = Record<string, StageTime>;

/** Collects stage times while enabled; a no-op otherwise. */
export class StageProfiler {
  private on = false;
  private times: StageTimes = {};
  private marks: { name: string; t: number }[] = [];
  private depth = 0;
  private prefix = "";
  /** Free-form counters a run records (e.g. RoIs through the mask head). */
  notes: Record<string, number> = {};

  /** Whether timing is on. */
  get enabled(): boolean {
    return this.on;
  }

  /** Starts timing (clears what was collected). */
  enable(): void {
    this.on = true;
    this.times = {};
    this.marks = [];
    this.notes = {};
  }

  /** Stops timing. */
  disable(): void {
    this.on = false;
  }

  /** Runs `fn` with every stage name prefixed by `prefix` (e.g. `"seg "`). */
  section<T>(prefix: string, fn: () => T): T {
    const old = this.prefix;
    this.prefix = prefix;
    try {
      return fn();
    } finally {
      this.prefix = old;
    }
  }

  /** Records a counter when enabled (the last value wins). */
  note(key: string, value: number): void {
    if (this.on) this.notes[this.prefix + key] = value;
  }

  /** Adds `ms` to stage `name` (prefixed by the current section). */
  add(name: string, ms: number): void {
    name = this.prefix + name;
    const s = this.times[name] ?? (this.times[name] = { ms: 0, calls: 0 });
    s.ms += ms;
    s.calls += 1;
  }

  /**
   * Runs `fn` as stage `name`. Enabled: the tensors it returns (directly, in an array or as
   * values of a plain object) are read back before the clock stops. Nested stages count only in
   * the outermost one.
   */
  stage<T>(name: string, fn: () => T): T {
    if (!this.on || this.depth > 0) return fn();
    this.depth++;
    const t0 = performance.now();
    try {
      const out = fn();
      syncAll(out);
      this.add(name, performance.now() - t0);
      return out;
    } finally {
      this.depth--;
    }
  }

  /**
   * Identity on `x` that, when enabled, timestamps the backward sweep passing through it (see
   * {@linkcode StageProfiler.backwardTimes}). Disabled: returns `x` itself.
   */
  mark<T extends tf.Tensor>(name: string, x: T): T {
    if (!this.on) return x;
    const marks = this.marks, prefix = this.prefix;
    const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.clone(args[0] as tf.Tensor),
      gradFunc: (dy: tf.Tensor) => {
        dy.dataSync();
        marks.push({ name: prefix + name, t: performance.now() });
        return dy;
      },
    }));
    return op(x) as T;
  }

  /**
   * Turns the marks of one backward sweep into stage times. `order` lists the marked stages in
   * forward (recording) order; the sweep ran from `start` to `end` (performance.now()). Stage
   * `k`'s backward time is the time from its own mark (or `start` for the last stage, which has
   * none) to the mark of stage `k - 1` (or `end` for the first). Adds `<name> bwd` entries and
   * clears the marks.
   */
  backwardTimes(order: string[], start: number, end: number): void {
    if (!this.on) return;
    const at = new Map<string, number>();
    for (const m of this.marks) {
      const n = m.name.slice(this.prefix.length);
      if (m.name.startsWith(this.prefix) && !at.has(n)) at.set(n, m.t);
    }
    this.marks = [];
    // Walk forward order; each stage's gradient ends where the previous stage's mark fired.
    for (let k = 0; k < order.length; k++) {
      const begin = at.get(order[k]) ?? (k === order.length - 1 ? start : undefined);
      const finish = k === 0 ? end : at.get(order[k - 1]);
      if (begin === undefined || finish === undefined) continue;
      this.add(`${order[k]} bwd`, Math.max(0, finish - begin));
    }
  }

  /** Returns the times collected since `enable` or the last `take`, and resets them. */
  take(): StageTimes {
    const t = this.times;
    this.times = {};
    this.marks = [];
    return t;
  }
}

function syncAll(x: unknown): void {
  if (x instanceof tf.Tensor) {
    if (!x.isDisposed) x.dataSync();
  } else if (Array.isArray(x)) {
    for (const v of x) syncAll(v);
  } else if (x && typeof x === "object" && Object.getPrototypeOf(x) === Object.prototype) {
    for (const v of Object.values(x)) if (v instanceof tf.Tensor) syncAll(v);
  }
}

/** The toolkit's profiler (disabled unless a benchmark enables it). */
export const profiler: StageProfiler = new StageProfiler();
