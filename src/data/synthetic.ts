// A procedural image data set for tests and examples: every image is computed from (seed,
// index), so nothing is stored, and the classes are learnable: each class has its own hue and
// stripe orientation, and each image its own phase, frequency jitter, brightness and noise.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkIndex, type Dataset, type RgbImage, type Sample } from './dataset.js';
import { encodeImage } from './decode.js';
import { Rng } from './rng.js';

export interface SyntheticOptions {
  length: number;
  numClasses?: number;
  /** image side in pixels (or [width, height]) */
  size?: number | readonly [number, number];
  seed?: number;
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - f * s);
  const t = v * (1 - (1 - f) * s);
  switch (((i % 6) + 6) % 6) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

export class SyntheticImages implements Dataset {
  readonly length: number;
  readonly classes: readonly string[];
  readonly width: number;
  readonly height: number;
  readonly seed: number;

  constructor(opts: SyntheticOptions) {
    const k = opts.numClasses ?? 10;
    if (!Number.isInteger(opts.length) || opts.length < 0)
      throw new RangeError(`SyntheticImages: bad length ${opts.length}`);
    if (!Number.isInteger(k) || k < 2) throw new RangeError(`SyntheticImages: need at least two classes, got ${k}`);
    this.length = opts.length;
    this.classes = Array.from({ length: k }, (_, i) => `class_${String(i).padStart(2, '0')}`);
    const size = opts.size ?? 32;
    [this.width, this.height] = typeof size === 'number' ? [size, size] : [size[0], size[1]];
    this.seed = opts.seed ?? 0;
  }

  /** Labels cycle through the classes, so every class has ⌊n/k⌋ or ⌈n/k⌉ images. */
  label(i: number): number {
    checkIndex(this, i, 'SyntheticImages');
    return i % this.classes.length;
  }

  source(i: number): string {
    return `synthetic#${i}`;
  }

  image(i: number): RgbImage {
    const label = this.label(i);
    const k = this.classes.length;
    const rng = new Rng(this.seed, i, 0x51);
    const { width: w, height: h } = this;
    const hue = (label / k + 0.02 * (rng.float() - 0.5) + 1) % 1;
    const angle = Math.PI * ((label * 0.618034) % 1) + 0.1 * (rng.float() - 0.5);
    const freq = (2 + (label % 3)) * (0.9 + 0.2 * rng.float());
    const phase = 2 * Math.PI * rng.float();
    const gain = 0.8 + 0.4 * rng.float();
    const [cx, cy] = [Math.cos(angle), Math.sin(angle)];
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const t = (2 * Math.PI * freq * (x * cx + y * cy)) / Math.max(w, h) + phase;
        const v = Math.min(1, gain * (0.35 + 0.3 * (1 + Math.sin(t))));
        const [r, g, b] = hsvToRgb(hue, 0.75, v);
        const q = 3 * (y * w + x);
        const noise = (): number => (rng.next() & 31) - 16;
        data[q] = Math.max(0, Math.min(255, Math.round(r * 255) + noise()));
        data[q + 1] = Math.max(0, Math.min(255, Math.round(g * 255) + noise()));
        data[q + 2] = Math.max(0, Math.min(255, Math.round(b * 255) + noise()));
      }
    }
    return { data, width: w, height: h };
  }

  get(i: number): Promise<Sample> {
    try {
      return Promise.resolve({ image: this.image(i), label: this.label(i) });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
}

/**
 * Writes a data set as an image folder, `<dir>/<class>/<index>.<ext>` (for tests and
 * benchmarks that need files on disk); returns the paths written, in index order.
 */
export async function writeImageFolder(
  ds: Dataset,
  dir: string,
  opts: { format?: 'jpeg' | 'png' | 'webp'; quality?: number } = {},
): Promise<string[]> {
  const format = opts.format ?? 'jpeg';
  const ext = format === 'jpeg' ? 'jpg' : format;
  const digits = String(Math.max(0, ds.length - 1)).length;
  for (const c of ds.classes) mkdirSync(join(dir, c), { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < ds.length; i++) {
    const s = await ds.get(i);
    const path = join(dir, ds.classes[s.label]!, `${String(i).padStart(digits, '0')}.${ext}`);
    writeFileSync(path, await encodeImage(s.image, format, { quality: opts.quality }));
    paths.push(path);
  }
  return paths;
}
