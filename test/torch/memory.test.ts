// Memory: scopes release what they create, handles die cleanly, and a long training loop
// keeps the live-tensor count and the process's memory flat.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as torch from '../../src/torch/index.js';

const { F } = torch;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('tidy releases intermediates and keeps the result', () => {
  const before = torch.liveTensors();
  const out = torch.tidy(() => {
    const a = torch.ones(4, 4);
    const b = a.mul(2).add(1);
    return b.sum();
  });
  assert.equal(torch.liveTensors(), before + 1);
  assert.equal(out.item(), 48);
  out.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('tidy returns tensors inside arrays, objects and Maps', () => {
  const before = torch.liveTensors();
  const r = torch.tidy(() => {
    const x = torch.arange(6).reshape(2, 3);
    return { rows: x.unbind(0), m: new Map([['sum', x.sum()]]), n: 3 };
  });
  assert.equal(torch.liveTensors(), before + 3);
  assert.deepEqual(r.rows[1]!.toArray(), [3, 4, 5]);
  assert.equal(r.m.get('sum')!.item(), 15);
  torch.dispose(r);
  assert.equal(torch.liveTensors(), before);
});

test('nested scopes hand results to the enclosing scope', () => {
  const before = torch.liveTensors();
  let inner: torch.Tensor | undefined;
  const outer = torch.tidy(() => {
    inner = torch.tidy(() => torch.ones(2).mul(3));
    assert.equal(inner.isDisposed, false);
    return inner.add(1);
  });
  assert.equal(inner!.isDisposed, true, 'the inner result belongs to the outer scope, which released it');
  assert.deepEqual(outer.toArray(), [4, 4]);
  outer.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('keep exempts a tensor from every scope', () => {
  const before = torch.liveTensors();
  let kept: torch.Tensor | undefined;
  torch.tidy(() => {
    torch.tidy(() => {
      kept = torch.keep(torch.full([2], 7));
      torch.zeros(3);
    });
  });
  assert.equal(torch.liveTensors(), before + 1);
  assert.deepEqual(kept!.toArray(), [7, 7]);
  kept!.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('a throwing scope releases everything it created', () => {
  const before = torch.liveTensors();
  assert.throws(() =>
    torch.tidy(() => {
      torch.ones(3);
      throw new Error('boom');
    }),
  );
  assert.equal(torch.liveTensors(), before);
});

test('tidy refuses async functions', () => {
  assert.throws(() => torch.tidy(async () => torch.ones(1)), /synchronous/);
});

test('dispose, Symbol.dispose and use after dispose', () => {
  const before = torch.liveTensors();
  {
    using t = torch.ones(3);
    assert.equal(torch.liveTensors(), before + 1);
    assert.equal(t.sum().item(), 3);
  }
  // `t.sum()` above escaped to the finaliser; collect it.
  gc();
  const x = torch.ones(2);
  x.dispose();
  x.dispose(); // twice is harmless
  assert.throws(() => x.add(1), /Tensor used after dispose/);
  assert.throws(() => torch.cat([torch.ones(1), x]), /Tensor used after dispose/);
  assert.equal(x.toString(), 'tensor(<disposed>)');
});

test('the finaliser releases tensors that were never disposed', async () => {
  gc();
  await new Promise((r) => setImmediate(r));
  const before = torch.liveTensors();
  (() => {
    for (let i = 0; i < 1000; i++) torch.ones(8);
  })();
  assert.ok(torch.liveTensors() >= before + 1000);
  for (let i = 0; i < 5 && torch.liveTensors() > before; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(torch.liveTensors(), before);
});

test('5,000 MLP training steps keep live tensors constant and RSS flat', () => {
  torch.manualSeed(1);
  const params = torch.tidy(() => [
    torch.randn(64, 32).mul(0.1),
    torch.zeros(64),
    torch.randn(10, 64).mul(0.1),
    torch.zeros(10),
  ]);
  params.forEach((p) => p.requiresGrad_(true));
  const [w1, b1, w2, b2] = params as [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor];
  const x = torch.randn(128, 32);
  const y = torch.randint(0, 10, [128]);
  const step = (): number =>
    torch.tidy(() => {
      const loss = F.crossEntropy(F.linear(F.linear(x, w1, b1).gelu(), w2, b2), y);
      loss.backward();
      torch.noGrad(() => {
        for (const p of params) {
          p.sub_(p.grad!, 0.05);
          p.grad = null;
        }
      });
      return loss.item() as number;
    });
  const first = step();
  for (let i = 0; i < 500; i++) step(); // warm-up: allocator caches, JIT
  gc();
  const live = torch.liveTensors();
  const rss = process.memoryUsage().rss;
  let last = first;
  for (let i = 0; i < 5000; i++) {
    last = step();
    if (i % 1000 === 0) assert.equal(torch.liveTensors(), live, `live tensors changed at step ${i}`);
  }
  gc();
  assert.equal(torch.liveTensors(), live);
  const growth = process.memoryUsage().rss / rss - 1;
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)} % over 5,000 steps`);
  assert.ok(last < first * 0.5, `loss should fall: ${first} -> ${last}`);
  torch.dispose([params, x, y]);
});

test('returning a tensor of an enclosing scope leaves it to that scope', () => {
  const before = torch.liveTensors();
  torch.tidy(() => {
    const x = torch.ones(3);
    torch.tidy(() => {
      const same = torch.tidy(() => x); // as an Identity layer does
      assert.equal(same, x);
    });
    assert.equal(x.isDisposed, false, 'x still belongs to the outer scope');
    assert.deepEqual(x.toArray(), [1, 1, 1]);
  });
  assert.equal(torch.liveTensors(), before);
  // kept and returned: registered with the finaliser, not released
  const k = torch.tidy(() => torch.keep(torch.ones(2)));
  assert.equal(k.isDisposed, false);
  k.dispose();
  assert.equal(torch.liveTensors(), before);
});
