// Errors: every libtorch failure is a JS Error naming the op and its arguments, and the
// process carries on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';

const { F } = torch;

test('matmul of mismatched shapes names the op and both shapes', () => {
  const a = torch.ones(2, 3);
  const b = torch.ones(4, 5);
  assert.throws(
    () => a.matmul(b),
    (e: Error) =>
      /matmul: /.test(e.message) &&
      /2x3 and 4x5/.test(e.message) &&
      e.message.includes('Tensor(float32[2, 3], cpu)') &&
      e.message.includes('Tensor(float32[4, 5], cpu)'),
  );
  torch.dispose([a, b]);
});

test('wrong dtype is reported with the dtypes involved', () => {
  const x = torch.ones(3, 4);
  const idx = torch.tensor([0.0, 1.0]); // float indices
  assert.throws(
    () => x.indexSelect(0, idx),
    (e: Error) => /indexSelect: /.test(e.message) && /Tensor\(float32\[2\]/.test(e.message),
  );
  assert.throws(() => x.matmul(torch.ones(4, 2, { dtype: 'float64' })), /matmul: .*(dtype|type).*float64/s);
  assert.throws(
    () => torch.zeros(2, { dtype: 'complex64' as torch.DType }),
    /unknown dtype 'complex64': allowed float32/,
  );
  assert.throws(() => x.bool().add(x.bool()).neg(), /neg: .*bool/i);
  x.dispose();
});

test('unknown device', () => {
  assert.throws(() => torch.zeros(2, { device: 'tpu' }), /zeros: .*device.*'tpu'/s);
  const x = torch.ones(2);
  assert.throws(() => x.to({ device: 'quantum:0' }), /to: /);
  if (!torch.cuda.isAvailable()) {
    assert.throws(() => x.to('cuda'), /to: .*(CUDA|cuda)/);
  }
  x.dispose();
});

test('out-of-range indices and dims', () => {
  const x = torch.arange(6).reshape(2, 3);
  assert.throws(() => x.select(0, 5), /select: .*out of range/is);
  assert.throws(() => x.sum(3), /sum: .*Dimension out of range/is);
  assert.throws(() => x.indexSelect(1, torch.tensor([0, 7], { dtype: 'int64' })), /indexSelect: .*(bounds|range)/is);
  assert.throws(
    () => x.gather(1, torch.tensor([[0], [9]], { dtype: 'int64' })),
    /gather: .*index 9 is out of bounds/is,
  );
  assert.throws(() => x.narrow(1, 2, 5), /narrow: /);
  assert.throws(() => x.size(4), /size: dim 4 out of range/);
  assert.throws(() => x.reshape(4, 2), /reshape: .*shape '\[4, 2\]' is invalid for input of size 6/);
  assert.throws(() => torch.tensor([[1, 2], [3]]), /ragged/);
  assert.throws(() => F.crossEntropy(torch.randn(2, 3), torch.tensor([0, 3], { dtype: 'int64' })), /crossEntropy: /);
  x.dispose();
});

test('disposed tensors and foreign arguments', () => {
  const x = torch.ones(2);
  const y = torch.ones(2);
  y.dispose();
  assert.throws(() => x.add(y), /Tensor used after dispose\(\)/);
  assert.throws(() => torch.stack([x, y]), /Tensor used after dispose\(\)/);
  assert.throws(() => F.linear(x, y), /Tensor used after dispose\(\)/);
  assert.throws(() => x.add('1' as unknown as number), /add: argument 1: expected a Tensor/);
  x.dispose();
});

test('bad arguments from TypeScript never crash the process', () => {
  const x = torch.ones(2, 2);
  assert.throws(() => x.reshape(-5), /reshape: /);
  assert.throws(() => x.transpose(0, 1.5), /transpose: argument 2: expected an integer/);
  assert.throws(() => torch.randint(5, 2, [3]), /randint: /);
  assert.throws(() => torch.manualSeed(-1), /non-negative integer/);
  assert.throws(() => F.dropout(x, 2), /p must be in \[0, 1\]/);
  assert.throws(() => x.item(), /item: .*4 elements/);
  assert.throws(() => x.backward(), /backward: .*(require grad|grad_fn)/is);
  // still alive and computing
  assert.equal(x.sum().item(), 4);
  x.dispose();
});
