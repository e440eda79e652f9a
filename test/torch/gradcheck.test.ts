// Gradients of composite functions against central finite differences (autograd.gradcheck,
// float64), and checks that gradcheck itself catches a wrong gradient.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  arange,
  autograd,
  F,
  liveTensors,
  manualSeed,
  randn,
  tensor,
  tidy,
  type Tensor,
} from '../../src/torch/index.js';
import type { GradcheckResult } from '../../src/torch/autograd.js';

const { gradcheck } = autograd;

/** Seeded float64 normal values (requiresGrad is gradcheck's business). */
function rnd(...shape: number[]): Tensor {
  return randn(shape, { dtype: 'float64' });
}

/** A scalar from a non-scalar output: sum(y * w) with fixed weights, so every element matters. */
function weighted(y: Tensor, seed: number): Tensor {
  const w = tidy(() => {
    manualSeed(seed);
    return randn(y.shape, { dtype: y.dtype });
  });
  return y.mul(w).sum();
}

function assertPasses(name: string, r: GradcheckResult, maxAbsError = 1e-6): void {
  assert.ok(r.ok, `${name}: gradcheck failed (max |analytic - numeric| = ${r.maxAbsError})`);
  assert.ok(r.maxAbsError < maxAbsError, `${name}: max |analytic - numeric| = ${r.maxAbsError}`);
  // the check compared something: some gradient is not zero
  assert.ok(
    r.analytic.some((a) => a.some((v) => Math.abs(v) > 1e-3)),
    `${name}: all gradients are zero`,
  );
}

/** Runs a gradcheck in a scope and checks that nothing leaked. */
function check(name: string, seed: number, make: () => Tensor[], fn: (...x: Tensor[]) => Tensor, tol?: number): void {
  const before = liveTensors();
  tidy(() => {
    manualSeed(seed);
    const inputs = make();
    const copies = inputs.map((t) => t.clone());
    assertPasses(name, gradcheck(fn, inputs), tol);
    // the inputs are left as they were: same values, no gradients
    inputs.forEach((t, i) => {
      assert.deepEqual(t.toArray(), copies[i]!.toArray(), `${name}: input ${i} changed`);
      assert.equal(t.grad, null, `${name}: input ${i} got a .grad`);
    });
  });
  assert.equal(liveTensors(), before, `${name}: tensors leaked`);
}

test('layerNorm ∘ gelu ∘ linear', () => {
  check(
    'layerNorm(gelu(linear))',
    1,
    () => [rnd(3, 4), rnd(5, 4), rnd(5), rnd(5), rnd(5)],
    (x, w, b, g, beta) => weighted(F.layerNorm(F.gelu(F.linear(x, w, b)), [5], g, beta), 100),
  );
  check(
    'layerNorm(gelu_tanh(linear)) without bias',
    2,
    () => [rnd(2, 3, 4), rnd(6, 4)],
    (x, w) => weighted(F.layerNorm(F.gelu(F.linear(x, w), 'tanh'), 6), 101),
  );
});

test('crossEntropy with label smoothing (class indices)', () => {
  check(
    'crossEntropy(labelSmoothing 0.1)',
    3,
    () => [rnd(4, 5), tensor([1, 0, 4, 2], { dtype: 'int64' })],
    (logits, target) => F.crossEntropy(logits, target, { labelSmoothing: 0.1 }),
  );
  check(
    'crossEntropy(labelSmoothing 0.2, weight, sum)',
    4,
    () => [rnd(4, 3), tensor([2, 2, 0, 1], { dtype: 'int64' })],
    (logits, target) => {
      // class weights are not differentiable in libtorch: a constant, not a checked input
      const weight = tensor([0.5, 1.5, 1], { dtype: 'float64' });
      return F.crossEntropy(logits, target, { labelSmoothing: 0.2, weight, reduction: 'sum' });
    },
  );
});

test('crossEntropy with probability targets (gradient in both logits and targets)', () => {
  check(
    'crossEntropy(probabilities)',
    5,
    () => [rnd(4, 5), rnd(4, 5)],
    (logits, t) => F.crossEntropy(logits, F.softmax(t, -1)),
  );
  check(
    'crossEntropy(probabilities, labelSmoothing 0.15)',
    6,
    () => [rnd(3, 4), rnd(3, 4)],
    (logits, t) => F.crossEntropy(logits, F.softmax(t, 1), { labelSmoothing: 0.15 }),
  );
});

test('InfoNCE-like loss: normalize, cosine similarity, logsumexp', () => {
  const tau = 0.2;
  check(
    'infoNCE',
    7,
    () => [rnd(4, 6), rnd(4, 6)],
    (q, k) => {
      const qn = F.normalize(q, 2, 1);
      const kn = F.normalize(k, 2, -1);
      const logits = qn.matmul(kn.t()).div(tau);
      const positive = F.cosineSimilarity(q, k, 1).div(tau);
      return logits.logsumexp(1).sub(positive).mean();
    },
  );
  check(
    'infoNCE through crossEntropy',
    8,
    () => [rnd(5, 3), rnd(5, 3)],
    (q, k) => {
      const logits = F.normalize(q).matmul(F.normalize(k).t()).div(tau);
      return F.crossEntropy(logits, arange(5));
    },
  );
});

test('softmax attention: matmul, softmax, matmul', () => {
  check(
    'attention',
    9,
    () => [rnd(2, 3, 4), rnd(2, 5, 4), rnd(2, 5, 4)],
    (q, k, v) => {
      const scores = q.matmul(k.transpose(-2, -1)).div(2);
      return weighted(F.softmax(scores, -1).matmul(v), 102);
    },
  );
  check(
    'masked attention',
    10,
    () => [rnd(1, 4, 3), rnd(1, 4, 3), rnd(1, 4, 3)],
    (q, k, v) => {
      const mask = tensor([
        [false, true, true, true],
        [false, false, true, true],
        [false, false, false, true],
        [false, false, false, false],
      ]);
      const scores = q.matmul(k.mT).maskedFill(mask, -Infinity);
      return weighted(F.softmax(scores, -1).matmul(v), 103);
    },
  );
});

test('bicubic and bilinear interpolation', () => {
  check(
    'bicubic',
    11,
    () => [rnd(1, 2, 3, 3)],
    (x) => weighted(F.interpolate(x, { size: [5, 4], mode: 'bicubic' }), 104),
  );
  check(
    'bicubic alignCorners',
    12,
    () => [rnd(2, 1, 3, 4)],
    (x) => weighted(F.interpolate(x, { scaleFactor: 1.5, mode: 'bicubic', alignCorners: true }), 105),
  );
  check(
    'bilinear',
    13,
    () => [rnd(1, 1, 3, 4)],
    (x) => weighted(F.interpolate(x, { size: [6, 5], mode: 'bilinear' }), 106),
  );
});

test('conv2d + avgPool2d', () => {
  check(
    'conv2d + avgPool2d',
    14,
    () => [rnd(1, 2, 5, 5), rnd(3, 2, 3, 3), rnd(3)],
    (x, w, b) => weighted(F.avgPool2d(F.conv2d(x, w, b, { padding: 1 }), 2, { ceilMode: true }), 107),
  );
  check(
    'strided grouped conv2d + padded avgPool2d',
    15,
    () => [rnd(1, 4, 6, 5), rnd(4, 2, 2, 2)],
    (x, w) =>
      weighted(
        F.avgPool2d(F.conv2d(x, w, null, { stride: 2, groups: 2 }), 2, {
          padding: 1,
          stride: 1,
          countIncludePad: false,
        }),
        108,
      ),
  );
});

test('var and std', () => {
  check(
    'var/std',
    16,
    () => [rnd(3, 5)],
    (x) =>
      x
        .var(1)
        .sum()
        .add(x.std())
        .add(weighted(x.std(0, { unbiased: false, keepdim: true }), 109))
        .add(x.var([0, 1], { correction: 0 })),
  );
});

test('batchNorm (training) and pad, on a transposed (non-contiguous) input', () => {
  check(
    'batchNorm + pad',
    17,
    () => [rnd(3, 4).t(), rnd(3), rnd(3)],
    (x, g, b) =>
      weighted(F.pad(F.batchNorm(x, null, null, { weight: g, bias: b, training: true }), [1, 1], 'replicate'), 110),
  );
});

// ---- gradcheck must catch wrong gradients ----

test('gradcheck reports a partly detached backward', () => {
  tidy(() => {
    manualSeed(20);
    const x = rnd(4);
    // value x², but autograd sees only one factor: gradient x instead of 2x
    const r = gradcheck((t) => t.mul(t.detach()).sum(), [x]);
    assert.equal(r.ok, false);
    assert.ok(r.maxAbsError > 1e-3);
  });
});

test('gradcheck reports an altered gradient', () => {
  tidy(() => {
    manualSeed(21);
    const x = rnd(2, 3);
    // value sum(x²) but gradient 3 everywhere (a straight-through-style substitution)
    const fn = (t: Tensor): Tensor => t.pow(2).detach().add(t.mul(3)).sub(t.mul(3).detach()).sum();
    const r = gradcheck(fn, [x]);
    assert.equal(r.ok, false);
    assert.deepEqual(Array.from(r.analytic[0]!), [3, 3, 3, 3, 3, 3]);
    const twoX = Array.from(x.toTypedArray() as Float64Array, (v) => 2 * v);
    r.numeric[0]!.forEach((v, i) => assert.ok(Math.abs(v - twoX[i]!) < 1e-6));
  });
});

test('gradcheck reports a wholly detached function (zero analytic gradient)', () => {
  tidy(() => {
    manualSeed(22);
    const r = gradcheck((t) => t.detach().pow(2).sum(), [rnd(3)]);
    assert.equal(r.ok, false);
    assert.deepEqual(Array.from(r.analytic[0]!), [0, 0, 0]);
  });
});

test('gradcheck reports NaN gradients as a failure', () => {
  tidy(() => {
    // sqrt at 0: the numeric difference reads sqrt(-eps) = NaN
    const r = gradcheck((t) => t.sqrt().sum(), [tensor([0, 1], { dtype: 'float64' })]);
    assert.equal(r.ok, false);
    assert.ok(Number.isNaN(r.maxAbsError));
  });
});

test('gradcheck gives exact gradients of a known function and skips integer inputs', () => {
  tidy(() => {
    const x = tensor([0.5, -1, 2], { dtype: 'float64' });
    const idx = tensor([2, 0], { dtype: 'int64' });
    const r = gradcheck((t, i) => t.pow(3).indexSelect(0, i).sum(), [x, idx]);
    assert.ok(r.ok);
    assert.deepEqual(Array.from(r.analytic[0]!), [0.75, 0, 12]);
    r.numeric[0]!.forEach((v, i) => assert.ok(Math.abs(v - [0.75, 0, 12][i]!) < 1e-6));
    assert.equal(r.analytic[1]!.length, 0);
    assert.equal(r.numeric[1]!.length, 0);
  });
});
