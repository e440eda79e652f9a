// `mmoco launch`: runs an mmoco command as N processes per node, as torchrun does: each rank gets
// RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT (and OMP_NUM_THREADS =
// cores / N unless set) and joins the c10d process group the training commands create from them.
// Signals are forwarded; when one rank fails the others are stopped and launch exits non-zero
// naming the rank, instead of leaving them blocked in a collective.
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { UsageError } from './common.js';

const HELP = `usage: mmoco launch --nproc N [--nnodes K --node-rank R --master-addr A --master-port P]
                    [--grace-s S] <command> [options of the command]

Runs <command> (pretrain, linprobe, finetune) as N processes on this node, data-parallel over
K nodes (N·K ranks in all) with libtorch's c10d (Gloo on the CPU, NCCL for CUDA). Rank 0 hosts the
rendezvous at --master-addr:--master-port (default 127.0.0.1:29500) and writes the logs and
checkpoints. On several hosts run the same command on each with its --node-rank, the address of
node 0, and an --out folder that every node sees (a shared filesystem) so all can resume.

  --nproc N          processes on this node (default 1)
  --nnodes K         nodes (default 1)
  --node-rank R      this node's index (default 0)
  --master-addr A    address of node 0 (default 127.0.0.1)
  --master-port P    port of the rendezvous on node 0 (default 29500)
  --grace-s S        seconds the other ranks get to stop after one fails (default 10)

With ablate the N processes are not data-parallel: they share out the grid's cells, each trained
in one process, and rank 0 writes the table. <command> may be written with a leading 'mmoco'.`;

interface LaunchOptions {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  graceS: number;
  command: string[];
}

export function parseLaunch(argv: readonly string[]): LaunchOptions | null {
  const o: LaunchOptions = {
    nproc: 1,
    nnodes: 1,
    nodeRank: 0,
    masterAddr: '127.0.0.1',
    masterPort: 29500,
    graceS: 10,
    command: [],
  };
  const ints: Record<string, keyof LaunchOptions> = {
    '--nproc': 'nproc',
    '--nproc-per-node': 'nproc',
    '--nnodes': 'nnodes',
    '--node-rank': 'nodeRank',
    '--master-port': 'masterPort',
    '--grace-s': 'graceS',
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--help' || a === '-h') return null;
    if (!a.startsWith('--')) break;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`launch: ${flag} needs a value`);
    if (flag === '--master-addr') o.masterAddr = value;
    else if (ints[flag]) {
      const v = Number(value);
      if (!Number.isInteger(v) || v < 0) throw new UsageError(`launch: ${flag} must be an integer ≥ 0, got '${value}'`);
      (o as unknown as Record<string, number>)[ints[flag]!] = v;
    } else throw new UsageError(`launch: unknown option ${flag} (see mmoco launch --help)`);
  }
  // `mmoco launch --nproc 2 mmoco ablate ...` reads as the command line it wraps
  o.command = argv[i] === 'mmoco' ? argv.slice(i + 1) : argv.slice(i);
  if (!o.command.length) throw new UsageError(`launch: no command given\n\n${HELP}`);
  if (o.nproc < 1 || o.nnodes < 1) throw new UsageError('launch: --nproc and --nnodes must be ≥ 1');
  if (o.nodeRank >= o.nnodes) throw new UsageError(`launch: --node-rank ${o.nodeRank} must be < --nnodes ${o.nnodes}`);
  if (o.masterPort < 1 || o.masterPort > 65535) throw new UsageError('launch: --master-port must be in 1..65535');
  return o;
}

export async function launchCommand(argv: readonly string[]): Promise<number> {
  const o = parseLaunch(argv);
  if (!o) {
    console.log(HELP);
    return 0;
  }
  const world = o.nproc * o.nnodes;
  const main = fileURLToPath(new URL('../main.js', import.meta.url));
  const threads = process.env.OMP_NUM_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / o.nproc)));
  const children: { rank: number; proc: ChildProcess; done: boolean }[] = [];
  let failure: string | null = null;
  let stopping = false;

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const c of children) if (!c.done) c.proc.kill(signal);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    stopping = true;
    stopAll(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const exits = [];
  for (let local = 0; local < o.nproc; local++) {
    const rank = o.nodeRank * o.nproc + local;
    const proc = spawn(process.execPath, [main, ...o.command], {
      stdio: 'inherit',
      env: {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(world),
        LOCAL_WORLD_SIZE: String(o.nproc),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(o.masterPort),
        OMP_NUM_THREADS: threads,
        // libuv's pool decodes and resizes images; its default of 4 threads would cap that at 4 cores
        UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? String(Math.max(4, Number(threads))),
      },
    });
    const child = { rank, proc, done: false };
    children.push(child);
    exits.push(
      new Promise<void>((res) => {
        proc.on('exit', (code, signal) => {
          child.done = true;
          if ((code !== 0 || signal) && !failure && !stopping) {
            failure = `rank ${rank} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}`;
            // the others would block in their next collective: stop them now, kill after the grace
            stopAll('SIGTERM');
            setTimeout(() => stopAll('SIGKILL'), o.graceS * 1000).unref();
          }
          res();
        });
      }),
    );
  }
  await Promise.all(exits);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  if (failure) {
    console.error(`mmoco launch: ${failure}; the other ranks were stopped`);
    return 1;
  }
  return stopping ? 130 : 0;
}
