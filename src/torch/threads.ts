// Threads, BLAS and devices of the running process.
import { availableParallelism } from 'node:os';
import { N } from './native.js';
import { CUDAGraph, graphsAvailable } from './cuda-graph.js';

export interface BlasInfo {
  /** file that provides sgemm_ (symlinks resolved) */
  library: string;
  /** bundled: linked into libtorch (pip wheels); reference: Debian's netlib libblas */
  vendor: 'openblas' | 'mkl' | 'bundled' | 'reference' | 'other' | 'none';
  /** file holding OpenBLAS itself (libblas.so.3 may be a wrapper around it) */
  engine?: string;
  config?: string;
  parallel?: 'serial' | 'pthread' | 'openmp' | 'unknown';
  threads?: number;
  core?: string;
}

export function blasInfo(): BlasInfo {
  return N.blasInfo() as BlasInfo;
}

/**
 * Sets the threads of libtorch's intra-op pool, and OpenBLAS's own pool when OpenBLAS is
 * the pthread build (which does not follow libtorch's setting; the openmp build runs on
 * libtorch's pool). Keeping the pthread pool at 1 instead loses the GEMM speed-up: ViT-Tiny
 * block step at 2 threads 388 vs 545 images/s (bench/THREADS.md).
 */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  N.setNumThreads(n);
  if (blasInfo().parallel === 'pthread') N.blasSetNumThreads(n);
}
export function getNumThreads(): number {
  return N.getNumThreads() as number;
}
export function parallelInfo(): string {
  return N.parallelInfo() as string;
}

/** True when the BLAS in use is the slow reference implementation (or none was found). */
export function isReferenceBlas(info: BlasInfo = blasInfo()): boolean {
  return info.vendor === 'reference' || info.vendor === 'none';
}

let warned = false;
/** Warns once on stderr when matmul would run on the reference BLAS (~40x slower). */
export function warnIfSlowBlas(): void {
  if (warned) return;
  warned = true;
  const info = blasInfo();
  if (isReferenceBlas(info)) {
    process.emitWarning(
      `mmoco: libtorch is using the reference BLAS (${info.library || 'none found'}); matmul runs ~40x slower. ` +
        'Install libopenblas0-openmp (Debian/Ubuntu): scripts/setup.sh does.',
      { code: 'MMOCO_SLOW_BLAS' },
    );
  }
}

export const cuda = {
  isAvailable: (): boolean => N.cudaIsAvailable() as boolean,
  deviceCount: (): number => N.cudaDeviceCount() as number,
  synchronize: (device?: number): void => {
    N.cudaSynchronize(device ?? null);
  },
  /** whether CUDA graphs can be captured (see CUDAGraph) */
  graphsAvailable,
  CUDAGraph,
};

export function buildInfo(): { torchVersion: string; withCuda: boolean } {
  return N.buildInfo() as { torchVersion: string; withCuda: boolean };
}

/** Default: one intra-op thread per core unless OMP_NUM_THREADS says otherwise. */
export function applyThreadDefaults(): void {
  const fromEnv = Number(process.env.OMP_NUM_THREADS);
  setNumThreads(Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism());
  warnIfSlowBlas();
}
