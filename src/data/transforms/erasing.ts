// timm's RandomErasing, for normalised float batches (the MAE fine-tuning recipe: probability 0.25,
// mode 'pixel', one box): per image, with the given probability, up to 10 attempts at a box with a
// random area fraction and log-uniform aspect ratio; the box is filled with N(0, 1) noise per
// pixel ('pixel'), one N(0, 1) colour per box ('rand') or zeros ('const').
//
// Batched: the boxes of all erased images become one mask (comparisons of row/column indices
// with per-image box bounds), and the noise is one randn of the erased sub-batch's shape.
import { arange, randn, tensor, tidy, where as select, type Tensor } from '../../torch/index.js';
import { applyTo, dims, roundHalfEven, uniform, type Box } from './common.js';

export type ErasingMode = 'const' | 'rand' | 'pixel';

export interface RandomErasingOptions {
  /** Probability that an image is erased; default 0.25 (MAE's reprob). */
  probability?: number;
  /** Range of the box area as a fraction of the image's (divided by the box count); default [0.02, 1/3]. */
  minArea?: number;
  maxArea?: number;
  /** Aspect ratio range [minAspect, maxAspect]; maxAspect defaults to 1 / minAspect; default 0.3. */
  minAspect?: number;
  maxAspect?: number;
  /** default 'pixel' (MAE's remode) */
  mode?: ErasingMode;
  /** Maximum number of boxes per image (the count is uniform in 1..count); default 1. */
  count?: number;
  /** With num_splits > 1 the first batch/num_splits images are left clean (timm's AugMix splits). */
  numSplits?: number;
}

export class RandomErasing {
  readonly probability: number;
  readonly minArea: number;
  readonly maxArea: number;
  readonly logAspect: readonly [number, number];
  readonly mode: ErasingMode;
  readonly count: number;
  readonly numSplits: number;

  constructor(o: RandomErasingOptions = {}) {
    this.probability = o.probability ?? 0.25;
    this.minArea = o.minArea ?? 0.02;
    this.maxArea = o.maxArea ?? 1 / 3;
    const minAspect = o.minAspect ?? 0.3;
    this.logAspect = [Math.log(minAspect), Math.log(o.maxAspect ?? 1 / minAspect)];
    this.mode = o.mode ?? 'pixel';
    this.count = o.count ?? 1;
    this.numSplits = o.numSplits ?? 0;
  }

  /** Per image, the boxes to erase (none for images left alone). */
  sampleParams(n: number, height: number, width: number): Box[][] {
    const attempts = 10;
    const per = 2 + this.count * attempts * 4;
    const u = uniform(n * per);
    const start = this.numSplits > 1 ? Math.floor(n / this.numSplits) : 0;
    const area = height * width;
    const out: Box[][] = [];
    for (let i = 0; i < n; i++) {
      const boxes: Box[] = [];
      out.push(boxes);
      const o = i * per;
      if (i < start || u[o]! > this.probability) continue;
      const count = this.count > 1 ? 1 + Math.min(this.count - 1, Math.floor(u[o + 1]! * this.count)) : this.count;
      for (let b = 0; b < count; b++) {
        for (let k = 0; k < attempts; k++) {
          const q = o + 2 + (b * attempts + k) * 4;
          const targetArea = ((this.minArea + (this.maxArea - this.minArea) * u[q]!) * area) / count;
          const aspect = Math.exp(this.logAspect[0] + (this.logAspect[1] - this.logAspect[0]) * u[q + 1]!);
          const h = roundHalfEven(Math.sqrt(targetArea * aspect));
          const w = roundHalfEven(Math.sqrt(targetArea / aspect));
          if (w < width && h < height) {
            // Python's random.randint(0, side - h): both ends included
            const top = Math.min(height - h, Math.floor(u[q + 2]! * (height - h + 1)));
            const left = Math.min(width - w, Math.floor(u[q + 3]! * (width - w + 1)));
            boxes.push({ top, left, height: h, width: w });
            break;
          }
        }
      }
    }
    return out;
  }

  apply(x: Tensor, boxes: readonly (readonly Box[])[]): Tensor {
    const [n, c, h, w] = dims(x, 'RandomErasing');
    if (x.dtype === 'uint8') throw new TypeError('RandomErasing: expected a (normalised) float batch');
    if (boxes.length !== n) throw new RangeError(`RandomErasing: ${boxes.length} box lists for ${n} images`);
    const idx = boxes.flatMap((b, i) => (b.length > 0 ? [i] : []));
    return tidy(() =>
      applyTo(x, idx, (sub, ix) => {
        const k = ix.length;
        const slots = Math.max(...ix.map((i) => boxes[i]!.length));
        // [k, slots] bounds; missing slots are empty boxes
        const bound = (f: (b: Box) => number): Tensor =>
          tensor(
            Float32Array.from({ length: k * slots }, (_, j) => {
              const b = boxes[ix[Math.floor(j / slots)]!]![j % slots];
              return b ? f(b) : 0;
            }),
            { shape: [k, slots, 1, 1], device: x.device },
          );
        const rows = arange(0, h, 1, { dtype: 'float32', device: x.device }).view(1, 1, h, 1);
        const cols = arange(0, w, 1, { dtype: 'float32', device: x.device }).view(1, 1, 1, w);
        const top = bound((b) => b.top);
        const left = bound((b) => b.left);
        const inRows = rows.ge(top).logicalAnd(rows.lt(top.add(bound((b) => b.height))));
        const inCols = cols.ge(left).logicalAnd(cols.lt(left.add(bound((b) => b.width))));
        const masks = inRows.logicalAnd(inCols); // [k, slots, h, w]
        if (this.mode === 'pixel') {
          return select(masks.any(1, true), randn([k, c, h, w], { dtype: x.dtype, device: x.device }), sub);
        }
        if (this.mode === 'const') return select(masks.any(1, true), 0, sub);
        let out = sub;
        const colours = randn([k, slots, c], { dtype: x.dtype, device: x.device });
        for (let s = 0; s < slots; s++) {
          out = select(masks.narrow(1, s, 1), colours.select(1, s).view(k, c, 1, 1), out);
        }
        return out;
      }),
    );
  }

  forward(x: Tensor): Tensor {
    const [n, , h, w] = dims(x, 'RandomErasing');
    return this.apply(x, this.sampleParams(n, h, w));
  }
}
