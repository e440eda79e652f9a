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

test('without CUDA, pinned memory and CUDA graphs are refused with a clear error', { skip: hasCuda }, () => {
  const x = torch.ones(2);
  assert.equal(x.isPinned(), false);
  if (!torch.buildInfo().withCuda) assert.throws(() => x.pinMemory(), /pinMemory: this build has no CUDA/);
  assert.equal(torch.cuda.graphsAvailable(), false);
  assert.throws(() => new torch.cuda.CUDAGraph(), /cudaGraphCreate: this build has no CUDA graphs/);
  // a non-blocking copy where there is nothing to overlap is an ordinary copy
  const y = x.to({ device: 'cpu', dtype: 'float64', nonBlocking: true });
  assert.deepEqual(y.toArray(), [1, 1]);
  torch.dispose([x, y]);
});

test('on CUDA, a pinned batch is copied to the GPU without blocking, exactly', { skip: !hasCuda }, () => {
  torch.tidy(() => {
    const host = torch.randint(0, 256, [4, 3, 8, 8]).to('uint8');
    const pinned = host.pinMemory();
    assert.equal(pinned.isPinned(), true);
    assert.equal(host.isPinned(), false);
    const dev = pinned.to({ device: 'cuda', nonBlocking: true });
    assert.equal(dev.device, 'cuda:0');
    torch.cuda.synchronize();
    assert.deepEqual(Array.from(dev.cpu().toTypedArray() as Uint8Array), Array.from(host.toTypedArray() as Uint8Array));
  });
});

const graphs = hasCuda && torch.cuda.graphsAvailable();

test('CUDA graph: a captured computation replays on new inputs', { skip: !graphs }, () => {
  torch.tidy(() => {
    const x = torch.zeros([64, 32], { device: 'cuda' });
    const w = torch.randn([32, 16], { device: 'cuda' });
    // warm-up outside the capture (library handles, workspaces), as PyTorch advises
    x.matmul(w).relu().sum();
    torch.cuda.synchronize();
    const g = new torch.cuda.CUDAGraph();
    const y = g.capture(() => torch.keep(x.matmul(w).relu().add(1)));
    for (let k = 0; k < 3; k++) {
      const fresh = torch.randn([64, 32], { device: 'cuda' });
      x.copy_(fresh);
      g.replay();
      torch.cuda.synchronize();
      const want = fresh.matmul(w).relu().add(1);
      const diff = y.sub(want).abs().max().item() as number;
      assert.ok(diff < 1e-5, `replay ${k}: max difference ${diff}`);
    }
    g.dispose();
    y.dispose();
  });
});

test('CUDA graph: a whole training step (forward, backward, SGD) replays as eager steps run', { skip: !graphs }, () => {
  torch.tidy(() => {
    torch.manualSeed(3);
    const w0 = torch.randn([16, 8], { device: 'cuda' }).mul(0.1);
    const xs = Array.from({ length: 4 }, () => torch.randn([32, 16], { device: 'cuda' }));
    const lr = 0.1;
    // eager reference
    const we = w0.clone().requiresGrad_(true);
    const eager: number[] = [];
    for (const x of xs) {
      const loss = x.matmul(we).tanh().pow(2).mean();
      loss.backward();
      torch.noGrad(() => we.sub_(we.grad!.mul(lr)));
      we.grad!.zero_();
      eager.push(loss.item() as number);
    }
    // graphed: static input, the loss read after each replay
    const wg = w0.clone().requiresGrad_(true);
    const xin = torch.zeros([32, 16], { device: 'cuda' });
    const stepBody = (): torch.Tensor => {
      const loss = xin.matmul(wg).tanh().pow(2).mean();
      loss.backward();
      torch.noGrad(() => wg.sub_(wg.grad!.mul(lr)));
      wg.grad!.zero_();
      return loss;
    };
    // warm-up on a copy of the weights so the graph starts from w0
    xin.copy_(xs[0]!);
    stepBody();
    torch.noGrad(() => wg.copy_(w0));
    torch.cuda.synchronize();
    const g = new torch.cuda.CUDAGraph();
    xin.copy_(xs[0]!);
    const loss = g.capture(() => torch.keep(stepBody()));
    // capture ran nothing: replay the first step, then the rest
    const got: number[] = [];
    for (const x of xs) {
      xin.copy_(x);
      g.replay();
      got.push(loss.item() as number);
    }
    got.forEach((v, i) => assert.ok(Math.abs(v - eager[i]!) < 1e-5, `step ${i}: graphed ${v} eager ${eager[i]}`));
    const dw = wg.sub(we).abs().max().item() as number;
    assert.ok(dw < 1e-5, `weights after 4 steps differ by ${dw}`);
    g.dispose();
    loss.dispose();
  });
});

test('CUDA graph: random numbers drawn inside a capture change with every replay', { skip: !graphs }, () => {
  torch.tidy(() => {
    torch.rand([4], { device: 'cuda' });
    torch.cuda.synchronize();
    const g = new torch.cuda.CUDAGraph();
    const r = g.capture(() => torch.keep(torch.rand([1000], { device: 'cuda' })));
    g.replay();
    const a = r.cpu().toTypedArray() as Float32Array;
    g.replay();
    const b = r.cpu().toTypedArray() as Float32Array;
    assert.notDeepEqual(Array.from(a), Array.from(b));
    const mean = b.reduce((s, v) => s + v, 0) / b.length;
    assert.ok(Math.abs(mean - 0.5) < 0.05, `uniform draws, mean ${mean}`);
    g.dispose();
    r.dispose();
  });
});

test('CUDA graph: an op that fails during capture drops the capture and restores the stream', { skip: !graphs }, () => {
  torch.tidy(() => {
    const g = new torch.cuda.CUDAGraph();
    const a = torch.ones([2, 3], { device: 'cuda' });
    assert.throws(() => g.capture(() => a.matmul(a)), /mm|matmul|shape/i);
    // the process still runs ordinary CUDA work afterwards
    assert.equal(a.add(1).sum().item(), 12);
    g.dispose();
  });
});
