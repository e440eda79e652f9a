// Random number generators: seeding and exact state save/restore (for resumable runs).
import { N } from './native.js';
import { _wrap, type Tensor } from './tensor.js';
import type { Device } from './dtype.js';

/** Seeds the CPU generator and every CUDA device's (torch.manual_seed). */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new RangeError(`manualSeed: seed must be a non-negative integer, got ${seed}`);
  N.manualSeed(seed);
}
export function initialSeed(device: Device | string = 'cpu'): number {
  return N.initialSeed(device) as number;
}
/** The generator's full state as a uint8 tensor (torch.get_rng_state / cuda.get_rng_state). */
export function getRngState(device: Device | string = 'cpu'): Tensor {
  return _wrap.wrap(N.getRngState(device));
}
export function setRngState(state: Tensor, device: Device | string = 'cpu'): void {
  N.setRngState(state.id, device);
}
