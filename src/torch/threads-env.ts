// Environment that OpenMP (libgomp) reads once, when libtorch is loaded. It must be set
// before the addon is required, so this module has no imports from the rest of the library.
//
// OMP_WAIT_POLICY depends on which OpenBLAS build libtorch will get (bench/THREADS.md):
// - openmp build (libopenblas0-openmp, what scripts/setup.sh should select): its GEMMs run on
//   torch's own OpenMP pool, so libgomp's default (idle workers spin briefly, then sleep) is
//   best and nothing is set. PASSIVE would make every parallel region wake sleeping workers.
// - pthread build: OpenBLAS has its own threads, and torch's spinning OpenMP workers take the
//   cores they need, so the second core makes a training step slower. PASSIVE (idle OpenMP
//   workers sleep at once) avoids that.
// ViT-Tiny block training step, 2-core x86-64 VM, images/s at 2 threads (speed-up over 1):
//   openmp: default 619 (1.66x), PASSIVE 505 (1.40x); pthread: default 331 (0.86x), PASSIVE 545 (1.41x).
// A value the user set is kept.

import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

const TRIPLETS: Partial<Record<string, string>> = {
  x64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
};

/** Where the dynamic loader finds `soname` (LD_LIBRARY_PATH, then the system folders), symlinks followed. */
function resolveLibrary(soname: string): string | undefined {
  const triplet = TRIPLETS[process.arch];
  const system = triplet
    ? [`/usr/local/lib/${triplet}`, `/lib/${triplet}`, `/usr/lib/${triplet}`, '/usr/local/lib']
    : ['/usr/local/lib', '/lib64', '/usr/lib64', '/lib', '/usr/lib'];
  for (const dir of [...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...system]) {
    try {
      const lib = join(dir, soname);
      if (existsSync(lib)) return realpathSync(lib);
    } catch {
      // unreadable folder: try the next
    }
  }
  return undefined;
}

/**
 * The OpenBLAS build ('pthread', 'openmp', 'serial') that libtorch will load, as far as can be
 * told before loading it. Debian's libtorch links libopenblas.so.0 (the engine) besides
 * libblas.so.3 (a thin wrapper), and its alternatives point each into <libdir>/openblas-<build>/;
 * the engine decides the threading. 'other' for another BLAS, undefined when none is found.
 */
export function openBlasBuildOnDisk(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const lib = resolveLibrary('libopenblas.so.0') ?? resolveLibrary('libblas.so.3');
  if (lib === undefined) return undefined;
  return /\/openblas-(\w+)\/[^/]+$/.exec(lib)?.[1] ?? 'other';
}

export function applyThreadEnvDefaults(): void {
  if (process.env.OMP_WAIT_POLICY === undefined && openBlasBuildOnDisk() === 'pthread') {
    process.env.OMP_WAIT_POLICY = 'PASSIVE';
  }
}
