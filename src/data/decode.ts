// Image decoding with sharp (libvips): any JPEG, PNG or WebP to RGB uint8, HWC. Grayscale
// becomes three equal channels, alpha is dropped, the EXIF orientation is applied, and an
// embedded ICC profile is converted to sRGB. Decoding runs in libuv's thread pool (sharp's
// async API); the loader calls these in its decode worker processes (decode-pool.ts). JPEGs
// that the addon's libjpeg decoder takes (native/jpeg.ts decides) never come here: sharp decodes
// the rest (PNG, WebP, CMYK, rotated or ICC-tagged JPEGs) and rejects what is corrupt.
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
