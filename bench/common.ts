// Helpers shared by the benchmarks: timing, statistics, and finding the reference PyTorch.
// This module must not import the library: bench/threads.ts spawns children whose thread
// environment has to be set before libtorch loads.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Milliseconds, high resolution. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rounds to `digits` significant digits (for printing). */
export function sig(x: number, digits = 4): number {
  return Number.isFinite(x) ? Number(x.toPrecision(digits)) : x;
}

/** The folder of the bench sources next to a compiled file (dist/bench -> bench). */
export function benchSourceDir(): string {
  // dist/bench/common.js -> <repo>/bench
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench');
}

let pythonCache: string | undefined;
/**
 * A Python interpreter that can `import torch`: $MMOCO_PYTHON, then Debian's /usr/bin/python3
 * (python3-torch), then the first python3 on PATH.
 */
export function findTorchPython(): string {
  if (pythonCache) return pythonCache;
  const candidates = [process.env.MMOCO_PYTHON, '/usr/bin/python3', 'python3'].filter(
    (p): p is string => typeof p === 'string' && p.length > 0,
  );
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return (pythonCache = py);
  }
  throw new Error(
    `bench: no Python with PyTorch found (tried ${candidates.join(', ')}). The comparison needs the reference ` +
      'PyTorch: install Debian python3-torch (scripts/setup.sh --reference), or set MMOCO_PYTHON to an interpreter ' +
      'that can `import torch`.',
  );
}

/** Runs a command and returns the JSON objects it printed one per line on stdout. */
export function runJsonLines(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Record<string, unknown>[] {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 1 << 24 });
  if (r.error) throw new Error(`bench: ${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    throw new Error(`bench: ${cmd} ${args[0] ?? ''} exited with ${r.status ?? r.signal}:\n${r.stderr}`);
  }
  if (r.stderr.trim()) process.stderr.write(r.stderr);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * CPU time used by the whole machine so far, in ms (Linux /proc/stat: user, nice, system, irq,
 * softirq and steal; steal is time the hypervisor gave to other guests). NaN elsewhere.
 */
export function machineBusyMs(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return (user + nice + system + irq + softirq + steal) * 10; // USER_HZ = 100
  } catch {
    return NaN;
  }
}

/**
 * Measures how much CPU other processes used while `fn` ran, in % of one core: the machine's
 * busy time minus this process's own CPU time, over the wall time.
 */
export function foreignCpuPct(wallMs: number, machineBusyDeltaMs: number, ownCpuDeltaMs: number): number {
  return Math.max(0, ((machineBusyDeltaMs - ownCpuDeltaMs) / wallMs) * 100);
}

/** Waits (up to `maxMs`) until other processes use less than `pct` % of one core over a `windowMs` window. */
export function waitForQuiet(pct: number, maxMs: number, windowMs = 1000): number {
  const t0 = now();
  let foreign = NaN;
  do {
    const b0 = machineBusyMs();
    const c0 = ownCpuMs();
    const w0 = now();
    sleepMs(windowMs);
    foreign = foreignCpuPct(now() - w0, machineBusyMs() - b0, ownCpuMs() - c0);
    if (!(foreign >= pct)) return foreign;
  } while (now() - t0 < maxMs);
  return foreign;
}

export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
}

export function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
