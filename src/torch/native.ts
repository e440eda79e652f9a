// Loads the native addon (native/src/*.cc over libtorch). Thread settings that OpenMP and
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
export const N: NativeBinding = createRequire(import.meta.url)(findAddon()) as NativeBinding;
