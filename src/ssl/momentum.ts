// The momentum (EMA) target encoder of MoCo v3 / BYOL (§3.1): a copy of the online network whose
// parameters follow θ_t ← m·θ_t + (1 − m)·θ_o after every step. As MoCo v3's builder.py
// (`_update_momentum_encoder` zips `parameters()` only), buffers are not averaged: the target's
// BatchNorm running statistics are its own, updated by its own forward passes in training mode.
import * as torch from '../torch/index.js';
import type { nn, Tensor } from '../torch/index.js';

/**
 * In place, without autograd: target[i] ← m·target[i] + (1 − m)·online[i] for every pair, as
 * `target.lerp_(online, 1 − m)` (one native call per tensor). m = 1 leaves the target unchanged,
 * m = 0 copies the online tensors.
 */
export function emaUpdate_(target: readonly Tensor[], online: readonly Tensor[], m: number | Tensor): void {
  if (typeof m === 'number' && !(m >= 0 && m <= 1))
    throw new RangeError(`emaUpdate_: momentum must be in [0, 1], got ${m}`);
  if (target.length !== online.length) {
    throw new RangeError(`emaUpdate_: ${target.length} target tensors but ${online.length} online ones`);
  }
  torch.noGrad(() =>
    torch.tidy(() => {
      // a tensor m (a scalar on the parameters' device) is read on the device, not the host:
      // a captured CUDA graph then replays with the momentum of the moment
      const w = typeof m === 'number' ? 1 - m : m.neg().add(1);
      for (let i = 0; i < target.length; i++) target[i]!.lerp_(online[i]!, w);
    }),
  );
}

/**
 * An EMA copy of a module. `target` is made with `Module.copy()` (same values, own storage) and
 * frozen (requiresGrad false on every parameter, as MoCo v3 sets `param_m.requires_grad = False`);
 * its training flag is the online module's (MoCo v3 runs the momentum encoder in training mode,
 * so its BatchNorm layers use batch statistics). Parameters are paired by name.
 */
export class MomentumEncoder<M extends nn.Module> {
  readonly online: M;
  readonly target: M;
  private readonly onlineParams: Tensor[];
  private readonly targetParams: Tensor[];

  /** `target`: an existing module with the same parameter names and shapes (default: `online.copy()`). */
  constructor(online: M, target?: M) {
    this.online = online;
    this.target = target ?? online.copy();
    this.target.requiresGrad_(false);
    const on = online.namedParameters();
    const tg = new Map(this.target.namedParameters());
    if (on.length !== tg.size) {
      throw new Error(`MomentumEncoder: online has ${on.length} parameters, target ${tg.size}`);
    }
    this.onlineParams = [];
    this.targetParams = [];
    for (const [name, p] of on) {
      const t = tg.get(name);
      if (!t) throw new Error(`MomentumEncoder: target has no parameter '${name}'`);
      if (t.shape.join() !== p.shape.join()) {
        throw new Error(
          `MomentumEncoder: '${name}' is [${p.shape.join(', ')}] online, [${t.shape.join(', ')}] in the target`,
        );
      }
      this.onlineParams.push(p);
      this.targetParams.push(t);
    }
  }

  /** MoCo v3's `_update_momentum_encoder(m)`: θ_t ← m·θ_t + (1 − m)·θ_o on every parameter; buffers untouched. */
  update(m: number | Tensor): void {
    emaUpdate_(this.targetParams, this.onlineParams, m);
  }

  /**
   * Copies the online module's buffers (e.g. BatchNorm running statistics) into the target's.
   * Not part of MoCo v3's update; for callers that evaluate the target with the online statistics.
   */
  copyBuffers(): void {
    const tb = new Map(this.target.namedBuffers());
    torch.noGrad(() => {
      for (const [name, b] of this.online.namedBuffers()) tb.get(name)?.copy_(b);
    });
  }
}
