// AdamW (torch.optim.AdamW): Adam with decoupled weight decay. One fused native call per group.
import { N } from '../native.js';
import { zerosLike } from '../creation.js';
import type { Tensor } from '../tensor.js';
import { Optimizer, type BaseHyper, type ParamGroup, type Params, type ParamState } from './optimizer.js';

export interface AdamWHyper extends BaseHyper {
  betas: [number, number];
  eps: number;
  amsgrad: boolean;
  maximize: boolean;
}

export type AdamWOptions = Partial<AdamWHyper>;

/**
 * torch.optim.AdamW. For each parameter with a grad, at step t (its own count, from 1):
 * p *= 1 - lr·wd; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
 * p -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)   (v replaced by its running maximum with amsgrad).
 * Defaults as PyTorch: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 0.01.
 * State per parameter: `step`, `exp_avg`, `exp_avg_sq` (and `max_exp_avg_sq` with amsgrad).
 */
export class AdamW extends Optimizer<AdamWHyper> {
  constructor(params: Params<AdamWHyper>, opts: AdamWOptions = {}) {
    super(params, {
      lr: opts.lr ?? 1e-3,
      betas: opts.betas ?? [0.9, 0.999],
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0.01,
      amsgrad: opts.amsgrad ?? false,
      maximize: opts.maximize ?? false,
      lrScale: opts.lrScale ?? 1,
    });
  }

  protected override checkHyper(h: AdamWHyper, where: string): void {
    super.checkHyper(h, where);
    const b = h.betas;
    if (!Array.isArray(b) || b.length !== 2) throw new RangeError(`${where}: betas must be [beta1, beta2]`);
    b.forEach((x, i) => {
      if (!(x >= 0 && x < 1)) throw new RangeError(`${where}: invalid beta parameter at index ${i}: ${x}`);
    });
    if (!(h.eps >= 0)) throw new RangeError(`${where}: invalid epsilon value ${h.eps}`);
  }

  step(): void {
    for (const g of this.paramGroups) this.stepGroup(g);
  }

  private stepGroup(g: ParamGroup<AdamWHyper>): void {
    // (a group switched to amsgrad after its first steps starts its maximum from zero)
    this.ensureState(
      g,
      (s) => !s || (g.amsgrad && !s.max_exp_avg_sq),
      (p, s: ParamState) => {
        if (!s.exp_avg) Object.assign(s, { step: 0, exp_avg: zerosLike(p), exp_avg_sq: zerosLike(p) });
        if (g.amsgrad) s.max_exp_avg_sq = zerosLike(p);
      },
    );
    const states = g.params.map((p) => this.state.get(p));
    const updated = N.adamwStep(
      g.params.map((p) => p.id),
      this.stateIds(g, 'exp_avg'),
      this.stateIds(g, 'exp_avg_sq'),
      g.amsgrad ? this.stateIds(g, 'max_exp_avg_sq') : null,
      states.map((s) => (s ? (s.step as number) : 0)),
      g.lr,
      g.betas[0],
      g.betas[1],
      g.eps,
      g.weightDecay,
      g.amsgrad,
      g.maximize,
    ) as boolean[];
    updated.forEach((u, i) => {
      if (u) (states[i]!.step as number)++;
    });
  }
}

/**
 * AdamW's update (torch.optim.AdamW(capturable=True)) with the step count and the learning rate
 * in scalar tensors on the parameters' device: `step` is incremented, `lr` read there, nothing
 * comes back to the host — what a CUDA graph needs to replay a step. Same arithmetic as
 * `AdamW.step()` (libtorch's fused kernel on CUDA where it takes a tensor lr).
 */
export function adamwTensorLrStep(
  params: readonly Tensor[],
  grads: readonly Tensor[],
  expAvg: readonly Tensor[],
  expAvgSq: readonly Tensor[],
  step: Tensor,
  lr: Tensor,
  h: { betas: readonly [number, number]; eps: number; weightDecay: number },
): void {
  N.adamwTensorLr(
    params.map((t) => t.id),
    grads.map((t) => t.id),
    expAvg.map((t) => t.id),
    expAvgSq.map((t) => t.id),
    step.id,
    lr.id,
    h.betas[0],
    h.betas[1],
    h.eps,
    h.weightDecay,
  );
}
