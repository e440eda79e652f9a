// Autograd beyond per-op gradients (those are in ops.test.ts): accumulation, graph
// retention, grad-mode scopes, detach, and RNG state for exact resume.
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';

test('gradients accumulate across backward calls until reset', () => {
  torch.tidy(() => {
    const w = torch.tensor([1, 2, 3], { requiresGrad: true });
    w.mul(w).sum().backward(); // d/dw = 2w
    assert.deepEqual(w.grad!.toArray(), [2, 4, 6]);
    w.mul(3).sum().backward();
    assert.deepEqual(w.grad!.toArray(), [5, 7, 9]);
    w.grad = null;
    assert.equal(w.grad, null);
    w.sum().backward();
    assert.deepEqual(w.grad!.toArray(), [1, 1, 1]);
    w.grad!.zero_();
    assert.deepEqual(w.grad!.toArray(), [0, 0, 0]);
  });
});

test('backward twice needs retainGraph', () => {
  torch.tidy(() => {
    const w = torch.tensor([1, 2], { requiresGrad: true });
    const y = w.exp().sum();
    y.backward(null, { retainGraph: true });
    y.backward();
    assert.ok(torch.allclose(w.grad!, w.detach().exp().mul(2)));
    const z = w.exp().sum();
    z.backward();
    assert.throws(() => z.backward(), /backward: .*second time/s);
  });
});

test('backward with a gradient argument, and autograd.grad', () => {
  torch.tidy(() => {
    const x = torch.tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { requiresGrad: true },
    );
    const y = x.pow(2);
    y.backward(
      torch.tensor([
        [1, 0],
        [0, 1],
      ]),
    );
    assert.deepEqual(x.grad!.toArray(), [
      [2, 0],
      [0, 8],
    ]);
    const [g] = torch.autograd.grad([x.pow(3).sum()], [x]);
    assert.deepEqual(g!.toArray(), [
      [3, 12],
      [27, 48],
    ]);
    // second order: d²/dx² of x³ = 6x
    const [g1] = torch.autograd.grad([x.pow(3).sum()], [x], { createGraph: true });
    const [g2] = torch.autograd.grad([g1!.sum()], [x]);
    assert.deepEqual(g2!.toArray(), [
      [6, 12],
      [18, 24],
    ]);
  });
});

test('noGrad and enableGrad scopes nest and restore', () => {
  torch.tidy(() => {
    const w = torch.ones(2, { requiresGrad: true });
    assert.equal(torch.isGradEnabled(), true);
    const y = torch.noGrad(() => {
      assert.equal(torch.isGradEnabled(), false);
      const inner = torch.enableGrad(() => w.mul(2));
      assert.equal(inner.requiresGrad, true);
      return w.mul(2);
    });
    assert.equal(y.requiresGrad, false);
    assert.equal(torch.isGradEnabled(), true);
    assert.throws(() =>
      torch.noGrad(() => {
        throw new Error('x');
      }),
    );
    assert.equal(torch.isGradEnabled(), true, 'restored after a throw');
  });
});

test('detach cuts the graph; leaves and grad_fn', () => {
  torch.tidy(() => {
    const w = torch.ones(3, { requiresGrad: true });
    assert.equal(w.isLeaf, true);
    assert.equal(w.gradFn, null);
    const y = w.mul(2);
    assert.equal(y.isLeaf, false);
    assert.match(y.gradFn!, /Mul/);
    const d = y.detach();
    assert.equal(d.requiresGrad, false);
    y.add(d).sum().backward();
    assert.deepEqual(w.grad!.toArray(), [2, 2, 2]);
  });
});

test('RNG state round-trips exactly', () => {
  torch.tidy(() => {
    torch.manualSeed(123);
    const state = torch.getRngState();
    const a = torch.randn(5).toArray();
    const b = torch.rand(3).toArray();
    torch.setRngState(state);
    assert.deepEqual(torch.randn(5).toArray(), a);
    assert.deepEqual(torch.rand(3).toArray(), b);
    torch.manualSeed(123);
    assert.deepEqual(torch.randn(5).toArray(), a);
    assert.equal(torch.initialSeed(), 123);
  });
});

test('threads default to the core count and can be set', () => {
  const n = torch.getNumThreads();
  const fromEnv = Number(process.env.OMP_NUM_THREADS);
  assert.equal(n, Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism());
  torch.setNumThreads(1);
  assert.equal(torch.getNumThreads(), 1);
  torch.setNumThreads(n);
  assert.equal(torch.getNumThreads(), n);
  assert.throws(() => torch.setNumThreads(0), /positive integer/);
  assert.equal(torch.isReferenceBlas(), false, `BLAS in use: ${JSON.stringify(torch.blasInfo())}`);
});

test('setData swaps the data of a leaf and keeps it a leaf that collects gradients', () => {
  torch.tidy(() => {
    const p = torch.zeros(2, { requiresGrad: true });
    const q = torch.tensor(
      [
        [1, 2],
        [3, 4],
        [5, 6],
      ],
      { dtype: 'float64' },
    );
    p.setData(q);
    assert.deepEqual([p.shape, p.dtype, p.requiresGrad, p.isLeaf], [[3, 2], 'float64', true, true]);
    assert.equal(p.isSame(p), true);
    assert.equal(p.isSame(q), false);
    p.mul(2).sum().backward();
    assert.deepEqual(p.grad!.toArray(), [
      [2, 2],
      [2, 2],
      [2, 2],
    ]);
  });
});
