// CUDA devices: on a machine with a GPU (and a CUDA libtorch) the same ops give the same
// values as on the CPU; without one, asking for CUDA is a clear error, not a crash.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';

const { F } = torch;
const hasCuda = torch.cuda.isAvailable();

test('without CUDA, cuda tensors are refused with a clear error', { skip: hasCuda }, () => {
  assert.equal(torch.cuda.deviceCount(), 0);
  const x = torch.ones(2);
  assert.throws(() => x.to('cuda'), /to: .*(CUDA|cuda)/);
  assert.throws(() => torch.zeros(2, { device: 'cuda:0' }), /zeros: .*(CUDA|cuda)/);
  assert.throws(() => torch.getRngState('cuda'), /getRngState: /);
  x.dispose();
});

test('on CUDA, forward and backward match the CPU', { skip: !hasCuda }, () => {
  torch.tidy(() => {
    torch.manualSeed(0);
    const x = torch.randn(64, 32);
    const w = torch.randn(16, 32).mul(0.1);
    const y = torch.randint(0, 16, [64]);
    const run = (device: string): { loss: number; grad: Float32Array; dev: string } => {
      const wd = w.to({ device, copy: true }).requiresGrad_(true); // a fresh leaf on each device
      const h = F.layerNorm(F.linear(x.to({ device }), wd).gelu(), [16]);
      const att = F.scaledDotProductAttention(h.view(1, 1, 64, 16), h.view(1, 1, 64, 16), h.view(1, 1, 64, 16));
      const loss = F.crossEntropy(att.view(64, 16), y.to({ device }), { labelSmoothing: 0.1 });
      loss.backward();
      return { loss: loss.item() as number, grad: wd.grad!.cpu().toTypedArray() as Float32Array, dev: loss.device };
    };
    const cpu = run('cpu');
    const gpu = run('cuda');
    assert.equal(gpu.dev, 'cuda:0');
    assert.ok(Math.abs(cpu.loss - gpu.loss) < 1e-4, `loss cpu ${cpu.loss} cuda ${gpu.loss}`);
    let maxErr = 0;
    cpu.grad.forEach((g, i) => (maxErr = Math.max(maxErr, Math.abs(g - gpu.grad[i]!))));
    assert.ok(maxErr < 1e-4, `max grad difference ${maxErr}`);
  });
});

test('on CUDA, seeding and generator state are per device', { skip: !hasCuda }, () => {
  torch.tidy(() => {
    torch.manualSeed(7);
    const state = torch.getRngState('cuda');
    const a = torch.randn(8, { device: 'cuda' }).cpu().toArray();
    torch.setRngState(state, 'cuda');
    assert.deepEqual(torch.randn(8, { device: 'cuda' }).cpu().toArray(), a);
    torch.cuda.synchronize();
  });
});
