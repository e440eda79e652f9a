// The image transforms against torchvision 0.14 with fixed parameters: test/fixtures/transforms.json
// (written by test/fixtures/make_transform_fixtures.py) holds two 3x24x32 images as uint8 and
// float32, and per case the op, its parameters and torchvision's outputs. Every output must match
// within 1/255 of the pixel range (one level for uint8); each case reports its largest deviation
// (on the 0..255 scale) as a test diagnostic.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { F, liveTensors, manualSeed, rand, tensor, tidy, type Tensor } from '../../src/torch/index.js';
import {
  ColorJitter,
  Mixup,
  RandomErasing,
  RandomResizedCrop,
  ResizeCenterCrop,
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  applyRandAugmentOp,
  gaussianBlur,
  hflip,
  normalize,
  resizedCrop,
  rgbToGrayscale,
  solarize,
  maxValue,
  type Box,
  type ColorJitterParams,
  type CutmixBox,
  type GridInterpolation,
  type Interpolation,
  type RandAugmentOp,
} from '../../src/data/transforms/index.js';
import { fitImage } from '../../src/data/fit.js';
import { resizedCrops } from '../../src/data/native/kernels.js';

interface Rec {
  shape: number[];
  dtype: 'uint8' | 'float32' | 'int64';
  data: string;
}
interface Case {
  name: string;
  op: string;
  input: 'u8' | 'f32';
  params: Record<string, unknown>;
  outputs: Rec[];
}

function findFixture(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test/fixtures/transforms.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('test/fixtures/transforms.json not found');
    dir = parent;
  }
}
const fixture = JSON.parse(readFileSync(findFixture(), 'utf8')) as {
  torchvision: string;
  images: Record<string, Rec>;
  cases: Case[];
};

function decode(r: Rec): Tensor {
  const buf = Buffer.from(r.data, 'base64');
  const bytes = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const data =
    r.dtype === 'uint8'
      ? new Uint8Array(bytes)
      : r.dtype === 'int64'
        ? new BigInt64Array(bytes)
        : new Float32Array(bytes);
  return tensor(data, { shape: r.shape });
}

type Impl = (x: Tensor, p: Record<string, unknown>) => Tensor | Tensor[];

const num = (v: unknown): number => v as number;
const nums = (v: unknown): number[] => v as number[];
const JITTER_OPS = [adjustBrightness, adjustContrast, adjustSaturation, adjustHue];
const COLOR_OPS: Record<string, (x: Tensor, f: number[]) => Tensor> = {
  brightness: adjustBrightness,
  contrast: adjustContrast,
  saturation: adjustSaturation,
  hue: adjustHue,
};

const impls: Record<string, Impl> = {
  resized_crop: (x, p) => {
    const boxes: Box[] = (p.boxes as number[][]).map(([top, left, height, width]) => ({
      top: top!,
      left: left!,
      height: height!,
      width: width!,
    }));
    return resizedCrop(x, boxes, p.size as [number, number], {
      interpolation: p.interpolation as Interpolation,
      antialias: p.antialias as boolean,
    });
  },
  hflip: (x) => hflip(x),
  // the pipeline's one resize + centre crop (training's loadSize, evaluation, the kNN monitor)
  resize_center_crop: (x, p) =>
    new ResizeCenterCrop(num(p.resize), p.crop as [number, number], {
      interpolation: p.interpolation as Interpolation,
      antialias: p.antialias as boolean,
    }).forward(x),
  center_crop: (x, p) => new ResizeCenterCrop(null, p.crop as [number, number]).forward(x),
  brightness: (x, p) => COLOR_OPS.brightness!(x, nums(p.factors)),
  contrast: (x, p) => COLOR_OPS.contrast!(x, nums(p.factors)),
  saturation: (x, p) => COLOR_OPS.saturation!(x, nums(p.factors)),
  hue: (x, p) => COLOR_OPS.hue!(x, nums(p.factors)),
  grayscale: (x) => rgbToGrayscale(x, 3),
  solarize: (x, p) => solarize(x, num(p.threshold) * maxValue(x)),
  normalize: (x, p) => normalize(x, nums(p.mean), nums(p.std)),
  color_jitter: (x, p) => {
    const jitter = new ColorJitter({ brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.2 });
    const params: ColorJitterParams = {
      apply: [true, true],
      order: p.order as number[][],
      brightness: nums(p.brightness),
      contrast: nums(p.contrast),
      saturation: nums(p.saturation),
      hue: nums(p.hue),
    };
    // the batched application must equal the ops run one by one in each image's order
    const one = (i: number): Tensor => {
      let y = x.narrow(0, i, 1);
      for (const op of params.order[i]!) {
        const f = [params.brightness, params.contrast, params.saturation, params.hue][op]![i]!;
        y = JITTER_OPS[op]!(y, [f]);
      }
      return y;
    };
    const batched = jitter.apply(x, params);
    // float32 on the CPU runs fused (one native pass per op and image): the same float32
    // arithmetic, but the contrast mean is summed in another order (double), so allow 1e-5
    const tol = x.dtype === 'float32' && x.device === 'cpu' ? 1e-5 : 0;
    for (let i = 0; i < 2; i++) {
      const d = one(i)
        .to('float32')
        .sub(batched.narrow(0, i, 1).to('float32'))
        .abs()
        .max()
        .item();
      assert.ok((d as number) <= tol, `batched ColorJitter differs from the per-image order by ${d}`);
    }
    return batched;
  },
  gaussian_blur: (x, p) => gaussianBlur(x, num(p.kernel), nums(p.sigma)),
  ra_op: (x, p) =>
    applyRandAugmentOp(p.op as RandAugmentOp, x, p.args as (number | null)[], {
      interpolation: (p.interpolation as GridInterpolation | undefined) ?? 'bilinear',
      fill: (p.fill as number[] | undefined) ?? [128, 128, 128],
    }),
  mixup: (x, p) => {
    const mix = new Mixup({ numClasses: 10, labelSmoothing: 0.1 });
    const target = tensor(BigInt64Array.from(nums(p.target), BigInt));
    const out = mix.apply(x, target, {
      lam: num(p.lam),
      useCutmix: p.useCutmix as boolean,
      box: p.box as CutmixBox | null,
    });
    return [out.x, out.target];
  },
  erasing: (x, p) => new RandomErasing({ mode: p.mode as 'const' }).apply(x, p.boxes as Box[][]),
};

/** Largest |got - want| on the 0..255 scale (uint8 and [0, 1] floats; other outputs as they are). */
function deviation(got: Tensor, want: Tensor, scale: number): number {
  assert.deepEqual(got.shape, want.shape, 'shape');
  assert.equal(got.dtype, want.dtype, 'dtype');
  return (got.to('float64').sub(want.to('float64')).abs().max().item() as number) * scale;
}

const worst: Record<string, number> = {};
const fmt = (v: number): string => (v === 0 ? '0' : v.toExponential(2));

test('every fixture op has an implementation', () => {
  const ops = new Set(fixture.cases.map((c) => c.op));
  assert.deepEqual(
    [...ops].filter((o) => !(o in impls)),
    [],
  );
  assert.deepEqual(
    Object.keys(impls).filter((o) => !ops.has(o)),
    [],
  );
});

/**
 * Ops whose outputs are compared as they are (normalised images, mixed images and soft targets):
 * float32 arithmetic as torchvision's, so within a few float32 roundings of values below ~3.
 * (A bound of 1 on these would hold for any output in [0, 1].)
 */
const UNSCALED = ['normalize', 'mixup', 'erasing'];
const UNSCALED_TOL = 1e-6;

for (const c of fixture.cases) {
  const within = UNSCALED.includes(c.op) ? String(UNSCALED_TOL) : '1/255';
  test(`${c.name} matches torchvision ${fixture.torchvision} within ${within}`, (t) => {
    const before = liveTensors();
    tidy(() => {
      const x = decode(fixture.images[c.input]!);
      const got = impls[c.op]!(x, c.params);
      const outs = Array.isArray(got) ? got : [got];
      assert.equal(outs.length, c.outputs.length, 'number of outputs');
      outs.forEach((o, k) => {
        const want = decode(c.outputs[k]!);
        // images on the 0..255 scale, within one level; normalised images and targets as they are
        const unscaled = UNSCALED.includes(c.op);
        const scale = want.dtype === 'float32' && !unscaled ? 255 : 1;
        const dev = deviation(o, want, scale);
        const key = `${c.op === 'ra_op' ? String(c.params.op) : c.op}`;
        worst[key] = Math.max(worst[key] ?? 0, dev);
        t.diagnostic(`max deviation ${fmt(dev)}${scale === 255 ? '/255' : ''}`);
        if (unscaled) assert.ok(dev <= UNSCALED_TOL, `output ${k}: max deviation ${dev} > ${UNSCALED_TOL}`);
        else assert.ok(dev <= 1 + 1e-6, `output ${k}: max deviation ${dev} > 1${scale === 255 ? '/255' : ''}`);
      });
    });
    assert.equal(liveTensors(), before, 'tensors leaked');
  });
}

test('the loader perSample (one HWC image at a time, natively off the JS thread) matches torchvision within one level', async () => {
  // every uint8 resize + centre crop case, with the fixture's interpolation
  const cases = fixture.cases.filter((c) => c.input === 'u8' && ['resize_center_crop', 'center_crop'].includes(c.op));
  assert.deepEqual(
    cases.map((c) => c.name),
    [
      'resize_center_crop_bilinear_u8',
      'resize_center_crop_bicubic_u8',
      'resize_up_center_crop_u8',
      'center_crop_pad_u8',
    ],
  );
  const before = liveTensors();
  const x = decode(fixture.images.u8!);
  const [n, , h, w] = x.shape as [number, number, number, number];
  for (const c of cases) {
    const p = c.params;
    const op = new ResizeCenterCrop((p.resize as number | undefined) ?? null, p.crop as [number, number], {
      interpolation: (p.interpolation as Interpolation | undefined) ?? 'bilinear',
      antialias: (p.antialias as boolean | undefined) ?? true,
    });
    const want = decode(c.outputs[0]!);
    const [, , oh, ow] = want.shape as [number, number, number, number];
    for (let i = 0; i < n; i++) {
      const hwc = tidy(() => x.narrow(0, i, 1).permute([0, 2, 3, 1]).toTypedArray() as Uint8Array);
      const got = await fitImage(op, { data: hwc, width: w, height: h });
      assert.deepEqual([got.width, got.height], [ow, oh], c.name);
      const ref = tidy(() => want.narrow(0, i, 1).permute([0, 2, 3, 1]).toTypedArray() as Uint8Array);
      let worstLevel = 0;
      for (let k = 0; k < ref.length; k++) worstLevel = Math.max(worstLevel, Math.abs(got.data[k]! - ref[k]!));
      assert.ok(worstLevel <= 1, `${c.name} image ${i}: off by ${worstLevel} levels`);
    }
    want.dispose();
  }
  x.dispose();
  assert.equal(liveTensors(), before, 'tensors leaked');
});

test('summary of the largest deviation per transform', (t) => {
  for (const [k, v] of Object.entries(worst).sort()) t.diagnostic(`${k}: ${fmt(v)}`);
});

test('fused ColorJitter (float32 CPU) equals the composed ops, image by image', () => {
  tidy(() => {
    manualSeed(11);
    const x = rand([48, 3, 20, 17]);
    const cases = [
      new ColorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, p: 0.8 }),
      new ColorJitter({ hue: 0.5 }),
      new ColorJitter({ brightness: [0, 2], saturation: 1 }),
    ];
    for (const jitter of cases) {
      // the same float32 arithmetic in the same order, except the contrast mean's summation
      // (double here, pairwise float32 in libtorch), whose last-bit difference later ops carry
      const tol = jitter.ranges[1] === null ? 0 : 1e-5;
      const p = jitter.sampleParams(48);
      const got = jitter.apply(x, p);
      const factors = [p.brightness, p.contrast, p.saturation, p.hue];
      let worstDiff = 0;
      for (let i = 0; i < 48; i++) {
        let y = x.narrow(0, i, 1);
        if (p.apply[i])
          for (const op of p.order[i]!) if (jitter.ranges[op] !== null) y = JITTER_OPS[op]!(y, [factors[op]![i]!]);
        worstDiff = Math.max(
          worstDiff,
          y
            .sub(got.narrow(0, i, 1))
            .abs()
            .max()
            .item() as number,
        );
      }
      assert.ok(worstDiff <= tol, `fused jitter differs by ${worstDiff} (allowed ${tol})`);
    }
  });
});

test('resizedCrop on the CPU (one native call) equals F.interpolate image by image', () => {
  tidy(() => {
    manualSeed(12);
    const x = rand([24, 3, 40, 33]);
    const rrc = new RandomResizedCrop(16, { scale: [0.08, 1] });
    for (const interpolation of ['bilinear', 'bicubic'] as const)
      for (const antialias of [true, false]) {
        const boxes = rrc.sampleParams(24, 40, 33);
        const got = resizedCrop(x, boxes, 16, { interpolation, antialias });
        boxes.forEach((b, i) => {
          const c = x.narrow(0, i, 1).narrow(2, b.top, b.height).narrow(3, b.left, b.width);
          const want = F.interpolate(c, { size: [16, 16], mode: interpolation, alignCorners: false, antialias });
          const d = want
            .sub(got.narrow(0, i, 1))
            .abs()
            .max()
            .item() as number;
          assert.equal(d, 0, `${interpolation} antialias ${antialias} image ${i}`);
        });
      }
  });
});

test('the native CPU paths refuse inputs that require grad; the transforms then take the composed ops', () => {
  tidy(() => {
    manualSeed(13);
    const x = rand([4, 3, 12, 12]).requiresGrad_(true);
    const boxes = new RandomResizedCrop(8).sampleParams(4, 12, 12);
    const flat = boxes.flatMap((b) => [b.top, b.left, b.height, b.width]);
    assert.throws(() => resizedCrops(x, flat, [8, 8]), /requires grad/);
    const jitter = new ColorJitter({ brightness: 0.4, hue: 0.1 });
    const p = jitter.sampleParams(4);
    const y = resizedCrop(x, boxes, 8);
    const z = jitter.apply(y, p);
    z.sum().backward();
    assert.ok(x.grad, 'gradients reach the input through the composed ops');
    const plain = jitter.apply(resizedCrop(x.detach(), boxes, 8), p);
    assert.ok((z.detach().sub(plain).abs().max().item() as number) <= 1e-6);
  });
});
