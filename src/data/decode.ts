// Image decoding with sharp (libvips): any JPEG, PNG or WebP to RGB uint8, HWC. Grayscale
// becomes three equal channels, alpha is dropped, the EXIF orientation is applied, and an
// embedded ICC profile is converted to sRGB. Decoding runs in libuv's thread pool (sharp's
// async API); the loader calls these in its decode worker processes (decode-pool.ts).
//
// sharp's fixed cost per image is large next to decoding a tiny one (about 0.5 ms of CPU per
// CIFAR JPEG on this project's 2-core machines, where PIL needs 0.06 ms), and part of it is per
// call, so `decodeJoined` decodes many same-sized plain JPEGs in one call: sharp joins them into
// one tall image (arrayjoin, one column) whose raw bytes are the images one after another.
import sharp from 'sharp';
import type { RgbImage } from './dataset.js';

// libvips' operation cache would hold decoded images nobody asks for twice
sharp.cache(false);

/** Decodes one image file's bytes (or a path) to RGB. Rejects on corrupt or truncated data. */
export async function decodeImage(input: Uint8Array | string): Promise<RgbImage> {
  const { data, info } = await sharp(input, { failOn: 'warning', sequentialRead: true })
    .autoOrient()
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new Error(
      `decoder returned ${info.channels} channels, ${data.length} bytes for ${info.width}×${info.height}`,
    );
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/**
 * Decodes several plain JPEGs of the same size (see isPlainJpeg) in one call; the result holds
 * them one after another, each width·height·3 bytes. Rejects when any of them fails, or
 * when the decoded size is not the stated one.
 */
export async function decodeJoined(inputs: readonly Uint8Array[], width: number, height: number): Promise<Uint8Array> {
  if (inputs.length === 1) {
    const img = await decodeImage(inputs[0]!);
    if (img.width !== width || img.height !== height) throw new Error(`decoded ${img.width}×${img.height}`);
    return img.data;
  }
  const { data, info } = await sharp(inputs as Uint8Array[], {
    failOn: 'warning',
    sequentialRead: true,
    join: { across: 1 },
  })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== width || info.height !== height * inputs.length) {
    throw new Error(`joined decode returned ${info.width}×${info.height}×${info.channels}`);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** Encodes an RGB image (for writing test and benchmark folders). */
export async function encodeImage(
  img: RgbImage,
  format: 'jpeg' | 'png' | 'webp',
  opts: { quality?: number } = {},
): Promise<Buffer> {
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (format === 'jpeg') return s.jpeg({ quality: opts.quality ?? 90 }).toBuffer();
  if (format === 'webp') return s.webp({ quality: opts.quality ?? 90 }).toBuffer();
  return s.png().toBuffer();
}

/** Resizes an RGB image to exactly width × height (sharp, bilinear, no aspect kept). */
export async function resizeImage(img: RgbImage, width: number, height: number): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height };
}
