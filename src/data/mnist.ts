// MNIST and Fashion-MNIST from their IDX files (gzip-compressed or raw): 28×28 grayscale
// images, handed out as RGB (three equal channels) like every other data set.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { checkIndex, grayToRgb, type Dataset, type Sample } from './dataset.js';
import { FASHION_MNIST_DIR, readIdx } from './idx.js';

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];
export const MNIST_CLASSES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

function idxFile(dir: string, stem: string): string {
  for (const name of [`${stem}.gz`, stem]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${join(dir, stem)}(.gz) not found`);
}

export class IdxImageDataset implements Dataset {
  readonly length: number;
  readonly width: number;
  readonly height: number;
  private readonly pixels: Uint8Array;
  private readonly labels: Uint8Array;

  /** Images from an idx3 file (n × rows × cols) and labels from an idx1 file. */
  constructor(
    readonly imagesFile: string,
    readonly labelsFile: string,
    readonly classes: readonly string[],
    private readonly name = 'idx',
  ) {
    const images = readIdx(imagesFile);
    const labels = readIdx(labelsFile);
    if (images.shape.length !== 3)
      throw new Error(`${imagesFile}: expected n × rows × cols, got [${images.shape.join(', ')}]`);
    if (labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
      throw new Error(`${labelsFile}: ${labels.shape[0]} labels for ${images.shape[0]} images in ${imagesFile}`);
    }
    for (const l of labels.data) {
      if (l >= classes.length) throw new Error(`${labelsFile}: label ${l} but only ${classes.length} classes`);
    }
    [this.length, this.height, this.width] = images.shape as [number, number, number];
    this.pixels = images.data;
    this.labels = labels.data;
  }

  label(i: number): number {
    checkIndex(this, i, this.name);
    return this.labels[i]!;
  }

  source(i: number): string {
    return `${this.name}#${i}`;
  }

  get(i: number): Promise<Sample> {
    try {
      const n = this.width * this.height;
      const gray = this.pixels.subarray(i * n, (i + 1) * n);
      return Promise.resolve({ label: this.label(i), image: grayToRgb(gray, this.width, this.height) });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
}

/**
 * MNIST or Fashion-MNIST: `<dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`. The
 * default folder is where Debian's dataset-fashion-mnist package puts Fashion-MNIST.
 */
export function mnist(
  split: 'train' | 'test',
  opts: { kind?: 'mnist' | 'fashion-mnist'; dir?: string } = {},
): IdxImageDataset {
  const kind = opts.kind ?? 'fashion-mnist';
  const dir = opts.dir ?? (kind === 'fashion-mnist' ? FASHION_MNIST_DIR : undefined);
  if (dir === undefined) throw new Error('mnist: no folder given for MNIST');
  const prefix = split === 'train' ? 'train' : 't10k';
  return new IdxImageDataset(
    idxFile(dir, `${prefix}-images-idx3-ubyte`),
    idxFile(dir, `${prefix}-labels-idx1-ubyte`),
    kind === 'fashion-mnist' ? FASHION_MNIST_CLASSES : MNIST_CLASSES,
    `${kind}/${split}`,
  );
}
