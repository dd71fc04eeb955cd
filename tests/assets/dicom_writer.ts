// A minimal DICOM part-10 writer for tests: one greyscale frame, 8 or 16-bit pixels, in implicit
// or explicit VR little endian, explicit VR big endian, or (for error tests) an encapsulated
// "compressed" transfer syntax whose fragment bytes are arbitrary.

/** What to write. */
export interface DicomSpec {
  rows: number;
  cols: number;
  /** Stored values, row-major. */
  pixels: ArrayLike<number>;
  bitsAllocated?: 8 | 16;
  /** PixelRepresentation 1 (two's complement). */
  signed?: boolean;
  slope?: number;
  intercept?: number;
  photometric?: "MONOCHROME1" | "MONOCHROME2";
  transferSyntax?: string;
  /** Write PixelData encapsulated (undefined length, fragments) as compressed syntaxes do. */
  encapsulated?: boolean;
}

const LONG_VRS = new Set(["OB", "OW", "OF", "SQ", "UT", "UN"]);

class Out {
  bytes: number[] = [];
  constructor(readonly little: boolean) {}
  u16(v: number) {
    const b = [v & 0xff, (v >> 8) & 0xff];
    this.bytes.push(...(this.little ? b : b.reverse()));
  }
  u32(v: number) {
    const b = [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
    this.bytes.push(...(this.little ? b : b.reverse()));
  }
  raw(b: ArrayLike<number>) {
    for (let i = 0; i < b.length; i++) this.bytes.push(b[i]);
  }
}

function pad(value: Uint8Array, vr: string): Uint8Array {
  if (value.length % 2 === 0) return value;
  const out = new Uint8Array(value.length + 1);
  out.set(value);
  out[value.length] = vr === "UI" || vr === "OB" ? 0 : 0x20;
  return out;
}

function element(o: Out, explicit: boolean, group: number, el: number, vr: string, v: Uint8Array) {
  const value = pad(v, vr);
  o.u16(group);
  o.u16(el);
  if (explicit) {
    o.raw([vr.charCodeAt(0), vr.charCodeAt(1)]);
    if (LONG_VRS.has(vr)) {
      o.u16(0);
      o.u32(value.length);
    } else o.u16(value.length);
  } else o.u32(value.length);
  o.raw(value);
}

const str = (s: string) => new TextEncoder().encode(s);

function us(v: number, little: boolean): Uint8Array {
  return little ? new Uint8Array([v & 0xff, v >> 8]) : new Uint8Array([v >> 8, v & 0xff]);
}

/** Encodes a DICOM file. */
export function writeDicom(spec: DicomSpec): Uint8Array {
  const ts = spec.transferSyntax ?? "1.2.840.10008.1.2.1";
  const bits = spec.bitsAllocated ?? 16;
  const little = ts !== "1.2.840.10008.1.2.2";
  const explicit = ts !== "1.2.840.10008.1.2";
  // File meta group: always explicit VR little endian.
  const meta = new Out(true);
  element(meta, true, 0x0002, 0x0001, "OB", new Uint8Array([0, 1]));
  element(meta, true, 0x0002, 0x0002, "UI", str("1.2.840.10008.5.1.4.1.1.2"));
  element(meta, true, 0x0002, 0x0003, "UI", str("1.2.3.4.5.6.7"));
  element(meta, true, 0x0002, 0x0010, "UI", str(ts));
  const head = new Out(true);
  head.raw(new Uint8Array(128));
  head.raw(str("DICM"));
  element(
    head,
    true,
    0x0002,
    0x0000,
    "UL",
    new Uint8Array(new Uint32Array([meta.bytes.length]).buffer),
  );
  head.raw(meta.bytes);

  const o = new Out(little);
  element(o, explicit, 0x0008, 0x0016, "UI", str("1.2.840.10008.5.1.4.1.1.2"));
  element(o, explicit, 0x0028, 0x0002, "US", us(1, little));
  element(o, explicit, 0x0028, 0x0004, "CS", str(spec.photometric ?? "MONOCHROME2"));
  element(o, explicit, 0x0028, 0x0010, "US", us(spec.rows, little));
  element(o, explicit, 0x0028, 0x0011, "US", us(spec.cols, little));
  element(o, explicit, 0x0028, 0x0100, "US", us(bits, little));
  element(o, explicit, 0x0028, 0x0101, "US", us(bits, little));
  element(o, explicit, 0x0028, 0x0102, "US", us(bits - 1, little));
  element(o, explicit, 0x0028, 0x0103, "US", us(spec.signed ? 1 : 0, little));
  element(o, explicit, 0x0028, 0x1052, "DS", str(String(spec.intercept ?? 0)));
  element(o, explicit, 0x0028, 0x1053, "DS", str(String(spec.slope ?? 1)));
  const n = spec.rows * spec.cols;
  const px = new Uint8Array(n * (bits / 8));
  const dv = new DataView(px.buffer);
  for (let i = 0; i < n; i++) {
    const v = spec.pixels[i];
    if (bits === 8) dv.setUint8(i, v & 0xff);
    else dv.setUint16(2 * i, v & 0xffff, little);
  }
  if (spec.encapsulated) {
    o.u16(0x7fe0);
    o.u16(0x0010);
    o.raw([0x4f, 0x42, 0, 0]); // "OB" + reserved
    o.u32(0xffffffff);
    o.u16(0xfffe), o.u16(0xe000), o.u32(0); // empty basic offset table
    const frag = pad(new Uint8Array([0xff, 0xd8, 0xff, 0xd9, 1, 2, 3]), "OB");
    o.u16(0xfffe), o.u16(0xe000), o.u32(frag.length);
    o.raw(frag);
    o.u16(0xfffe), o.u16(0xe0dd), o.u32(0);
  } else {
    element(o, explicit, 0x7fe0, 0x0010, bits === 8 ? "OB" : "OW", px);
  }
  const out = new Uint8Array(head.bytes.length + o.bytes.length);
  out.set(head.bytes);
  out.set(o.bytes, head.bytes.length);
  return out;
}
