// `npm run bench -- engine`: mmoco against Python PyTorch on the same machine, same run.
//
// mmoco is timed in this process, at the library's default threads; PyTorch in one Python
// process (bench/engine_torch.py --serve) at 1 and at 2 threads, the better one reported (with
// `torchThreads`). PyTorch's "1 thread" also sets the pthread OpenBLAS pool to 1, as mmoco's
// setNumThreads does. Both sides do the same work with the same sizes (the case table below
// is handed to the Python script) and warm up first.
//
// The machine is shared and noisy, so the two sides are interleaved: every case runs ROUNDS
// rounds, each round timing mmoco, PyTorch at 1 thread and PyTorch at 2 threads back to back
// (order rotating), and a result is the median over the rounds of each round's median sample.
// A measurement during which other processes used the CPU (/proc/stat) is repeated.
// PyTorch runs with this process's environment, so with the same OMP_WAIT_POLICY and BLAS.
// The AdamW case runs each PyTorch measurement in a fresh Python process (engine_torch.py
// --case adamw): in the long-running server, after the other cases, PyTorch's step takes about
// twice as long as in a fresh process (not explained), which would flatter mmoco.
//
// Output: one JSON line per case:
// {"bench":"engine","case":...,"ours":...,"torch":...,"unit":...,"better":"higher"|"lower",
//  "stat":"median","oursThreads":2,"torchThreads":1|2,"torchByThreads":{...},"otherLoadPct":...}
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  benchSourceDir,
  findTorchPython,
  foreignCpuPct,
  machineBusyMs,
  median,
  now,
  ownCpuMs,
  runJsonLines,
  sig,
  waitForQuiet,
} from './common.js';
import {
  F,
  blasInfo,
  dispose,
  getNumThreads,
  noGrad,
  optim,
  randint,
  randn,
  tidy,
  type Tensor,
} from '../src/torch/index.js';

const ROUNDS = 7;

/** Sizes and repetition counts per round, shared with engine_torch.py. */
export const ENGINE_CASES = {
  add: { numel: 10, opsPerSample: 20_000, opsPerTidy: 1000, samples: 3 },
  matmul1024: { n: 1024, repsPerSample: 4, samples: 3, warmup: 1 },
  matmul2048: { n: 2048, repsPerSample: 2, samples: 3, warmup: 1 },
  mlp: { batch: 256, inFeatures: 784, hidden: 1024, classes: 10, stepsPerSample: 3, samples: 5, warmup: 3 },
  // AdamW over the parameters of a ViT-S/16 (22.05M in 152 tensors) in two groups: weight decay
  // on the tensors with ndim > 1, none on the 1-D ones (biases, norms), as MAE and timm split them
  adamw: {
    dim: 384,
    depth: 12,
    mlpRatio: 4,
    patch: 16,
    inChans: 3,
    tokens: 197,
    classes: 1000,
    lr: 1.5e-4,
    betas: [0.9, 0.95],
    weightDecay: 0.05,
    stepsPerSample: 3,
    samples: 5,
    warmup: 2,
  },
} as const;

type CaseId = keyof typeof ENGINE_CASES;

interface Row {
  bench: 'engine';
  case: string;
  ours: number;
  torch: number;
  unit: string;
  better: 'higher' | 'lower';
  stat: 'median';
  oursThreads: number;
  torchThreads: number;
  /** PyTorch's median at each thread count */
  torchByThreads: Record<string, number>;
  /** CPU that other processes used during the measurements (median), % of one core */
  otherLoadPct: number;
}

// ---- mmoco side ----

/** µs per `x.add(y)` on 10-element tensors: in tidy blocks, or disposing each result. */
function addOverhead(mode: 'tidy' | 'dispose'): number {
  const c = ENGINE_CASES.add;
  const x = randn(c.numel);
  const y = randn(c.numel);
  const sample = (): number => {
    const t0 = now();
    if (mode === 'tidy') {
      for (let done = 0; done < c.opsPerSample; done += c.opsPerTidy) {
        tidy(() => {
          for (let i = 0; i < c.opsPerTidy; i++) x.add(y);
        });
      }
    } else {
      for (let i = 0; i < c.opsPerSample; i++) x.add(y).dispose();
    }
    return ((now() - t0) * 1e3) / c.opsPerSample;
  };
  sample();
  sample(); // warm-up (JIT)
  const xs = Array.from({ length: c.samples }, sample);
  x.dispose();
  y.dispose();
  return median(xs);
}

/** GFLOP/s of an n×n by n×n float32 matmul. */
function matmulGflops(id: 'matmul1024' | 'matmul2048'): number {
  const c = ENGINE_CASES[id];
  const a = randn(c.n, c.n);
  const b = randn(c.n, c.n);
  const once = (): void => tidy(() => void a.matmul(b));
  for (let i = 0; i < c.warmup; i++) once();
  const xs: number[] = [];
  for (let s = 0; s < c.samples; s++) {
    const t0 = now();
    for (let r = 0; r < c.repsPerSample; r++) once();
    const sec = (now() - t0) / 1e3 / c.repsPerSample;
    xs.push((2 * c.n ** 3) / sec / 1e9);
  }
  a.dispose();
  b.dispose();
  return median(xs);
}

/** ms per training step of a 2-layer MLP: grads set to none, forward, cross-entropy, backward. */
function mlpStepMs(): number {
  const c = ENGINE_CASES.mlp;
  const param = (...shape: number[]): Tensor =>
    noGrad(() => tidy(() => randn(...shape).mul(1 / Math.sqrt(shape[shape.length - 1]!)))).requiresGrad_(true);
  const w1 = param(c.hidden, c.inFeatures);
  const b1 = param(c.hidden);
  const w2 = param(c.classes, c.hidden);
  const b2 = param(c.classes);
  const params = [w1, b1, w2, b2];
  const x = randn(c.batch, c.inFeatures);
  const target = randint(0, c.classes, [c.batch]);
  const step = (): void =>
    tidy(() => {
      for (const p of params) p.grad = null;
      const h = F.linear(x, w1, b1).relu();
      const loss = F.crossEntropy(F.linear(h, w2, b2), target);
      loss.backward();
    });
  for (let i = 0; i < c.warmup; i++) step();
  const xs: number[] = [];
  for (let s = 0; s < c.samples; s++) {
    const t0 = now();
    for (let r = 0; r < c.stepsPerSample; r++) step();
    xs.push((now() - t0) / c.stepsPerSample);
  }
  for (const t of [...params, x, target]) t.dispose();
  return median(xs);
}

/** The parameter shapes of a ViT-S/16 (timm's order: embeddings, blocks, final norm, head). */
export function vitSmallShapes(): number[][] {
  const c = ENGINE_CASES.adamw;
  const d = c.dim;
  const h = d * c.mlpRatio;
  const shapes = [[d, c.inChans, c.patch, c.patch], [d], [1, 1, d], [1, c.tokens, d]];
  for (let b = 0; b < c.depth; b++) {
    // norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2 (weights and biases)
    shapes.push([d], [d], [3 * d, d], [3 * d], [d, d], [d], [d], [d], [h, d], [h], [d, h], [d]);
  }
  shapes.push([d], [d], [c.classes, d], [c.classes]);
  return shapes;
}

/** ms per `optimizer.step()` of AdamW over ViT-S-sized parameters with random grads. */
function adamwStepMs(): number {
  const c = ENGINE_CASES.adamw;
  const params = vitSmallShapes().map((s) => noGrad(() => tidy(() => randn(...s).mul(0.02))).requiresGrad_(true));
  for (const p of params) p.grad = randn(...p.shape);
  const opt = new optim.AdamW(
    [
      { params: params.filter((p) => p.ndim > 1), weightDecay: c.weightDecay },
      { params: params.filter((p) => p.ndim <= 1), weightDecay: 0 },
    ],
    { lr: c.lr, betas: [c.betas[0], c.betas[1]] },
  );
  for (let i = 0; i < c.warmup; i++) opt.step();
  const xs: number[] = [];
  for (let s = 0; s < c.samples; s++) {
    const t0 = now();
    for (let r = 0; r < c.stepsPerSample; r++) opt.step();
    xs.push((now() - t0) / c.stepsPerSample);
  }
  dispose([...opt.state.values()]);
  dispose(params);
  return median(xs);
}

// ---- PyTorch side: one Python process answering {"case", "threads"} requests ----

interface Measured {
  value: number;
  /** CPU used by other processes meanwhile, % of one core */
  foreign: number;
}

class TorchServer {
  private readonly child;
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  constructor() {
    const script = join(benchSourceDir(), 'engine_torch.py');
    this.child = spawn(findTorchPython(), ['-B', script, '--serve', '--config', JSON.stringify(ENGINE_CASES)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async run(id: CaseId, threads: number): Promise<Measured> {
    this.child.stdin.write(JSON.stringify({ case: id, threads }) + '\n');
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`engine: engine_torch.py stopped (exit ${this.child.exitCode}):\n${this.stderr}`);
    const r = JSON.parse(value as string) as { value: number; foreignPct: number };
    return { value: r.value, foreign: r.foreignPct };
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** One measurement of `id` at `threads` by a fresh Python process (nothing run before it). */
function freshTorch(id: CaseId, threads: number): Measured {
  const [row] = runJsonLines(
    findTorchPython(),
    [
      '-B',
      join(benchSourceDir(), 'engine_torch.py'),
      '--case',
      id,
      '--threads',
      String(threads),
      '--config',
      JSON.stringify(ENGINE_CASES),
    ],
    process.env,
    600_000,
  );
  if (!row || typeof row.value !== 'number') throw new Error(`engine: engine_torch.py --case ${id}: no result`);
  return { value: row.value, foreign: Number(row.foreignPct) };
}

// ---- guarding against other load ----

/** A measurement during which other processes used more than this much CPU (% of one core,
 * from /proc/stat) is repeated, twice at most. */
const MAX_FOREIGN_PCT = 25;

function inProcess(fn: () => number): () => Measured {
  return () => {
    const [w0, b0, c0] = [now(), machineBusyMs(), ownCpuMs()];
    const value = fn();
    return { value, foreign: foreignCpuPct(now() - w0, machineBusyMs() - b0, ownCpuMs() - c0) };
  };
}

async function guarded(what: string, run: () => Measured | Promise<Measured>): Promise<Measured> {
  let m: Measured | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    waitForQuiet(MAX_FOREIGN_PCT, 60_000, 250);
    m = await run();
    if (!(m.foreign > MAX_FOREIGN_PCT)) break;
    process.stderr.write(
      `[engine] ${what}: other processes used ${m.foreign.toFixed(0)}% of a core; ${attempt < 2 ? 'repeating' : 'keeping it'}\n`,
    );
  }
  return m!;
}

// ---- the comparison ----

interface CaseResult {
  ours: number;
  torchByThreads: Record<string, number>;
  otherLoadPct: number;
}

/** ROUNDS rounds of: mmoco, PyTorch at each thread count (order rotating); medians over rounds. */
async function compare(
  id: CaseId,
  ours: () => number,
  torch: TorchServer | 'fresh',
  threads: readonly number[],
): Promise<CaseResult> {
  const sides: { key: string; run: () => Measured | Promise<Measured> }[] = [
    { key: 'ours', run: inProcess(ours) },
    ...threads.map((t) => ({
      key: String(t),
      run: () => (torch === 'fresh' ? freshTorch(id, t) : torch.run(id, t)),
    })),
  ];
  const values = new Map<string, number[]>(sides.map((s) => [s.key, []]));
  const foreign: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(k + round) % sides.length]!;
      const m = await guarded(`${id} ${side.key === 'ours' ? 'mmoco' : `torch@${side.key}`}`, side.run);
      values.get(side.key)!.push(m.value);
      foreign.push(m.foreign);
    }
  }
  return {
    ours: median(values.get('ours')!),
    torchByThreads: Object.fromEntries(threads.map((t) => [String(t), median(values.get(String(t))!)])),
    otherLoadPct: median(foreign),
  };
}

function best(byThreads: Record<string, number>, better: 'higher' | 'lower'): [number, number] {
  let bestT = 0;
  let bestV = better === 'higher' ? -Infinity : Infinity;
  for (const [t, v] of Object.entries(byThreads)) {
    if (better === 'higher' ? v > bestV : v < bestV) [bestT, bestV] = [Number(t), v];
  }
  return [bestV, bestT];
}

export async function runEngine(args: readonly string[]): Promise<void> {
  // --case adamw: that case alone (it needs no server)
  const only = args[0] === '--case' && args.length === 2 ? args[1] : undefined;
  if (args.length > 0 && only !== 'adamw')
    throw new Error(`engine: takes no options but --case adamw (got ${args.join(' ')})`);
  const threads = [...new Set([1, Math.min(2, availableParallelism())])];
  const info = blasInfo();
  process.stderr.write(
    `[engine] mmoco: ${getNumThreads()} threads, BLAS ${info.library} (${info.parallel ?? info.vendor}), ` +
      `OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? '(unset)'}; PyTorch: ${findTorchPython()} at ` +
      `${threads.join(' and ')} threads; ${ROUNDS} rounds per case\n`,
  );
  const emit = (name: string, r: CaseResult, unit: string, better: Row['better']): void => {
    const [torch, torchThreads] = best(r.torchByThreads, better);
    const row: Row = {
      bench: 'engine',
      case: name,
      ours: sig(r.ours),
      torch: sig(torch),
      unit,
      better,
      stat: 'median',
      oursThreads: getNumThreads(),
      torchThreads,
      torchByThreads: Object.fromEntries(Object.entries(r.torchByThreads).map(([k, v]) => [k, sig(v)])),
      otherLoadPct: Math.round(r.otherLoadPct),
    };
    console.log(JSON.stringify(row));
  };
  const adamw = async (): Promise<void> =>
    emit(
      'adamw step over ViT-S-sized parameters (22.05M, 152 tensors)',
      await compare('adamw', adamwStepMs, 'fresh', threads),
      'ms/step',
      'lower',
    );
  if (only === 'adamw') return adamw();
  const torch = new TorchServer();
  try {
    const tidyAdd = await compare('add', () => addOverhead('tidy'), torch, threads);
    emit('add 10 float32 (in tidy)', tidyAdd, 'us/op', 'lower');
    // PyTorch's side of this case is the same loop; it is run again to pair it in time with ours.
    emit(
      'add 10 float32 (dispose each)',
      await compare('add', () => addOverhead('dispose'), torch, threads),
      'us/op',
      'lower',
    );
    for (const id of ['matmul1024', 'matmul2048'] as const) {
      const n = ENGINE_CASES[id].n;
      emit(
        `matmul ${n}x${n}x${n} float32`,
        await compare(id, () => matmulGflops(id), torch, threads),
        'GFLOP/s',
        'higher',
      );
    }
    const c = ENGINE_CASES.mlp;
    emit(
      `mlp ${c.inFeatures}-${c.hidden}-${c.classes} batch ${c.batch} fwd+bwd`,
      await compare('mlp', mlpStepMs, torch, threads),
      'ms/step',
      'lower',
    );
  } finally {
    torch.close();
  }
  await adamw();
}
