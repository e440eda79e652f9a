// Helpers shared by the benchmarks: timing, statistics, and finding the reference PyTorch.
// This module must not import the library: bench/threads.ts spawns children whose thread
// environment has to be set before libtorch loads.
import { spawnSync } from 'node:child_process';
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
