// Mixed precision: libtorch's own autocast (the dispatcher's AutocastCPU / AutocastCUDA keys),
// as torch.autocast. Inside `autocast(...)` matmul, linear, conv, bmm and the rest of libtorch's
// lower-precision list run in bfloat16 (or float16), while its float32 list (softmax, norms,
// losses, reductions) stays in float32; parameters stay float32 (the master weights) and are
// cast per op. Call backward outside the scope: autograd runs each backward op in the dtype its
// forward used.
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { N } from './native.js';
import { dtypeCode, dtypeFromCode, type DType } from './dtype.js';

export type AutocastDevice = 'cpu' | 'cuda';

export interface AutocastOptions {
  /** default 'cpu' */
  device?: AutocastDevice;
  /** default 'bfloat16' */
  dtype?: 'bfloat16' | 'float16';
  /** default true; false runs `fn` with autocast off (a nested fp32 region) */
  enabled?: boolean;
}

/** Whether autocast is on for `device`, and its dtype. */
export function autocastState(device: AutocastDevice = 'cpu'): { enabled: boolean; dtype: DType } {
  const [enabled, code] = N.autocastState(device) as [boolean, number];
  return { enabled, dtype: dtypeFromCode(code) };
}

/**
 * Runs `fn` with autocast set as `o` says and restores the previous state afterwards (nesting
 * allowed). `fn` must be synchronous: the state is per thread, and an `await` inside would leak
 * it into whatever runs meanwhile.
 */
export function autocast<T>(o: AutocastOptions, fn: () => T): T {
  const device = o.device ?? 'cpu';
  const dtype = o.dtype ?? 'bfloat16';
  const prev = autocastState(device);
  N.autocastEnter(device, o.enabled ?? true, dtypeCode(dtype));
  let result: T;
  try {
    result = fn();
  } finally {
    N.autocastExit(device, prev.enabled, dtypeCode(prev.dtype));
  }
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    throw new TypeError('autocast: fn returned a Promise; autocast scopes must be synchronous');
  }
  return result;
}

export type Precision = 'fp32' | 'bf16';

export interface Bf16Evidence {
  /** the CPU's feature flags (/proc/cpuinfo) */
  cpuFlags?: readonly string[];
  /** the CUDA device's compute capability, e.g. [9, 0] */
  cudaCapability?: readonly [number, number] | null;
}

/**
 * Whether bfloat16 matrix products are fast on `device`: AVX512-BF16 or AMX on a CPU (oneDNN
 * then uses them; without them bf16 is emulated and slower than fp32), compute capability ≥ 8
 * (Ampere and later) on CUDA.
 */
export function fastBf16(device: AutocastDevice, e: Bf16Evidence): boolean {
  if (device === 'cuda') return (e.cudaCapability?.[0] ?? 0) >= 8;
  const flags = new Set(e.cpuFlags ?? []);
  return flags.has('avx512_bf16') || flags.has('amx_bf16');
}

/** This machine's evidence: CPU flags from /proc/cpuinfo, the GPU's capability from nvidia-smi. */
export function machineBf16Evidence(device: AutocastDevice): Bf16Evidence {
  if (device === 'cpu') {
    try {
      const info = readFileSync('/proc/cpuinfo', 'utf8');
      const line = /^flags\s*:(.*)$/m.exec(info);
      return { cpuFlags: line ? line[1]!.trim().split(/\s+/) : [] };
    } catch {
      return { cpuFlags: [] };
    }
  }
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=compute_cap', '--format=csv,noheader'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
    });
    const m = /(\d+)\.(\d+)/.exec(out);
    return { cudaCapability: m ? [Number(m[1]), Number(m[2])] : null };
  } catch {
    return { cudaCapability: null };
  }
}

/**
 * The precision a run uses: 'fp32' or 'bf16' as asked, or for 'auto' bf16 where the hardware
 * does it fast, else fp32; `reason` says why (for the log).
 */
export function choosePrecision(
  asked: Precision | 'auto',
  device: AutocastDevice,
  evidence: Bf16Evidence = machineBf16Evidence(device),
): { precision: Precision; reason: string } {
  if (asked !== 'auto') return { precision: asked, reason: `asked for ${asked}` };
  const fast = fastBf16(device, evidence);
  const what =
    device === 'cuda'
      ? `compute capability ${evidence.cudaCapability ? evidence.cudaCapability.join('.') : 'unknown'}`
      : fast
        ? 'the CPU has AVX512-BF16/AMX'
        : 'the CPU has no AVX512-BF16/AMX';
  return { precision: fast ? 'bf16' : 'fp32', reason: `auto: ${what}` };
}
