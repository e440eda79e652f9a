// `npm run bench -- threads [options]`: how well mmoco and PyTorch use the second core, per
// BLAS variant and OpenMP wait policy. Results and conclusions: bench/THREADS.md.
//
// Every configuration and thread count runs in a fresh process (bench/threads_child.ts for
// mmoco, bench/threads_torch.py for PyTorch), because OMP_WAIT_POLICY and the BLAS library are
// fixed when libtorch loads (and an OpenMP pool, once started, keeps its threads). Each process
// times a ViT-Tiny block training step (images/s) and a 2048³ float32 matmul (GFLOP/s).
// Configurations alternate (round-robin, rotated each round), the 1- and 2-thread processes of
// a configuration run back to back, and each result is the median over the rounds; speed-ups
// are medians of the per-round ratios. Runs during which other processes used the CPU
// (/proc/stat) are repeated.
//
// How a configuration is applied to the child:
// - BLAS variant: LD_LIBRARY_PATH=<multiarch lib dir>/openblas-<variant>, which holds
//   libblas.so.3, liblapack.so.3 and libopenblas.so.0 (all three are needed: libtorch links
//   libblas.so.3 and libopenblas.so.0). This is the per-process equivalent of
//   `update-alternatives --set` on those three links. The child reports which build is live.
// - OMP_WAIT_POLICY: set, or removed from the environment ("unset"); for these, mmoco's children
//   also get LD_PRELOAD=libgomp.so.1 so that libgomp reads the environment before mmoco applies
//   its own default (src/torch/threads-env.ts). "default" leaves that choice to mmoco.
// - Threads: OMP_NUM_THREADS=<n> from the start, then set explicitly.
// - OpenBLAS threads (pthread build only): "follow" = the torch thread count (what mmoco's
//   setNumThreads does), or 1 (OPENBLAS_NUM_THREADS=1, and set explicitly).
import { readdirSync, realpathSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { benchSourceDir, findTorchPython, median, runJsonLines, sig, sleepMs, waitForQuiet } from './common.js';
import type { ChildResult, ChildSpec } from './threads_child.js';

type Engine = 'ours' | 'torch';
/** 'default': mmoco's own choice (src/torch/threads-env.ts); for PyTorch the same as 'unset'. */
type Policy = 'default' | 'unset' | 'PASSIVE' | 'ACTIVE';

interface Config {
  engine: Engine;
  /** OpenBLAS build: 'pthread', 'openmp', ... or 'system' (whatever libblas.so.3 is now) */
  blas: string;
  policy: Policy;
  blasThreads: 'follow' | 1;
}

interface Options {
  repeats: number;
  engines: Engine[];
  blas: string[];
  policies: Policy[];
  blasThreads: ('follow' | 1)[];
  batch: number;
  steps: number;
  maxForeign: number;
  table: boolean;
}

const HELP = `usage: npm run bench -- threads [options]
  --repeats N            rounds over all configurations (default 5; results are medians)
  --engines ours,torch   which libraries (default both)
  --blas LIST            OpenBLAS builds: pthread,openmp (installed ones), or system
                         (default: the one installed as libopenblas.so.0 now)
  --policies LIST        OMP_WAIT_POLICY: default (mmoco's choice; PyTorch skips it),
                         unset, PASSIVE, ACTIVE (default: default,unset,PASSIVE)
  --openblas-threads L   pthread build only: follow,1 (default follow)
  --batch N              ViT block batch (default 64)
  --steps N              timed steps per thread count and process (default 5)
  --max-foreign PCT      a run during which other processes used more than PCT % of a
                         core (/proc/stat) is discarded and repeated, twice at most (default 25)
  --full                 --blas <all installed> --policies default,unset,PASSIVE,ACTIVE
                         --openblas-threads follow,1
  --table                also print a markdown table at the end`;

function parseArgs(args: readonly string[]): Options {
  const o: Options = {
    repeats: 5,
    engines: ['ours', 'torch'],
    blas: [],
    policies: ['default', 'unset', 'PASSIVE'],
    blasThreads: ['follow'],
    batch: 64,
    steps: 5,
    maxForeign: 25,
    table: false,
  };
  const list = (v: string | undefined): string[] => (v ?? '').split(',').filter(Boolean);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`threads: ${a} needs a value\n${HELP}`);
      return v;
    };
    switch (a) {
      case '--repeats':
        o.repeats = Number(next());
        break;
      case '--engines':
        o.engines = list(next()) as Engine[];
        break;
      case '--blas':
        o.blas = list(next());
        break;
      case '--policies':
        o.policies = list(next()) as Policy[];
        break;
      case '--openblas-threads':
        o.blasThreads = list(next()).map((v) => (v === 'follow' ? 'follow' : 1));
        break;
      case '--batch':
        o.batch = Number(next());
        break;
      case '--steps':
        o.steps = Number(next());
        break;
      case '--full':
        o.blas = Object.keys(blasVariants().dirs);
        o.policies = ['default', 'unset', 'PASSIVE', 'ACTIVE'];
        o.blasThreads = ['follow', 1];
        break;
      case '--max-foreign':
        o.maxForeign = Number(next());
        break;
      case '--table':
        o.table = true;
        break;
      case '--help':
      case '-h':
        console.error(HELP);
        process.exit(0);
        break;
      default:
        throw new Error(`threads: unknown option ${a}\n${HELP}`);
    }
  }
  for (const e of o.engines) if (e !== 'ours' && e !== 'torch') throw new Error(`threads: unknown engine ${e}`);
  for (const p of o.policies) {
    if (!['default', 'unset', 'PASSIVE', 'ACTIVE'].includes(p)) throw new Error(`threads: unknown policy ${p}`);
  }
  if (o.blas.length === 0) o.blas = [blasVariants().live ?? 'system'];
  if (!(o.repeats >= 1 && o.batch >= 1 && o.steps >= 1))
    throw new Error('threads: --repeats/--batch/--steps must be >= 1');
  return o;
}

interface Variants {
  /** name ('pthread', 'openmp', ...) -> folder holding that build's libblas.so.3 (Debian's layout) */
  dirs: Record<string, string>;
  /** the build that libopenblas.so.0 resolves to now (update-alternatives), if it is one of them */
  live?: string;
}
let variantsCache: Variants | undefined;
function blasVariants(): Variants {
  if (variantsCache) return variantsCache;
  const v: Variants = { dirs: {} };
  let linked = '';
  try {
    // libopenblas.so.0 is the engine (its build decides the threading); libblas.so.3 a wrapper.
    const lines = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).split('\n');
    const line =
      lines.find((l) => l.trim().startsWith('libopenblas.so.0 ')) ??
      lines.find((l) => l.trim().startsWith('libblas.so.3 '));
    linked = line?.split('=>')[1]?.trim() ?? '';
  } catch {
    // no ldconfig: only the system BLAS can be tested
  }
  if (linked && existsSync(linked)) {
    // <multiarch>/libopenblas.so.0 -> <multiarch>/openblas-pthread/libopenblasp-r0.3.21.so
    const real = realpathSync(linked);
    const libDir = dirname(dirname(real));
    for (const d of readdirSync(libDir)) {
      const m = /^openblas-(\w+)$/.exec(d);
      if (m && existsSync(join(libDir, d, 'libblas.so.3'))) v.dirs[m[1]!] = join(libDir, d);
    }
    v.live = Object.keys(v.dirs).find((k) => dirname(real) === v.dirs[k]);
  }
  return (variantsCache = v);
}

function configs(o: Options): Config[] {
  const out: Config[] = [];
  for (const engine of o.engines) {
    for (const blas of o.blas) {
      for (const policy of o.policies) {
        if (policy === 'default' && engine === 'torch') continue;
        // A fixed OpenBLAS pool only exists in the pthread build.
        const bts = blas === 'pthread' ? o.blasThreads : (['follow'] as const);
        for (const blasThreads of bts) out.push({ engine, blas, policy, blasThreads });
      }
    }
  }
  return out;
}

function childEnv(c: Config, threads: number): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['OMP_WAIT_POLICY', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'GOMP_SPINCOUNT', 'LD_PRELOAD']) {
    delete env[k];
  }
  // Thread count from the start (mmoco's applyThreadDefaults and torch both read it), so that
  // no larger pool was ever created in the process.
  env.OMP_NUM_THREADS = String(threads);
  if (c.policy !== 'unset' && c.policy !== 'default') env.OMP_WAIT_POLICY = c.policy;
  if (c.engine === 'ours' && c.policy !== 'default') env.LD_PRELOAD = 'libgomp.so.1';
  if (c.blasThreads !== 'follow') env.OPENBLAS_NUM_THREADS = String(c.blasThreads);
  if (c.blas !== 'system') {
    const dir = blasVariants().dirs[c.blas];
    if (!dir) {
      throw new Error(
        `threads: OpenBLAS build '${c.blas}' is not installed (found: ${Object.keys(blasVariants().dirs).join(', ') || 'none'}); ` +
          `install libopenblas0-${c.blas}`,
      );
    }
    env.LD_LIBRARY_PATH = [dir, env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  }
  return env;
}

function runChild(c: Config, threads: number, spec: ChildSpec): ChildResult[] {
  const env = childEnv(c, threads);
  const here = dirname(fileURLToPath(import.meta.url));
  const arg = JSON.stringify(spec);
  const once = (): Record<string, unknown>[] =>
    c.engine === 'ours'
      ? runJsonLines(process.execPath, [join(here, 'threads_child.js'), arg], env, 300_000)
      : runJsonLines(findTorchPython(), ['-B', join(benchSourceDir(), 'threads_torch.py'), arg], env, 300_000);
  let rows: Record<string, unknown>[] | undefined;
  // A child can fail while the native addon is being rebuilt: wait and try again.
  for (let attempt = 1; !rows; attempt++) {
    try {
      rows = once();
    } catch (err) {
      if (attempt >= 3) throw err;
      process.stderr.write(`[threads] ${label(c)} failed (${(err as Error).message.split('\n')[0]}); retrying\n`);
      sleepMs(20_000);
    }
  }
  const res = rows as unknown as ChildResult[];
  for (const r of res) {
    if (c.blas !== 'system' && r.blas.parallel !== c.blas) {
      throw new Error(
        `threads: asked for OpenBLAS ${c.blas}, but the child runs ${r.blas.parallel} (${r.blas.library})`,
      );
    }
  }
  return res;
}

const label = (c: Config): string =>
  `${c.engine} blas=${c.blas} OMP_WAIT_POLICY=${c.policy} openblasThreads=${c.blasThreads}`;

interface Summary {
  bench: 'threads';
  engine: Engine;
  blas: string;
  /** the policy under test; for 'default', what mmoco chose */
  ompWaitPolicy: string;
  openblasThreads: string;
  batch: number;
  vitImgPerS1: number;
  vitImgPerS2: number;
  vitSpeedup: number;
  vitCpuPct2: number;
  gemmGflops1: number;
  gemmGflops2: number;
  gemmSpeedup: number;
  repeats: number;
  /** runs thrown away because other processes were busy */
  discarded: number;
}

export function runThreads(args: readonly string[]): void {
  const o = parseArgs(args);
  const cores = availableParallelism();
  const threads = cores >= 2 ? [1, 2] : [1];
  const spec: ChildSpec = {
    threads,
    blasThreads: 'follow',
    batch: o.batch,
    warmup: 2,
    steps: o.steps,
    gemmN: 2048,
    gemmReps: 3,
  };
  const cs = configs(o);
  const results = new Map<Config, { t1?: ChildResult; t2?: ChildResult }[]>(cs.map((c) => [c, []]));
  const variants = blasVariants();
  process.stderr.write(
    `[threads] ${cs.length} configurations x ${o.repeats} rounds; OpenBLAS builds installed: ` +
      `${Object.keys(variants.dirs).join(', ') || 'none found'} (live: ${variants.live ?? '?'})\n`,
  );
  const disturbed = new Map<Config, number>();
  /** One fresh process for configuration c at t threads, repeated when other load disturbed it. */
  const measure = (c: Config, t: number): ChildResult | undefined => {
    let row: ChildResult | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = waitForQuiet(o.maxForeign, 120_000);
      if (before >= o.maxForeign)
        process.stderr.write(`[threads] machine still busy (${before.toFixed(0)}% of a core)\n`);
      row = runChild(c, t, { ...spec, threads: [t], blasThreads: c.blasThreads })[0];
      if (!(row && row.foreignPct > o.maxForeign)) break;
      if (attempt < 2) disturbed.set(c, (disturbed.get(c) ?? 0) + 1);
      process.stderr.write(
        `[threads] ${label(c)} at ${t} threads: other processes used ${row.foreignPct.toFixed(0)}% of a core; ` +
          (attempt < 2 ? 'repeating\n' : 'keeping it\n'),
      );
    }
    return row;
  };
  for (let round = 0; round < o.repeats; round++) {
    for (let k = 0; k < cs.length; k++) {
      const c = cs[(k + round) % cs.length]!;
      const r: { t1?: ChildResult; t2?: ChildResult } = {};
      // 1 and 2 threads back to back (order alternating), so that their ratio sees the same load.
      for (const t of round % 2 ? [...threads].reverse() : threads) {
        if (t === 1) r.t1 = measure(c, t);
        else r.t2 = measure(c, t);
      }
      results.get(c)!.push(r);
      process.stderr.write(
        `[threads] round ${round + 1}/${o.repeats} ${label(c)} (live: ${r.t1?.blas.parallel}): ` +
          `ViT ${sig(r.t1?.vitImgPerS ?? NaN, 3)} / ${sig(r.t2?.vitImgPerS ?? NaN, 3)} img/s, ` +
          `GEMM ${sig(r.t1?.gemmGflops ?? NaN, 3)} / ${sig(r.t2?.gemmGflops ?? NaN, 3)} GFLOP/s at 1 / 2 threads\n`,
      );
    }
  }
  const summaries: Summary[] = cs.map((c) => {
    const rs = results.get(c)!;
    const pick = (f: (r: { t1?: ChildResult; t2?: ChildResult }) => number | undefined): number =>
      sig(median(rs.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v))), 4);
    return {
      bench: 'threads',
      engine: c.engine,
      blas: c.blas === 'system' ? `system (${rs[0]?.t1?.blas.parallel ?? '?'})` : c.blas,
      ompWaitPolicy: c.policy === 'default' ? `mmoco default (${rs[0]?.t2?.ompWaitPolicy ?? 'unset'})` : c.policy,
      openblasThreads: c.blas === 'pthread' ? String(c.blasThreads) : 'omp pool',
      batch: o.batch,
      vitImgPerS1: pick((r) => r.t1?.vitImgPerS),
      vitImgPerS2: pick((r) => r.t2?.vitImgPerS),
      vitSpeedup: pick((r) => (r.t1 && r.t2 ? r.t2.vitImgPerS / r.t1.vitImgPerS : undefined)),
      vitCpuPct2: pick((r) => r.t2?.vitCpuPct),
      gemmGflops1: pick((r) => r.t1?.gemmGflops),
      gemmGflops2: pick((r) => r.t2?.gemmGflops),
      gemmSpeedup: pick((r) => (r.t1 && r.t2 ? r.t2.gemmGflops / r.t1.gemmGflops : undefined)),
      repeats: rs.length,
      discarded: disturbed.get(c) ?? 0,
    };
  });
  for (const s of summaries) console.log(JSON.stringify(s));
  if (o.table) console.log('\n' + markdownTable(summaries));
}

export function markdownTable(rows: readonly Summary[]): string {
  const head =
    '| engine | BLAS | OMP_WAIT_POLICY | OpenBLAS threads | ViT img/s 1T | ViT img/s 2T | ViT 2T/1T | CPU % at 2T | ' +
    'GEMM GFLOP/s 1T | GEMM GFLOP/s 2T | GEMM 2T/1T |';
  const sep = '|' + ' --- |'.repeat(11);
  const body = rows.map(
    (s) =>
      `| ${s.engine === 'ours' ? 'mmoco' : 'PyTorch'} | ${s.blas} | ${s.ompWaitPolicy} | ${s.openblasThreads} | ` +
      `${s.vitImgPerS1.toFixed(0)} | ${s.vitImgPerS2.toFixed(0)} | ${s.vitSpeedup.toFixed(2)} | ${s.vitCpuPct2.toFixed(0)} | ` +
      `${s.gemmGflops1.toFixed(0)} | ${s.gemmGflops2.toFixed(0)} | ${s.gemmSpeedup.toFixed(2)} |`,
  );
  return [head, sep, ...body].join('\n');
}
