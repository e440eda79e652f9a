// SGD (torch.optim.SGD): momentum, dampening, Nesterov and L2 weight decay. One fused native
// call per group.
import { N } from '../native.js';
import { emptyLike } from '../creation.js';
import { Optimizer, type BaseHyper, type ParamGroup, type Params } from './optimizer.js';

export interface SGDHyper extends BaseHyper {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  maximize: boolean;
}

export type SGDOptions = Partial<SGDHyper> & { lr: number };

/**
 * torch.optim.SGD. For each parameter with a grad: d = g + wd·p; with momentum,
 * buf = d at the first step, else buf = momentum·buf + (1-dampening)·d, and d = buf (or
 * d + momentum·buf with Nesterov); p -= lr·d. Defaults as PyTorch: momentum 0, dampening 0,
 * weightDecay 0, nesterov false. State per parameter (with momentum only): `momentum_buffer`.
 */
export class SGD extends Optimizer<SGDHyper> {
  constructor(params: Params<SGDHyper>, opts: SGDOptions) {
    super(params, {
      lr: opts.lr,
      momentum: opts.momentum ?? 0,
      dampening: opts.dampening ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      nesterov: opts.nesterov ?? false,
      maximize: opts.maximize ?? false,
      lrScale: opts.lrScale ?? 1,
    });
  }

  protected override checkHyper(h: SGDHyper, where: string): void {
    super.checkHyper(h, where);
    if (!(h.momentum >= 0)) throw new RangeError(`${where}: invalid momentum value ${h.momentum}`);
    if (typeof h.dampening !== 'number') throw new RangeError(`${where}: invalid dampening ${String(h.dampening)}`);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      throw new RangeError(`${where}: Nesterov momentum requires a momentum and zero dampening`);
    }
  }

  step(): void {
    for (const g of this.paramGroups) this.stepGroup(g);
  }

  private stepGroup(g: ParamGroup<SGDHyper>): void {
    const momentum = g.momentum !== 0;
    // A buffer made here is filled by the step itself (PyTorch's buf = clone(d_p)).
    const fresh = momentum
      ? this.ensureState(
          g,
          (s) => !s?.momentum_buffer,
          (p, s) => (s.momentum_buffer = emptyLike(p)),
        )
      : null;
    N.sgdStep(
      g.params.map((p) => p.id),
      momentum ? this.stateIds(g, 'momentum_buffer') : null,
      fresh ? g.params.map((p) => (fresh.has(p) ? 1 : 0)) : null,
      g.lr,
      g.momentum,
      g.dampening,
      g.weightDecay,
      g.nesterov,
      g.maximize,
    );
  }
}
