// Reads what the decoder needs to know before decoding from an image file's first bytes: the
// format, size, number of JPEG components, EXIF orientation and whether an ICC profile is
// embedded. The loader decodes many same-sized plain JPEGs in one sharp call (see decode.ts);
// this tells which files qualify. Pure JavaScript, no decoding.

export type ImageKind = 'jpeg' | 'png' | 'webp' | 'unknown';

export interface ImageHeader {
  kind: ImageKind;
  /** 0 when unknown (unparsable header) */
  width: number;
  height: number;
  /** JPEG: components in the frame (1 gray, 3 YCbCr/RGB, 4 CMYK); 0 otherwise */
  components: number;
  /** JPEG: sample precision in bits; 0 otherwise */
  precision: number;
  /** EXIF orientation 1..8 (1 when absent) */
  orientation: number;
  /** an embedded ICC profile (JPEG APP2) */
  icc: boolean;
}

const UNKNOWN: ImageHeader = {
  kind: 'unknown',
  width: 0,
  height: 0,
  components: 0,
  precision: 0,
  orientation: 1,
  icc: false,
};

export function readImageHeader(b: Uint8Array): ImageHeader {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpegHeader(b);
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { ...UNKNOWN, kind: 'png', width: v.getUint32(16), height: v.getUint32(20) };
  }
  if (b.length >= 30 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') {
    return { ...UNKNOWN, kind: 'webp' };
  }
  return UNKNOWN;
}

function ascii(b: Uint8Array, at: number, n: number): string {
  let s = '';
  for (let i = 0; i < n && at + i < b.length; i++) s += String.fromCharCode(b[at + i]!);
  return s;
}

function jpegHeader(b: Uint8Array): ImageHeader {
  const h: ImageHeader = { ...UNKNOWN, kind: 'jpeg' };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let p = 2;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return h; // not at a marker: leave the rest to the decoder
    const marker = b[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      p += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return h; // end of image / start of scan before a frame
    const len = v.getUint16(p + 2);
    const seg = p + 4;
    if (len < 2 || seg + len - 2 > b.length) return h;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) {
      if (len >= 8) {
        h.precision = b[seg]!;
        h.height = v.getUint16(seg + 1);
        h.width = v.getUint16(seg + 3);
        h.components = b[seg + 5]!;
      }
      return h; // APPn segments come before the frame header
    }
    if (marker === 0xe1 && len >= 16 && ascii(b, seg, 6) === 'Exif\0\0') {
      h.orientation = exifOrientation(v, seg + 6, seg + len - 2);
    } else if (marker === 0xe2 && len >= 14 && ascii(b, seg, 12) === 'ICC_PROFILE\0') {
      h.icc = true;
    }
    p = seg + len - 2;
  }
  return h;
}

/** Orientation tag (0x0112) of IFD0 of the TIFF structure at [start, end); 1 when absent or bad. */
function exifOrientation(v: DataView, start: number, end: number): number {
  if (end - start < 8) return 1;
  const order = v.getUint16(start);
  if (order !== 0x4949 && order !== 0x4d4d) return 1;
  const le = order === 0x4949;
  const ifd = start + v.getUint32(start + 4, le);
  if (ifd + 2 > end) return 1;
  const count = v.getUint16(ifd, le);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > end) return 1;
    if (v.getUint16(e, le) === 0x0112) {
      const o = v.getUint16(e + 8, le);
      return o >= 1 && o <= 8 ? o : 1;
    }
  }
  return 1;
}

/**
 * A JPEG that sharp decodes to the same pixels whether alone or joined with others: 8-bit,
 * three components, upright, no ICC profile (sharp would convert through it when alone).
 */
export function isPlainJpeg(h: ImageHeader): boolean {
  return (
    h.kind === 'jpeg' &&
    h.precision === 8 &&
    h.components === 3 &&
    h.orientation === 1 &&
    !h.icc &&
    h.width > 0 &&
    h.height > 0
  );
}
