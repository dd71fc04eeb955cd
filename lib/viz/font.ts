/**
 * A tiny built-in 5x7 bitmap font (digits, upper-case letters and common punctuation) for
 * labels on raster figures. Lower-case letters are drawn as upper case; characters without a
 * glyph are drawn as `?`. Each glyph cell is 6x8 pixels (one column and one row of spacing),
 * multiplied by an integer `scale`.
 *
 * @example
 * ```ts
 * import { createCanvas } from "./canvas.ts";
 * import { drawText, textWidth } from "./font.ts";
 * const c = createCanvas(80, 12);
 * drawText(c, "SCORE 0.93", 1, 2, [255, 255, 255]);
 * console.log(textWidth("SCORE 0.93")); // 59
 * ```
 *
 * @module
 */

import { blendPixel, type Rgb, type RgbaImage } from "./canvas.ts";

/** Glyph width in pixels (before scaling). */
export const GLYPH_WIDTH = 5;
/** Glyph height in pixels (before scaling). */
export const GLYPH_HEIGHT = 7;
/** Horizontal advance per character (glyph + 1 column of spacing). */
export const GLYPH_ADVANCE = 6;
/** Line height (glyph + 1 row of spacing). */
export const LINE_HEIGHT = 8;

// Seven rows per glyph, top to bottom, as two hex digits each; bit 4 is the leftmost column.
const GLYPHS: Record<string, string> = {
  "0": "0E11131519110E",
  "1": "040C040404040E",
  "2": "0E11010204081F",
  "3": "1F02040201110E",
  "4": "02060A121F0202",
  "5": "1F101E0101110E",
  "6": "0608101E11110E",
  "7": "1F010204080808",
  "8": "0E11110E11110E",
  "9": "0E11110F01020C",
  A: "0E1111111F1111",
  B: "1E11111E11111E",
  C: "0E11101010110E",
  D: "1C12111111121C",
  E: "1F10101E10101F",
  F: "1F10101E101010",
  G: "0E11101711110F",
  H: "1111111F111111",
  I: "0E04040404040E",
  J: "0702020202120C",
  K: "11121418141211",
  L: "1010101010101F",
  M: "111B1515111111",
  N: "11111915131111",
  O: "0E11111111110E",
  P: "1E11111E101010",
  Q: "0E11111115120D",
  R: "1E11111E141211",
  S: "0F10100E01011E",
  T: "1F040404040404",
  U: "1111111111110E",
  V: "11111111110A04",
  W: "1111111515150A",
  X: "11110A040A1111",
  Y: "1111110A040404",
  Z: "1F01020408101F",
  " ": "00000000000000",
  ".": "00000000000C0C",
  ",": "000000000C0408",
  "-": "0000001F000000",
  "+": "0004041F040400",
  "%": "18190204081303",
  ":": "000C0C000C0C00",
  ";": "000C0C000C0408",
  "!": "04040404000004",
  "/": "00010204081000",
  "(": "02040808080402",
  ")": "08040202020408",
  "[": "0E08080808080E",
  "]": "0E02020202020E",
  "_": "0000000000001F",
  "=": "00001F001F0000",
  ">": "08040201020408",
  "<": "02040810080402",
  "#": "0A0A1F0A1F0A0A",
  "?": "0E110102040004",
  "*": "0004150E150400",
  "'": "04040800000000",
};

const DECODED = new Map<string, Uint8Array>(
  Object.entries(GLYPHS).map(([ch, hex]) => {
    const rows = new Uint8Array(GLYPH_HEIGHT);
    for (let r = 0; r < GLYPH_HEIGHT; r++) rows[r] = parseInt(hex.slice(2 * r, 2 * r + 2), 16);
    return [ch, rows];
  }),
);

/** The characters the font has glyphs for (lower-case letters map onto the upper-case ones). */
export const FONT_CHARACTERS: string = [...DECODED.keys()].join("");

/**
 * The 7 row bitmaps of a character's glyph (bit 4 = leftmost column); `?` for unknown ones.
 */
export function glyph(ch: string): Uint8Array {
  return DECODED.get(ch) ?? DECODED.get(ch.toUpperCase()) ?? DECODED.get("?")!;
}

/** Width in pixels of `text` drawn at `scale` (no trailing spacing column). */
export function textWidth(text: string, scale = 1): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * GLYPH_ADVANCE - 1) * scale;
}

/** Height in pixels of one line of text at `scale` (the glyph itself, without spacing). */
export function textHeight(scale = 1): number {
  return GLYPH_HEIGHT * scale;
}

/**
 * Draws `text` with its top-left corner at `(x, y)` in `color` (clipped to the canvas).
 *
 * @param scale integer magnification (each font pixel becomes `scale x scale` pixels)
 * @returns the x coordinate just after the text
 */
export function drawText(
  canvas: RgbaImage,
  text: string,
  x: number,
  y: number,
  color: Rgb,
  scale = 1,
): number {
  const s = Math.max(1, Math.floor(scale));
  let cx = Math.round(x);
  const cy = Math.round(y);
  for (const ch of text) {
    const rows = glyph(ch);
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      const bits = rows[r];
      if (!bits) continue;
      for (let c = 0; c < GLYPH_WIDTH; c++) {
        if (!(bits & (1 << (GLYPH_WIDTH - 1 - c)))) continue;
        for (let dy = 0; dy < s; dy++) {
          for (let dx = 0; dx < s; dx++) {
            blendPixel(canvas, cx + c * s + dx, cy + r * s + dy, color);
          }
        }
      }
    }
    cx += GLYPH_ADVANCE * s;
  }
  return cx - s;
}
