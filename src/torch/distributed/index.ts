// torch.distributed over libtorch's c10d: a process group (TCPStore rendezvous, Gloo for CPU
// tensors, NCCL for CUDA tensors when the libtorch has it), its collectives, and what
// data-parallel training builds on them — parameters broadcast from rank 0, gradients averaged
// in buckets after backward (DDP's all-reduce), all-gather for the contrastive keys, SyncBN.
import { N } from '../native.js';
import { _wrap, type Tensor } from '../tensor.js';
import { zeros } from '../creation.js';
import { cat } from '../ops.js';
import { noGrad } from '../autograd.js';
import { tidy } from '../scope.js';
import type { Module } from '../nn/module.js';
import { BatchNorm } from '../nn/norm.js';

const { wrap } = _wrap;

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'mean' | 'max' | 'min' | 'product';

export interface InitOptions {
  backend?: Backend;
  rank: number;
  worldSize: number;
  /** the rendezvous host (rank 0 listens there); default 127.0.0.1 */
  masterAddr?: string;
  /** default 29500 */
  masterPort?: number;
  /** per collective and for the rendezvous; default 5 minutes */
  timeoutMs?: number;
}

/** The backends this build of the addon has ('gloo' with libgloo-dev headers; 'nccl' with CUDA). */
export function availableBackends(): Backend[] {
  return N.distBackends() as Backend[];
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  readonly timeoutMs: number;
  private gid: number | null;

  private constructor(id: number, o: Required<InitOptions>) {
    this.gid = id;
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.backend = o.backend;
    this.timeoutMs = o.timeoutMs;
  }

  /** Joins the group: blocks until all `worldSize` ranks have joined (or the timeout passes). */
  static init(o: InitOptions): ProcessGroup {
    const full: Required<InitOptions> = {
      backend: o.backend ?? 'gloo',
      rank: o.rank,
      worldSize: o.worldSize,
      masterAddr: o.masterAddr ?? '127.0.0.1',
      masterPort: o.masterPort ?? 29500,
      timeoutMs: o.timeoutMs ?? 300_000,
    };
    for (const [k, v] of [
      ['rank', full.rank],
      ['worldSize', full.worldSize],
      ['masterPort', full.masterPort],
      ['timeoutMs', full.timeoutMs],
    ] as const) {
      if (!Number.isInteger(v) || v < 0)
        throw new RangeError(`ProcessGroup.init: ${k} must be an integer ≥ 0, got ${v}`);
    }
    const id = N.distInit(
      full.backend,
      full.rank,
      full.worldSize,
      full.masterAddr,
      full.masterPort,
      full.timeoutMs,
      null,
    ) as number;
    return new ProcessGroup(id, full);
  }

  /**
   * The group torchrun-style launchers describe in the environment: RANK, WORLD_SIZE,
   * MASTER_ADDR, MASTER_PORT (`mmoco launch` sets them); null when WORLD_SIZE is absent or 1.
   */
  static fromEnv(o: { backend?: Backend; timeoutMs?: number } = {}): ProcessGroup | null {
    const env = process.env;
    const world = Number(env.WORLD_SIZE ?? 1);
    if (!(world > 1)) return null;
    return ProcessGroup.init({
      backend: o.backend,
      rank: Number(env.RANK ?? 0),
      worldSize: world,
      masterAddr: env.MASTER_ADDR ?? '127.0.0.1',
      masterPort: Number(env.MASTER_PORT ?? 29500),
      timeoutMs: o.timeoutMs ?? (env.MMOCO_DIST_TIMEOUT_MS ? Number(env.MMOCO_DIST_TIMEOUT_MS) : undefined),
    });
  }

  /** The native group id (for ops that take a group). */
  get id(): number {
    if (this.gid === null) throw new Error('ProcessGroup: destroyed');
    return this.gid;
  }

  /** In place: each tensor becomes the reduction of its values on all ranks ('mean' = sum / worldSize). */
  allReduce(tensors: Tensor | readonly Tensor[], op: ReduceOp = 'sum'): void {
    const ts = Array.isArray(tensors) ? (tensors as Tensor[]) : [tensors as Tensor];
    if (!ts.length) return;
    N.distAllReduce(
      this.id,
      ts.map((t) => t.id),
      op === 'mean' ? 'sum' : op,
    );
    if (op === 'mean') noGrad(() => ts.forEach((t) => t.div_(this.worldSize)));
  }

  /** Every rank's tensor concatenated along dim 0, in rank order (no gradient: a new tensor). */
  allGather(t: Tensor): Tensor {
    return wrap(N.distAllGather(this.id, t.id));
  }

  /** In place: each tensor takes the values it has on `root`. */
  broadcast(tensors: Tensor | readonly Tensor[], root = 0): void {
    const ts = Array.isArray(tensors) ? (tensors as Tensor[]) : [tensors as Tensor];
    if (ts.length)
      N.distBroadcast(
        this.id,
        ts.map((t) => t.id),
        root,
      );
  }

  barrier(): void {
    N.distBarrier(this.id);
  }

  destroy(): void {
    if (this.gid === null) return;
    N.distDestroy(this.gid);
    this.gid = null;
  }
}

/** DDP's start: every parameter and buffer takes rank 0's values. */
export function broadcastModule(module: Module, group: ProcessGroup, root = 0): void {
  noGrad(() => group.broadcast([...module.parameters(), ...module.buffers()], root));
}

/**
 * DDP's gradient synchronisation: the gradients of `params` averaged over the ranks, in buckets
 * of about `bucketBytes` (flattened into one tensor per bucket and dtype, one collective each).
 * Parameters without a gradient contribute zeros (as DDP with find_unused_parameters).
 */
export function allReduceGradients(
  params: readonly Tensor[],
  group: ProcessGroup,
  o: { bucketBytes?: number } = {},
): void {
  const limit = o.bucketBytes ?? 25 * 1024 * 1024;
  const byType = new Map<string, Tensor[]>();
  for (const p of params) {
    if (!p.requiresGrad) continue;
    const key = `${p.dtype}@${p.device}`;
    const list = byType.get(key);
    if (list) list.push(p);
    else byType.set(key, [p]);
  }
  for (const ps of byType.values()) {
    let bucket: Tensor[] = [];
    let bytes = 0;
    const flush = (): void => {
      if (!bucket.length) return;
      const members = bucket;
      tidy(() =>
        noGrad(() => {
          const grads = members.map((p) => p.grad ?? zeros(p.shape, { dtype: p.dtype, device: p.device }));
          const flat = cat(
            grads.map((g) => g.reshape(-1)),
            0,
          );
          group.allReduce(flat, 'mean');
          let off = 0;
          members.forEach((p, i) => {
            const n = grads[i]!.numel();
            const avg = flat.narrow(0, off, n).view(p.shape);
            if (p.grad) p.grad.copy_(avg);
            else p.grad = avg.clone();
            off += n;
          });
        }),
      );
      bucket = [];
      bytes = 0;
    };
    for (const p of ps) {
      bucket.push(p);
      bytes += p.numel() * 4; // bucket sizing only: master weights are float32
      if (bytes >= limit) flush();
    }
    flush();
  }
}

/**
 * torch.nn.SyncBatchNorm.convert_sync_batchnorm: every BatchNorm in `module` normalises with
 * the global batch's statistics over `group` while training (names and state dict unchanged).
 */
export function convertSyncBatchNorm<M extends Module>(module: M, group: ProcessGroup): M {
  module.apply((m) => {
    if (m instanceof BatchNorm) m.syncGroup = group;
  });
  return module;
}
