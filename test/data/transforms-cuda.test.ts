// The transforms on a CUDA batch: with the same parameters (drawn once, on the CPU generator)
// every transform gives on the GPU what it gives on the CPU, within 1/255 of the pixel range, and
// its outputs stay on the GPU. Skipped without CUDA.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cuda, liveTensors, manualSeed, randint, tensor, tidy, type Tensor } from '../../src/torch/index.js';
import {
  FinetuneAugmentation,
  Mixup,
  RandAugment,
  RAND_INCREASING_TRANSFORMS,
  applyRandAugmentOp,
  levelToArg,
  pretrainAugmentation,
} from '../../src/data/transforms/index.js';

const hasCuda = cuda.isAvailable();

function close(gpu: Tensor, cpu: Tensor, tol: number, what: string): void {
  assert.ok(gpu.device.startsWith('cuda'), `${what}: output on ${gpu.device}`);
  assert.deepEqual(gpu.shape, cpu.shape, `${what}: shape`);
  assert.equal(gpu.dtype, cpu.dtype, `${what}: dtype`);
  const d = gpu.cpu().to('float64').sub(cpu.to('float64')).abs().max().item() as number;
  assert.ok(d <= tol, `${what}: max |gpu - cpu| ${d} > ${tol}`);
}

test('transforms on CUDA match the CPU with the same parameters', { skip: !hasCuda }, () => {
  const before = liveTensors();
  tidy(() => {
    manualSeed(0);
    const x = randint(0, 256, [6, 3, 48, 56], { dtype: 'uint8' });
    const xg = x.to('cuda');
    // normalised views: 1/255 of the range is about 0.02 after dividing by ImageNet's std
    for (const s of ['strong', 'medium', 'light'] as const) {
      const aug = pretrainAugmentation(s, { size: 32 });
      const p = aug.sampleParams(6, 48, 56) as never;
      const cpu = aug.apply(x, p);
      const gpu = aug.apply(xg, p);
      close(gpu.view1, cpu.view1, 0.02, `${s} view 1`);
      close(gpu.view2, cpu.view2, 0.02, `${s} view 2`);
    }
    // every RandAugment op, uint8 and float (one level / 1/255 apart at most)
    for (const img of [x, x.to('float32').div(255)]) {
      const scale = img.dtype === 'uint8' ? 1 : 1 / 255;
      for (const op of RAND_INCREASING_TRANSFORMS) {
        const args = [0, 1, 2, 3, 4, 5].map((i) => levelToArg(op, 6 + i * 0.7, i % 2 === 1));
        const cpu = applyRandAugmentOp(op, img, args, { interpolation: 'bilinear' });
        const gpu = applyRandAugmentOp(op, img.to('cuda'), args, { interpolation: 'bilinear' });
        close(gpu, cpu, scale * 1.0001, `${op} ${img.dtype}`);
      }
    }
    const ra = new RandAugment();
    const rp = ra.sampleParams(6);
    close(ra.apply(xg, rp), ra.apply(x, rp), 1, 'RandAugment');
    const ft = new FinetuneAugmentation({ size: 32, erasing: { mode: 'const' } });
    const fp = ft.sampleParams(6, 48, 56);
    close(ft.apply(xg, fp), ft.apply(x, fp), 0.02, 'fine-tuning augmentation');
    const mix = new Mixup({ numClasses: 5 });
    const target = tensor(BigInt64Array.from([0n, 1n, 2n, 3n, 4n, 0n]));
    const mp = mix.sampleParams(48, 56);
    const xf = x.to('float32');
    const mc = mix.apply(xf, target, mp);
    const mg = mix.apply(xf.to('cuda'), target.to('cuda'), mp);
    close(mg.x, mc.x, 1e-4, 'mixup images');
    close(mg.target, mc.target, 1e-6, 'mixup targets');
  });
  assert.equal(liveTensors(), before, 'tensors leaked');
});
