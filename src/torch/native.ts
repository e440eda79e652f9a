// Loads the native addon (native/src over libtorch). Thread settings that OpenMP and
// OpenBLAS read once, when libtorch is loaded, are applied here first (see threads.ts).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeOp } from './native-ops.js';
import { applyThreadEnvDefaults } from './threads-env.js';

/**
 * The raw binding: functions over tensor slot numbers, arguments and results untyped.
 * The typed surface is `Tensor`; this layer only guarantees the op names exist.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeBinding = { readonly [K in NativeOp]: (...args: any[]) => any };

function findAddon(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'build/Release/mmoco_native.node');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(
    'mmoco: the native addon is not built (build/Release/mmoco_native.node). Run `npm run build:native` ' +
      '(needs libtorch: scripts/setup.sh installs Debian libtorch-dev, or set LIBTORCH=/path/to/libtorch).',
  );
}

applyThreadEnvDefaults();
const addon = createRequire(import.meta.url)(findAddon()) as NativeBinding & Record<string, unknown>;
export const N: NativeBinding = addon;

/**
 * The functions the addon exports under `group` (the image kernels of native/src/image under
 * 'image', for src/data/native): not part of this library's binding. Throws when the built
 * addon has no such group (built from older sources).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function addonGroup(group: string): Readonly<Record<string, (...args: any[]) => any>> {
  const g = addon[group];
  if (typeof g !== 'object' || g === null)
    throw new Error(`mmoco: the native addon has no '${group}' functions; rebuild it (npm run build:native)`);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return g as Record<string, (...args: any[]) => any>;
}
