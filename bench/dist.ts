// `npm run bench -- dist`: images/s of data-parallel M-MoCo pre-training steps with 1 and 2
// processes (1 thread each, Gloo over loopback) for the small CIFAR recipe's model (ViT-Tiny/4
// at 32 px, n = 8, m = 1, LN heads 1024 wide), ours (trainStep with a c10d process group: keys
// all-gathered, gradients all-reduced) against PyTorch DDP with Gloo on the same step
// (bench/dist_torch.py: MoCo v3's builder with concat_all_gather, DistributedDataParallel), same
// machine, same run. The global batch is 128 (64 per rank with 2 processes); the views are fixed
// random tensors (no data loading), float32. `--steps N` sets the timed steps (default 4).
//
// Output: one JSON line per process count:
// {"bench":"dist","case":"ViT-Tiny/4 32px n=8 LN, 2 processes x 1 thread","ours":...,"torch":...,
//  "unit":"images/s","better":"higher","stat":"median","oursStepMs":[...],"torchStepMs":[...]}
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { benchSourceDir, findTorchPython, median, sig } from './common.js';

const GLOBAL_BATCH = 128;
const WARMUP = 1;
const STEPS = 4;

export interface DistCase {
  batch: number;
  warmup: number;
  steps: number;
  port: number;
}

function runRanks(
  cmd: string,
  args: (rank: number) => string[],
  world: number,
  env: NodeJS.ProcessEnv,
): Promise<string[]> {
  return Promise.all(
    Array.from(
      { length: world },
      (_, rank) =>
        new Promise<string>((res, rej) => {
          const c = spawn(cmd, args(rank), {
            env: { ...process.env, ...env, RANK: String(rank), WORLD_SIZE: String(world), OMP_NUM_THREADS: '1' },
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          c.stdout.on('data', (d: Buffer) => (out += d.toString()));
          c.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`rank ${rank} exited with ${code}`))));
        }),
    ),
  );
}

function stepMs(out: string): number[] {
  const line = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .at(-1);
  if (!line) throw new Error('bench dist: a rank printed no result');
  return (JSON.parse(line) as { stepMs: number[] }).stepMs;
}

export async function runDist(args: string[]): Promise<void> {
  const python = findTorchPython();
  const i = args.indexOf('--steps');
  const steps = i >= 0 ? Number(args[i + 1]) : STEPS;
  const child = fileURLToPath(new URL('./dist_child.js', import.meta.url));
  let port = 29650;
  for (const world of [1, 2]) {
    const c: DistCase = { batch: GLOBAL_BATCH / world, warmup: WARMUP, steps, port: port++ };
    const env = { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(c.port) };
    process.stderr.write(`[dist] ${world} process(es): mmoco...\n`);
    const ours = stepMs((await runRanks(process.execPath, () => [child, JSON.stringify(c)], world, env))[0]!);
    process.stderr.write(`[dist] ${world} process(es): PyTorch DDP...\n`);
    const tenv = { ...env, MASTER_PORT: String(port++) };
    const script = join(benchSourceDir(), 'dist_torch.py');
    const torch = stepMs((await runRanks(python, () => [script, JSON.stringify(c)], world, tenv))[0]!);
    console.log(
      JSON.stringify({
        bench: 'dist',
        case: `ViT-Tiny/4 32px n=8 LN heads, global batch ${GLOBAL_BATCH}, ${world} process${world > 1 ? 'es' : ''} x 1 thread`,
        ours: sig(GLOBAL_BATCH / (median(ours) / 1e3)),
        torch: sig(GLOBAL_BATCH / (median(torch) / 1e3)),
        unit: 'images/s',
        better: 'higher',
        stat: 'median',
        oursStepMs: ours.map((x) => sig(x)),
        torchStepMs: torch.map((x) => sig(x)),
      }),
    );
  }
}
