// forbidHostSync: inside it (a CUDA graph capture, GraphedTrainStep's eager body) every call that
// would read the device back or copy host memory is refused with an error naming the call and the
// context; outside it, and after it ends or throws, the same calls work. GraphedTrainStep's use
// of it: test/ssl/graphed-step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';

test('forbidHostSync refuses host reads and host copies by name, and lifts on exit', () => {
  torch.tidy(() => {
    const x = torch.arange(0, 6, 1).float();
    const cases: [string, () => unknown, RegExp][] = [
      ['item', () => x.sum().item(), /Tensor\.item\(\) \(reads a value back to the host\) inside the test step/],
      ['toTypedArray', () => x.toTypedArray(), /Tensor\.toTypedArray\(\)/],
      ['toArray', () => x.toArray(), /Tensor\.toTypedArray\(\)/],
      ['nonzero', () => x.nonzero(), /Tensor\.nonzero\(\) \(its size depends on the values\)/],
      ['maskedSelect', () => x.maskedSelect(x.gt(2)), /Tensor\.maskedSelect\(\)/],
      ['tensor', () => torch.tensor([1, 2, 3]), /torch\.tensor\(\) \(copies host memory/],
    ];
    for (const [name, call, message] of cases) {
      assert.throws(
        () => torch.forbidHostSync('the test step', call),
        (e: Error) => message.test(e.message) && /a CUDA graph cannot hold it/.test(e.message),
        name,
      );
    }
    // device work is allowed, and the guard is gone afterwards, also after a throw
    const y = torch.forbidHostSync('the test step', () => x.mul(2).add(1).to('cpu'));
    assert.equal(torch.hostSyncForbidden(), false);
    assert.deepEqual(y.toArray(), [1, 3, 5, 7, 9, 11]);
    // nested: the inner context ends, the outer one still refuses
    torch.forbidHostSync('the outer step', () => {
      torch.forbidHostSync('the inner step', () => x.add(1));
      assert.throws(() => x.sum().item(), /inside the outer step/);
    });
    assert.equal(x.sum().item(), 15);
  });
});

test('on CUDA, host-device to() and copy_() are refused inside it', { skip: !torch.cuda.isAvailable() }, () => {
  const x = torch.ones([3], { device: 'cuda' });
  assert.throws(
    () => torch.forbidHostSync('the test step', () => x.to('cpu')),
    /Tensor\.to\('cpu'\) from cuda:0 \(a copy between host and device memory\) inside the test step/,
  );
  assert.throws(
    () => torch.forbidHostSync('the test step', () => torch.zeros([3]).to('cuda')),
    /Tensor\.to\('cuda'\) from cpu/,
  );
  // copy_ between devices, either way; a copy on the device stays allowed
  const host = torch.zeros([3]);
  assert.throws(
    () => torch.forbidHostSync('the test step', () => x.copy_(host)),
    /Tensor\.copy_\(\) from cpu into cuda:0 \(a copy between host and device memory\) inside the test step/,
  );
  assert.throws(
    () => torch.forbidHostSync('the test step', () => host.copy_(x)),
    /Tensor\.copy_\(\) from cuda:0 into cpu/,
  );
  torch.tidy(() => torch.forbidHostSync('the test step', () => void x.copy_(x.mul(2))));
  assert.deepEqual(x.to('cpu').toArray(), [2, 2, 2]);
  host.dispose();
  x.dispose();
});
