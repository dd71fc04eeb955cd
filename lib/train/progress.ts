/**
 * Progress reporting on stderr: a one-line bar redrawn in place when stderr is a terminal,
 * plain lines every `every` steps (and at the end) otherwise, so logs stay readable in CI.
 *
 * @example
 * ```ts
 * import { Progress } from "@covid-ssm/ssm";
 * const p = new Progress(3, "predict");
 * for (let i = 0; i < 3; i++) p.tick(`file ${i}`);
 * p.done();
 * ```
 *
 * @module
 */

/** A progress bar / periodic progress lines on stderr. */
export class Progress {
  private done_ = 0;
  private readonly start = performance.now();
  private readonly tty: boolean;
  private readonly enc = new TextEncoder();

  /**
   * @param total number of steps
   * @param label prefix of every line
   * @param every plain-line period when stderr is not a terminal (default: ~20 lines per run)
   */
  constructor(
    readonly total: number,
    readonly label = "",
    readonly every = Math.max(1, Math.ceil(total / 20)),
  ) {
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch {
      tty = false;
    }
    this.tty = tty;
  }

  /** Seconds since the start. */
  elapsed(): number {
    return (performance.now() - this.start) / 1000;
  }

  /** Marks `n` more steps done and shows `info` (e.g. running losses). */
  tick(info = "", n = 1): void {
    this.done_ += n;
    const line = this.line(info);
    if (this.tty) this.write(`\r\x1b[2K${line}`);
    else if (this.done_ % this.every === 0 || this.done_ === this.total) this.write(line + "\n");
  }

  /** Ends the bar (newline on a terminal). */
  done(): void {
    if (this.tty) this.write("\n");
  }

  private line(info: string): string {
    const t = this.elapsed();
    const frac = this.total > 0 ? this.done_ / this.total : 1;
    const eta = frac > 0 ? t / frac - t : 0;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = this.tty ? `[${"#".repeat(filled)}${".".repeat(width - filled)}] ` : "";
    return `${this.label ? this.label + " " : ""}${bar}${this.done_}/${this.total} ` +
      `${fmtTime(t)} elapsed, ETA ${fmtTime(eta)}${info ? "  " + info : ""}`;
  }

  private write(s: string): void {
    try {
      Deno.stderr.writeSync(this.enc.encode(s));
    } catch {
      // stderr closed: progress is best effort
    }
  }
}

/** `h:mm:ss` or `m:ss`. */
export function fmtTime(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`
    : `${m}:${String(r).padStart(2, "0")}`;
}
