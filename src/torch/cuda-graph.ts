// CUDA graphs (torch.cuda.CUDAGraph): `capture(fn)` records the GPU work that `fn` queues —
// every kernel, copy and allocation of a whole training step, say — and `replay()` runs it all
// again with one launch, on the same memory. What makes a step replayable is the caller's
// business, as in PyTorch: inputs copied into the tensors the capture read, no host
// synchronisation inside (no item(), no CPU tensors moved to the GPU), and per-step numbers
// (learning rate, momentum) held in GPU tensors rather than passed as host scalars. The capture
// refuses, by name, the host reads and host copies the library can see (host-sync.ts).
import { forbidHostSync } from './host-sync.js';
import { N } from './native.js';

export class CUDAGraph {
  private id: number | null;

  constructor() {
    this.id = N.cudaGraphCreate() as number;
  }

  private handle(): number {
    if (this.id === null) throw new Error('CUDAGraph: the graph was disposed');
    return this.id;
  }

  /**
   * Records what `fn` queues on the GPU (fn runs once, on a side stream; its results hold the
   * graph's output memory). If fn throws, the partial capture is dropped and the error rethrown.
   */
  capture<T>(fn: () => T): T {
    const id = this.handle();
    N.cudaGraphCaptureBegin(id);
    let ok = false;
    try {
      const out = forbidHostSync('a CUDA graph capture', fn);
      if (out instanceof Promise) throw new TypeError('CUDAGraph.capture: fn must be synchronous');
      ok = true;
      return out;
    } finally {
      N.cudaGraphCaptureEnd(id, !ok);
    }
  }

  /** Runs the captured work again (asynchronously, on the current stream). */
  replay(): void {
    N.cudaGraphReplay(this.handle());
  }

  /** Frees the graph and the memory pool its capture allocated from. */
  dispose(): void {
    if (this.id !== null) N.cudaGraphDestroy(this.id);
    this.id = null;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Whether this build can capture CUDA graphs (a CUDA libtorch built with the CUDA headers). */
export function graphsAvailable(): boolean {
  return N.cudaGraphsAvailable() as boolean;
}
