// One configuration of the thread study, in its own process (spawned by bench/threads.ts
// with the thread environment under test): `node dist/bench/threads_child.js '<spec JSON>'`.
// Prints one JSON line per thread count.
import { blasInfo, getNumThreads, randn, setNumThreads, tidy } from '../src/torch/index.js';
import { N } from '../src/torch/native.js';
import { foreignCpuPct, machineBusyMs, median, now, ownCpuMs } from './common.js';
import { VIT_TINY, vitBlock } from './vit_block.js';

export interface ChildSpec {
  threads: number[];
  /** OpenBLAS pthread pool: 'follow' = same as the torch threads (mmoco's setNumThreads), or a fixed count */
  blasThreads: 'follow' | number;
  batch: number;
  warmup: number;
  steps: number;
  gemmN: number;
  gemmReps: number;
}

export interface ChildResult {
  threads: number;
  vitImgPerS: number;
  /** process CPU time / wall time during the timed steps, in % of one core */
  vitCpuPct: number;
  gemmGflops: number;
  /** CPU used by other processes during the timed parts, in % of one core (the larger of the two) */
  foreignPct: number;
  blas: { parallel?: string; threads?: number; library: string };
  ompWaitPolicy: string | null;
}

function main(): void {
  const spec = JSON.parse(process.argv[2] ?? '') as ChildSpec;
  const block = vitBlock();
  const x = randn(spec.batch, VIT_TINY.tokens, VIT_TINY.dim);
  const a = randn(spec.gemmN, spec.gemmN);
  const b = randn(spec.gemmN, spec.gemmN);
  for (const t of spec.threads) {
    setNumThreads(t);
    if (spec.blasThreads !== 'follow') N.blasSetNumThreads(spec.blasThreads);
    for (let i = 0; i < spec.warmup; i++) block.step(x);
    const times: number[] = [];
    let w0 = now();
    let c0 = ownCpuMs();
    let b0 = machineBusyMs();
    for (let i = 0; i < spec.steps; i++) {
      const t0 = now();
      block.step(x);
      times.push(now() - t0);
    }
    const vitWall = now() - w0;
    const vitCpu = ownCpuMs() - c0;
    const vitForeign = foreignCpuPct(vitWall, machineBusyMs() - b0, vitCpu);
    tidy(() => void a.matmul(b));
    const gemm: number[] = [];
    [w0, c0, b0] = [now(), ownCpuMs(), machineBusyMs()];
    for (let i = 0; i < spec.gemmReps; i++) {
      const t0 = now();
      tidy(() => void a.matmul(b));
      gemm.push((2 * spec.gemmN ** 3) / ((now() - t0) / 1e3) / 1e9);
    }
    const gemmForeign = foreignCpuPct(now() - w0, machineBusyMs() - b0, ownCpuMs() - c0);
    const info = blasInfo();
    const out: ChildResult = {
      threads: getNumThreads(),
      vitImgPerS: spec.batch / (median(times) / 1e3),
      vitCpuPct: (vitCpu / vitWall) * 100,
      gemmGflops: median(gemm),
      foreignPct: Math.max(vitForeign, gemmForeign),
      blas: { parallel: info.parallel, threads: info.threads, library: info.library },
      ompWaitPolicy: process.env.OMP_WAIT_POLICY ?? null,
    };
    console.log(JSON.stringify(out));
  }
}

main();
