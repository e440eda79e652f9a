// Mixed precision: libtorch's autocast through the binding (which ops go to bfloat16, which stay
// float32, nesting and restoring), mixed-dtype norms, and the bf16 hardware detection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';

const { F, autocast, autocastState } = torch;

test('autocast: matmul/linear/conv run in bfloat16, losses in float32, the state is restored', () => {
  torch.tidy(() => {
    const x = torch.randn([4, 8]);
    const w = torch.randn([16, 8]);
    assert.equal(autocastState('cpu').enabled, false);
    autocast({ device: 'cpu', dtype: 'bfloat16' }, () => {
      assert.deepEqual(autocastState('cpu'), { enabled: true, dtype: 'bfloat16' });
      const y = F.linear(x, w);
      assert.equal(y.dtype, 'bfloat16');
      assert.equal(x.mm(w.t()).dtype, 'bfloat16');
      assert.equal(F.conv2d(torch.randn([1, 3, 8, 8]), torch.randn([4, 3, 3, 3])).dtype, 'bfloat16');
      assert.equal(F.crossEntropy(y, torch.zeros([4], { dtype: 'int64' })).dtype, 'float32');
      // float32 + bfloat16 promotes: the residual stream stays float32
      assert.equal(x.add(F.linear(x, torch.randn([8, 8]))).dtype, 'float32');
      // nested: autocast off inside
      autocast({ device: 'cpu', enabled: false }, () => {
        assert.equal(autocastState('cpu').enabled, false);
        assert.equal(F.linear(x, w).dtype, 'float32');
      });
      assert.equal(autocastState('cpu').enabled, true);
      // the values are the float32 product rounded through bfloat16 inputs
      const exact = F.linear(x.to({ dtype: 'bfloat16' }).float(), w.to({ dtype: 'bfloat16' }).float());
      const got = y.float();
      assert.ok(Number(got.sub(exact).abs().max().item()) <= 2 ** -7 * Number(exact.abs().max().item()));
    });
    assert.equal(autocastState('cpu').enabled, false);
    assert.equal(F.linear(x, w).dtype, 'float32');
  });
});

test('autocast: the state is restored when fn throws, and async functions are refused', () => {
  assert.throws(() =>
    autocast({}, () => {
      throw new Error('boom');
    }),
  );
  assert.equal(autocastState('cpu').enabled, false);
  assert.throws(() => autocast({}, async () => 1), /autocast scopes must be synchronous/);
  assert.equal(autocastState('cpu').enabled, false);
});

test('LayerNorm / BatchNorm of a bfloat16 activation with float32 parameters normalise in float32', () => {
  torch.tidy(() => {
    const x = torch.randn([6, 16]).mul(3).add(1);
    const xb = x.to({ dtype: 'bfloat16' });
    const ln = new torch.nn.LayerNorm(16);
    const y = ln.forward(xb);
    assert.equal(y.dtype, 'float32');
    const want = ln.forward(xb.float());
    assert.equal(Number(y.sub(want).abs().max().item()), 0);
    const bn = new torch.nn.BatchNorm1d(16);
    const z = bn.forward(xb);
    assert.equal(z.dtype, 'float32');
    assert.equal(bn.running_mean?.dtype, 'float32');
    ln.dispose();
    bn.dispose();
  });
});

test('bf16 detection: AVX512-BF16 or AMX on the CPU, capability >= 8 on CUDA; auto falls back to fp32', () => {
  assert.equal(torch.fastBf16('cpu', { cpuFlags: ['avx2', 'avx512f', 'avx512_bf16'] }), true);
  assert.equal(torch.fastBf16('cpu', { cpuFlags: ['avx2', 'amx_bf16', 'amx_tile'] }), true);
  assert.equal(torch.fastBf16('cpu', { cpuFlags: ['avx2', 'avx512f', 'avx512_vnni'] }), false);
  assert.equal(torch.fastBf16('cpu', {}), false);
  assert.equal(torch.fastBf16('cuda', { cudaCapability: [8, 0] }), true);
  assert.equal(torch.fastBf16('cuda', { cudaCapability: [7, 5] }), false);
  assert.equal(torch.fastBf16('cuda', { cudaCapability: null }), false);
  const slow = torch.choosePrecision('auto', 'cpu', { cpuFlags: ['avx2'] });
  assert.deepEqual(slow, { precision: 'fp32', reason: 'auto: the CPU has no AVX512-BF16/AMX' });
  assert.equal(torch.choosePrecision('auto', 'cpu', { cpuFlags: ['avx512_bf16'] }).precision, 'bf16');
  assert.equal(torch.choosePrecision('fp32', 'cpu', { cpuFlags: ['avx512_bf16'] }).precision, 'fp32');
  assert.equal(
    torch.choosePrecision('auto', 'cuda', { cudaCapability: [9, 0] }).reason,
    'auto: compute capability 9.0',
  );
  // this machine: the evidence is read from /proc/cpuinfo
  const e = torch.machineBf16Evidence('cpu');
  assert.ok(Array.isArray(e.cpuFlags) && e.cpuFlags.length > 0);
  assert.equal(torch.choosePrecision('auto', 'cpu').precision, torch.fastBf16('cpu', e) ? 'bf16' : 'fp32');
});
