// The random side of the transforms: parameter distributions (ranges, and frequencies within
// binomial bounds), the pre-training strategies' outputs and the light strategy's shared crop,
// mixup/cutmix targets and lambdas, reproducibility by seed, and no leaked tensors. Every test
// seeds the generator, so the checks are deterministic; the bounds are 5 standard deviations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { liveTensors, manualSeed, rand, randint, tensor, tidy, type Tensor } from '../../src/torch/index.js';
import {
  ColorJitter,
  EvalTransform,
  FinetuneAugmentation,
  GaussianBlur,
  IMAGENET_MEAN,
  IMAGENET_STD,
  LightAugmentation,
  MediumAugmentation,
  Mixup,
  RAND_INCREASING_TRANSFORMS,
  RandAugment,
  RandomErasing,
  RandomGrayscale,
  RandomHorizontalFlip,
  RandomResizedCrop,
  RandomSolarize,
  StrongAugmentation,
  levelToArg,
  mixupTarget,
  normalize,
  pretrainAugmentation,
  randAugmentFromString,
  sampleBeta,
} from '../../src/data/transforms/index.js';

/** Runs fn in a scope and checks that it leaves no tensor behind. */
function noLeak(fn: () => void): void {
  const before = liveTensors();
  tidy(fn);
  assert.equal(liveTensors(), before, 'tensors leaked');
}

/** k successes out of n within 5 sigma of n p. */
function binomial(k: number, n: number, p: number, what: string): void {
  const sd = Math.sqrt(n * p * (1 - p));
  assert.ok(
    Math.abs(k - n * p) <= 5 * sd,
    `${what}: ${k} of ${n}, expected ${(n * p).toFixed(1)} ± ${(5 * sd).toFixed(1)}`,
  );
}
const count = (flags: readonly boolean[]): number => flags.filter(Boolean).length;
const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const variance = (v: readonly number[]): number => {
  const m = mean(v);
  return v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
};
/** The sample mean of n draws with this sd within 5 standard errors of `want`. */
function closeMean(v: readonly number[], want: number, sd: number, what: string): void {
  const m = mean(v);
  assert.ok(Math.abs(m - want) <= (5 * sd) / Math.sqrt(v.length), `${what}: mean ${m}, expected ${want}`);
}
const uint8Batch = (n: number, h: number, w: number): Tensor => randint(0, 256, [n, 3, h, w], { dtype: 'uint8' });
const maxAbs = (a: Tensor, b: Tensor): number => a.sub(b).abs().max().item() as number;

test('RandomResizedCrop: area fraction and log-ratio ranges, uniform positions', () => {
  manualSeed(1);
  const n = 4000;
  const boxes = new RandomResizedCrop(24).sampleParams(n, 300, 400);
  for (const b of boxes) {
    assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 300 && b.left + b.width <= 400, JSON.stringify(b));
    const frac = (b.height * b.width) / (300 * 400);
    assert.ok(frac >= 0.08 * 0.98 && frac <= 1, `area fraction ${frac}`);
    const lr = Math.log(b.width / b.height);
    assert.ok(lr >= Math.log(3 / 4) - 0.012 && lr <= Math.log(4 / 3) + 0.012, `log ratio ${lr}`);
  }
  // where every attempt fits, the area fraction and the log-ratio are uniform in their ranges
  const inner = new RandomResizedCrop(24, { scale: [0.2, 0.5] }).sampleParams(n, 400, 400);
  const fracs = inner.map((b) => (b.height * b.width) / 160000);
  closeMean(fracs, 0.35, 0.3 / Math.sqrt(12), 'area fraction');
  binomial(count(fracs.map((f) => f < 0.275)), n, 0.25, 'area fraction below its first quartile');
  const lrs = inner.map((b) => Math.log(b.width / b.height));
  closeMean(lrs, 0, (2 * Math.log(4 / 3)) / Math.sqrt(12), 'log ratio');
  binomial(count(lrs.map((v) => v < 0)), n, 0.5, 'log ratio below 0');
  closeMean(
    inner.map((b) => b.top / (400 - b.height)),
    0.5,
    Math.sqrt(1 / 12),
    'relative top',
  );
});

test("RandomResizedCrop: torchvision's central fallback after 10 failed attempts", () => {
  manualSeed(2);
  const crop = new RandomResizedCrop(8, { scale: [0.9, 1] });
  assert.deepEqual(crop.sampleParams(2, 10, 1000), [
    { top: 0, left: 493, height: 10, width: 13 },
    { top: 0, left: 493, height: 10, width: 13 },
  ]);
  assert.deepEqual(crop.sampleParams(1, 1000, 10), [{ top: 493, left: 0, height: 13, width: 10 }]);
});

test('flip, grayscale, solarize and blur: application frequencies and what they do', () => {
  manualSeed(3);
  const n = 4000;
  binomial(count(new RandomHorizontalFlip(0.5).sampleParams(n)), n, 0.5, 'flip');
  binomial(count(new RandomGrayscale(0.2).sampleParams(n)), n, 0.2, 'grayscale');
  binomial(count(new RandomSolarize(0.2).sampleParams(n)), n, 0.2, 'solarize');
  const blur = new GaussianBlur(3, { p: 0.1 }).sampleParams(n);
  binomial(count(blur.apply), n, 0.1, 'blur');
  assert.ok(blur.sigma.every((s) => s >= 0.1 && s <= 2));
  closeMean(blur.sigma, 1.05, 1.9 / Math.sqrt(12), 'sigma');
  noLeak(() => {
    const x = uint8Batch(4, 8, 10);
    const flips = [true, false, false, true];
    const y = new RandomHorizontalFlip().apply(x, flips);
    flips.forEach((f, i) => {
      const want = f ? x.narrow(0, i, 1).flip(3) : x.narrow(0, i, 1);
      assert.equal(maxAbs(y.narrow(0, i, 1).to('float32'), want.to('float32')), 0);
    });
    const g = new RandomGrayscale().apply(x, flips).to('float32');
    flips.forEach((f, i) => {
      const [r, gg, b] = g.narrow(0, i, 1).unbind(1) as [Tensor, Tensor, Tensor];
      assert.equal(maxAbs(r, gg) === 0 && maxAbs(gg, b) === 0, f, `image ${i} gray`);
    });
  });
});

test('ColorJitter: factor ranges, apply probability, uniform random orders', () => {
  manualSeed(4);
  const n = 4000;
  const p = new ColorJitter({ brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, p: 0.8 }).sampleParams(n);
  binomial(count(p.apply), n, 0.8, 'jitter applied');
  const within = (v: number[], lo: number, hi: number): boolean => v.every((f) => f >= lo && f <= hi);
  assert.ok(within(p.brightness, 0.6, 1.4) && within(p.contrast, 0.6, 1.4));
  assert.ok(within(p.saturation, 0.8, 1.2) && within(p.hue, -0.1, 0.1));
  closeMean(p.brightness, 1, 0.8 / Math.sqrt(12), 'brightness');
  closeMean(p.hue, 0, 0.2 / Math.sqrt(12), 'hue');
  for (const ord of p.order) assert.deepEqual([...ord].sort(), [0, 1, 2, 3]);
  for (let op = 0; op < 4; op++) binomial(count(p.order.map((o) => o[0] === op)), n, 0.25, `op ${op} first`);
  assert.throws(() => new ColorJitter({ hue: 0.6 }), /hue/);
});

test("RandAugment: timm's level maps, op choice, probability and magnitude noise", () => {
  const at9 = (op: (typeof RAND_INCREASING_TRANSFORMS)[number], neg = false): number | null => levelToArg(op, 9, neg);
  assert.equal(at9('Rotate'), 27);
  assert.equal(at9('Rotate', true), -27);
  assert.equal(at9('PosterizeIncreasing'), 1);
  assert.equal(at9('SolarizeIncreasing'), 26);
  assert.equal(at9('SolarizeAdd'), 99);
  assert.ok(Math.abs(at9('ColorIncreasing')! - 1.81) < 1e-12 && Math.abs(at9('ColorIncreasing', true)! - 0.19) < 1e-12);
  assert.ok(Math.abs(at9('ShearX', true)! + 0.27) < 1e-12 && Math.abs(at9('TranslateXRel')! - 0.405) < 1e-12);
  assert.equal(at9('Equalize'), null);
  assert.equal(levelToArg('Posterize', 9, false), 3);
  assert.equal(levelToArg('Solarize', 10, false), 256);

  const ra = randAugmentFromString('rand-m9-mstd0.5-inc1');
  assert.equal(ra.magnitude, 9);
  assert.equal(ra.magnitudeStd, 0.5);
  assert.equal(ra.numLayers, 2);
  assert.deepEqual(ra.ops, RAND_INCREASING_TRANSFORMS);
  assert.throws(() => randAugmentFromString('rand-w0'), /unknown section/);

  manualSeed(5);
  const n = 6000;
  const { layers } = ra.sampleParams(n);
  assert.equal(layers.length, 2);
  for (const l of layers) {
    binomial(count(l.apply), n, 0.5, 'op applied');
    binomial(count(l.negate), n, 0.5, 'negated');
    for (let k = 0; k < 15; k++) binomial(count(l.op.map((o) => o === k)), n, 1 / 15, `op ${k} chosen`);
    assert.ok(l.magnitude.every((m) => m >= 0 && m <= 10));
    closeMean(l.magnitude, 8.9958, 0.5, 'magnitude');
  }
  noLeak(() => {
    for (const x of [uint8Batch(6, 12, 14), rand(6, 3, 12, 14)]) {
      const y = new RandAugment().forward(x);
      assert.deepEqual(y.shape, x.shape);
      assert.equal(y.dtype, x.dtype);
      assert.ok((y.min().item() as number) >= 0 && (y.max().item() as number) <= (x.dtype === 'uint8' ? 255 : 1));
    }
  });
});

test('RandomErasing: probability, box area and aspect ranges, pixel noise inside the box only', () => {
  manualSeed(6);
  const n = 4000;
  const erase = new RandomErasing();
  const boxes = erase.sampleParams(n, 224, 224);
  binomial(count(boxes.map((b) => b.length > 0)), n, 0.25, 'erased');
  for (const [b] of boxes.filter((bs) => bs.length > 0)) {
    const frac = (b!.height * b!.width) / (224 * 224);
    assert.ok(frac >= 0.018 && frac <= 0.345, `area ${frac}`);
    const ar = b!.height / b!.width;
    assert.ok(ar >= 0.3 * 0.9 && ar <= (1 / 0.3) * 1.1, `aspect ${ar}`);
    assert.ok(b!.top + b!.height <= 224 && b!.left + b!.width <= 224);
  }
  noLeak(() => {
    const x = rand(2, 3, 40, 40);
    const box = { top: 5, left: 8, height: 20, width: 25 };
    const y = erase.apply(x, [[box], []]);
    assert.equal(maxAbs(y.narrow(0, 1, 1), x.narrow(0, 1, 1)), 0);
    const inside = y.narrow(0, 0, 1).narrow(2, 5, 20).narrow(3, 8, 25);
    assert.ok(Math.abs(inside.mean().item() as number) < 0.15 && Math.abs((inside.std().item() as number) - 1) < 0.1);
    const outside = y.narrow(0, 0, 1).narrow(2, 25, 15);
    assert.equal(maxAbs(outside, x.narrow(0, 0, 1).narrow(2, 25, 15)), 0);
  });
});

test('mixup/cutmix: switch probability, lambda ranges and Beta moments, targets summing to 1', () => {
  manualSeed(7);
  const mix = new Mixup({ numClasses: 10 });
  const n = 3000;
  const params = Array.from({ length: n }, () => mix.sampleParams(32, 32));
  binomial(count(params.map((p) => p.useCutmix)), n, 0.5, 'cutmix chosen');
  assert.ok(params.every((p) => p.lam >= 0 && p.lam <= 1));
  for (const p of params.filter((q) => q.useCutmix && q.box)) {
    const { yl, yh, xl, xh } = p.box!;
    assert.ok(0 <= yl && yl <= yh && yh <= 32 && 0 <= xl && xl <= xh && xh <= 32);
    assert.ok(Math.abs(p.lam - (1 - ((yh - yl) * (xh - xl)) / 1024)) < 1e-12, 'corrected lambda');
  }
  // mixup: Beta(0.8, 0.8), mean 1/2, variance 0.64 / (2.56 * 2.6)
  const lams = params.filter((p) => !p.useCutmix).map((p) => p.lam);
  closeMean(lams, 0.5, Math.sqrt(0.64 / (2.56 * 2.6)), 'mixup lambda');
  assert.ok(Math.abs(variance(lams) - 0.64 / (2.56 * 2.6)) < 0.012, `variance ${variance(lams)}`);
  const b25 = Array.from({ length: 3000 }, () => sampleBeta(2, 5));
  closeMean(b25, 2 / 7, Math.sqrt(10 / (49 * 8)), 'Beta(2, 5)');
  assert.ok(Math.abs(variance(b25) - 10 / (49 * 8)) < 0.004);

  noLeak(() => {
    const x = rand(4, 3, 16, 16);
    const target = tensor(BigInt64Array.from([1n, 4n, 9n, 0n]));
    for (let k = 0; k < 6; k++) {
      const { x: y, target: t } = mix.forward(x, target);
      assert.deepEqual(y.shape, x.shape);
      assert.deepEqual(t.shape, [4, 10]);
      const sums = t.sum(1).toTypedArray() as Float32Array;
      for (const s of sums) assert.ok(Math.abs(s - 1) < 1e-6, `target row sum ${s}`);
      assert.ok((t.min().item() as number) >= 0.01 - 1e-7);
    }
    const soft = mixupTarget(target, 10, 0.3, 0.1);
    assert.ok(Math.abs((soft.select(0, 0).select(0, 1).item() as number) - (0.3 * 0.91 + 0.7 * 0.01)) < 1e-6);
    assert.throws(() => mix.forward(rand(3, 3, 8, 8), tensor(BigInt64Array.from([1n, 2n, 3n]))), /even/);
  });
});

const NORM_LO = IMAGENET_MEAN.map((m, c) => (0 - m) / IMAGENET_STD[c]!);
const NORM_HI = IMAGENET_MEAN.map((m, c) => (1 - m) / IMAGENET_STD[c]!);

function checkView(v: Tensor, n: number, size: number, normalised: boolean): void {
  assert.deepEqual(v.shape, [n, 3, size, size]);
  assert.equal(v.dtype, 'float32');
  assert.equal(v.isfinite().all().item(), true);
  for (let c = 0; c < 3; c++) {
    const ch = v.select(1, c);
    const [lo, hi] = normalised ? [NORM_LO[c]!, NORM_HI[c]!] : [0, 1];
    assert.ok(
      (ch.min().item() as number) >= lo - 1e-5 && (ch.max().item() as number) <= hi + 1e-5,
      `channel ${c} range`,
    );
  }
}

test('pre-training strategies: two views of the right shape, dtype and range, from uint8 or float', () => {
  manualSeed(8);
  noLeak(() => {
    for (const strategy of ['strong', 'medium', 'light'] as const) {
      for (const normalize of [undefined, null]) {
        const aug = pretrainAugmentation(strategy, { size: 24, normalize });
        for (const x of [uint8Batch(5, 40, 48), rand(5, 3, 40, 48)]) {
          const { view1, view2 } = aug.forward(x);
          checkView(view1, 5, 24, normalize === undefined);
          checkView(view2, 5, 24, normalize === undefined);
          assert.ok(maxAbs(view1, view2) > 0, `${strategy}: the views differ`);
        }
      }
    }
  });
});

test('light strategy: both views come from the one shared crop', () => {
  manualSeed(9);
  noLeak(() => {
    const x = uint8Batch(6, 40, 48);
    const plain = new LightAugmentation({ size: 24, jitter: null, grayscaleP: 0 });
    const p = plain.sampleParams(6, 40, 48);
    assert.equal(p.crop.length, 6);
    const { view1, view2 } = plain.apply(x, p);
    assert.equal(maxAbs(view1, view2), 0, 'without colour augmentation the views are identical');
    // the shared crop is the box in the parameters
    const withColor = new LightAugmentation({ size: 24 });
    const q = withColor.sampleParams(6, 40, 48);
    const again = plain.apply(x, { ...p, crop: q.crop, flip: q.flip });
    const direct = new RandomResizedCrop(24).apply(x.to('float32').div(255), q.crop);
    const flipped = new RandomHorizontalFlip().apply(direct, q.flip);
    const norm = flipped
      .sub(tensor([...IMAGENET_MEAN]).view(1, 3, 1, 1))
      .div(tensor([...IMAGENET_STD]).view(1, 3, 1, 1));
    assert.ok(maxAbs(again.view1, norm) < 1e-5);
  });
});

test('medium strategy: two crops on the diagonal of one outer crop, at most 32/224 apart', () => {
  manualSeed(10);
  noLeak(() => {
    const size = 56; // outer 64, shifts up to 8
    const aug = new MediumAugmentation({ size, jitter: null, grayscaleP: 0, normalize: null });
    assert.equal(aug.outerSize, 64);
    assert.equal(aug.maxShift, 8);
    const x = uint8Batch(8, 80, 96);
    const p = aug.sampleParams(8, 80, 96);
    const [a, b] = p.offsets;
    a.forEach((o, i) => {
      const d = Math.abs(o - b[i]!);
      assert.ok(o >= 0 && o <= 8 && b[i]! >= 0 && b[i]! <= 8 && d <= 8);
    });
    const { view1, view2 } = aug.apply(x, p);
    a.forEach((o1, i) => {
      const o2 = b[i]!;
      const d = Math.abs(o1 - o2);
      const [first, second] = o1 <= o2 ? [view1, view2] : [view2, view1];
      // the overlap of the two windows holds the same pixels
      const s1 = first
        .narrow(0, i, 1)
        .narrow(2, d, size - d)
        .narrow(3, d, size - d);
      const s2 = second
        .narrow(0, i, 1)
        .narrow(2, 0, size - d)
        .narrow(3, 0, size - d);
      assert.equal(maxAbs(s1, s2), 0, `image ${i}`);
    });
    const shifts = new MediumAugmentation({ size: 224 }).sampleParams(3000, 300, 300).offsets;
    const dist = shifts[0].map((o, i) => Math.abs(o - shifts[1][i]!));
    assert.ok(Math.max(...dist) === 32 && Math.min(...dist) === 0);
    closeMean(dist, 16, Math.sqrt((33 * 33 - 1) / 12), 'diagonal distance');
  });
});

test('strong strategy: independent crops, blur 1.0 / 0.1 and solarize 0 / 0.2 per view', () => {
  manualSeed(11);
  const n = 4000;
  const p = new StrongAugmentation().sampleParams(n, 300, 300);
  const differ = p.crops[0].filter((c, i) => JSON.stringify(c) !== JSON.stringify(p.crops[1][i])).length;
  assert.ok(differ > n * 0.99, 'the two crops are drawn independently');
  assert.equal(count(p.colors[0].blur.apply), n);
  binomial(count(p.colors[1].blur.apply), n, 0.1, 'view 2 blur');
  assert.equal(count(p.colors[0].solarize), 0);
  binomial(count(p.colors[1].solarize), n, 0.2, 'view 2 solarize');
  binomial(count(p.colors[0].jitter.apply), n, 0.8, 'jitter');
  binomial(count(p.colors[1].grayscale), n, 0.2, 'grayscale');
  binomial(count(p.flips[0]), n, 0.5, 'flip');
});

test('the same seed gives the same views and fine-tuning batches', () => {
  noLeak(() => {
    const x = uint8Batch(4, 40, 48);
    for (const make of [
      () => pretrainAugmentation('strong', { size: 24 }),
      () => pretrainAugmentation('medium', { size: 24 }),
      () => pretrainAugmentation('light', { size: 24 }),
    ]) {
      manualSeed(12);
      const a = make().forward(x);
      manualSeed(12);
      const b = make().forward(x);
      assert.equal(maxAbs(a.view1, b.view1) + maxAbs(a.view2, b.view2), 0);
    }
    manualSeed(13);
    const f1 = new FinetuneAugmentation({ size: 24 }).forward(x);
    manualSeed(13);
    const f2 = new FinetuneAugmentation({ size: 24 }).forward(x);
    assert.equal(maxAbs(f1, f2), 0);
  });
});

test('fine-tuning and evaluation transforms: shapes, dtype, normalisation', () => {
  manualSeed(14);
  noLeak(() => {
    for (const x of [uint8Batch(6, 40, 48), rand(6, 3, 40, 48)]) {
      const y = new FinetuneAugmentation({ size: 24 }).forward(x);
      assert.deepEqual(y.shape, [6, 3, 24, 24]);
      assert.equal(y.dtype, 'float32');
      assert.equal(y.isfinite().all().item(), true);
      const e = new EvalTransform({ size: 24 }).forward(x);
      assert.deepEqual(e.shape, [6, 3, 24, 24]);
      assert.equal(e.dtype, 'float32');
    }
    // passSized (the kNN monitor's): a batch at the model's size is only normalised; larger ones
    // and the default resize (24 / 0.875 = 27, then the centre crop) as without it
    const small = uint8Batch(2, 24, 24);
    const plain = new EvalTransform({ size: 24, passSized: true }).forward(small);
    const byHand = normalize(small.float().div(255), IMAGENET_MEAN, IMAGENET_STD);
    assert.equal(plain.sub(byHand).abs().max().item(), 0);
    const resized = new EvalTransform({ size: 24 }).forward(small);
    assert.ok((resized.sub(plain).abs().max().item() as number) > 0.01, 'without passSized 24 px is resized');
    const big = uint8Batch(2, 40, 48);
    const a = new EvalTransform({ size: 24, passSized: true }).forward(big);
    assert.equal(
      a
        .sub(new EvalTransform({ size: 24 }).forward(big))
        .abs()
        .max()
        .item(),
      0,
    );
  });
});

test('single-channel batches (Fashion-MNIST): strategies, RandAugment and fine-tuning keep one channel', () => {
  manualSeed(15);
  noLeak(() => {
    const x = randint(0, 256, [4, 1, 28, 28], { dtype: 'uint8' });
    const norm = { mean: [0.286], std: [0.353] };
    for (const s of ['strong', 'medium', 'light'] as const) {
      const { view1, view2 } = pretrainAugmentation(s, { size: 28, normalize: norm }).forward(x);
      assert.deepEqual(view1.shape, [4, 1, 28, 28]);
      assert.deepEqual(view2.shape, [4, 1, 28, 28]);
    }
    const ra = new RandAugment({ magnitude: 9 });
    const y = ra.forward(x);
    assert.deepEqual(y.shape, [4, 1, 28, 28]);
    const ft = new FinetuneAugmentation({ size: 28, mean: norm.mean, std: norm.std }).forward(x);
    assert.deepEqual(ft.shape, [4, 1, 28, 28]);
  });
});
