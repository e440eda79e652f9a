// Gaussian blur with torchvision's kernel (a sampled, normalised Gaussian over
// linspace(-(k-1)/2, (k-1)/2, k)) and reflect padding, with one sigma per image: the images and
// channels become the groups of one depthwise convolution, so a batch with different sigmas is
// still two conv2d calls (the kernel is separable: a row pass, then a column pass).
import { F, linspace, tidy, type Tensor } from '../../torch/index.js';
import { applyTo, bernoulli, castBack, dims, perImage, pick, uniform, indicesOf } from './common.js';
import type { HostFactors, Range } from './color.js';

const kernelPair = (k: number | readonly [number, number]): [number, number] =>
  typeof k === 'number' ? [k, k] : [k[0], k[1]];

/** [n, k] normalised 1-D Gaussian kernels, one per sigma. */
function kernels1d(k: number, sigma: Tensor): Tensor {
  return tidy(() => {
    const half = (k - 1) / 2;
    const x = linspace(-half, half, k, { dtype: sigma.dtype, device: sigma.device }).view(1, k);
    const pdf = x.div(sigma).square().mul(-0.5).exp();
    return pdf.div(pdf.sum(1, true));
  });
}

/**
 * Blurs every image with a Gaussian of the given kernel size ([width, height] or one odd
 * number) and standard deviation (one for the batch or one per image), as torchvision's
 * F.gaussian_blur with sigma [s, s].
 */
export function gaussianBlur(x: Tensor, kernelSize: number | readonly [number, number], sigma: HostFactors): Tensor {
  const [n, c, h, w] = dims(x, 'gaussianBlur');
  const [kx, ky] = kernelPair(kernelSize);
  for (const k of [kx, ky]) {
    if (!(k > 0 && k % 2 === 1)) throw new RangeError(`gaussianBlur: kernel size ${k} must be odd and positive`);
  }
  const sig = typeof sigma === 'number' ? new Array<number>(n).fill(sigma) : sigma;
  if (sig.length !== n) throw new RangeError(`gaussianBlur: ${sig.length} sigmas for ${n} images`);
  const px = Math.floor(kx / 2);
  const py = Math.floor(ky / 2);
  if (px >= w || py >= h) {
    throw new RangeError(`gaussianBlur: kernel ${kx}x${ky} needs images larger than its half-size, got ${h}x${w}`);
  }
  return tidy(() => {
    const img = x.dtype === 'uint8' ? x.to('float32') : x;
    const s = perImage(sig, img).view(n, 1);
    // one group per (image, channel): weights [n*c, 1, 1, kx] and [n*c, 1, ky, 1]
    const wx = kernels1d(kx, s)
      .unsqueeze(1)
      .expand(n, c, kx)
      .reshape(n * c, 1, 1, kx);
    const wy = kernels1d(ky, s)
      .unsqueeze(1)
      .expand(n, c, ky)
      .reshape(n * c, 1, ky, 1);
    const padded = F.pad(img, [px, px, py, py], 'reflect').reshape(1, n * c, h + 2 * py, w + 2 * px);
    const rows = F.conv2d(padded, wx, null, { groups: n * c });
    const out = F.conv2d(rows, wy, null, { groups: n * c }).reshape(n, c, h, w);
    return castBack(out, x.dtype, 'round');
  });
}

/** An odd kernel size of about a tenth of the image side (SimCLR/BYOL: 23 for 224). */
export const blurKernelFor = (size: number): number => 2 * Math.floor(size / 20) + 1;

export interface GaussianBlurOptions {
  /** Sigma range, drawn uniformly per image; default [0.1, 2]. */
  sigma?: Range;
  /** Probability that an image is blurred (RandomApply around it); default 1. */
  p?: number;
}

export interface GaussianBlurParams {
  apply: boolean[];
  sigma: number[];
}

/** torchvision's GaussianBlur with a random sigma per image, applied with probability p. */
export class GaussianBlur {
  readonly kernelSize: [number, number];
  readonly sigma: Range;
  readonly p: number;

  constructor(kernelSize: number | readonly [number, number], o: GaussianBlurOptions = {}) {
    this.kernelSize = kernelPair(kernelSize);
    this.sigma = o.sigma ?? [0.1, 2];
    if (!(this.sigma[0] > 0 && this.sigma[0] <= this.sigma[1])) {
      throw new RangeError(`GaussianBlur: sigma [${this.sigma.join(', ')}] must be positive and [min, max]`);
    }
    this.p = o.p ?? 1;
  }

  sampleParams(n: number): GaussianBlurParams {
    return { apply: bernoulli(n, this.p), sigma: uniform(n, this.sigma[0], this.sigma[1]) };
  }

  apply(x: Tensor, params: GaussianBlurParams): Tensor {
    return tidy(() =>
      applyTo(x, indicesOf(params.apply), (sub, idx) => gaussianBlur(sub, this.kernelSize, pick(params.sigma, idx))),
    );
  }

  forward(x: Tensor): Tensor {
    return this.apply(x, this.sampleParams(dims(x, 'GaussianBlur')[0]));
  }
}
