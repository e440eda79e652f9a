// LARS as MoCo v3 uses it (moco/optimizer.py): SGD with momentum whose update of each weight
// matrix is scaled by a layer-wise trust ratio. One fused native call per group.
import { N } from '../native.js';
import { zerosLike } from '../creation.js';
import { Optimizer, type BaseHyper, type ParamGroup, type Params } from './optimizer.js';

export interface LARSHyper extends BaseHyper {
  momentum: number;
  trustCoefficient: number;
}

export type LARSOptions = Partial<LARSHyper>;

/**
 * MoCo v3's LARS. For each parameter with a grad: if it has more than one dimension,
 * dp = g + wd·p and dp *= q with q = trustCoefficient·‖p‖/‖dp‖ (q = 1 when either norm is 0);
 * 1-D parameters (biases, norm weights) get neither weight decay nor the trust ratio (dp = g).
 * Then mu = momentum·mu + dp; p -= lr·mu. Defaults as MoCo v3: lr 0, weightDecay 0,
 * momentum 0.9, trustCoefficient 0.001. State per parameter: `mu`.
 */
export class LARS extends Optimizer<LARSHyper> {
  constructor(params: Params<LARSHyper>, opts: LARSOptions = {}) {
    super(params, {
      lr: opts.lr ?? 0,
      weightDecay: opts.weightDecay ?? 0,
      momentum: opts.momentum ?? 0.9,
      trustCoefficient: opts.trustCoefficient ?? 0.001,
      lrScale: opts.lrScale ?? 1,
    });
  }

  protected override checkHyper(h: LARSHyper, where: string): void {
    super.checkHyper(h, where);
    if (!(h.momentum >= 0)) throw new RangeError(`${where}: invalid momentum value ${h.momentum}`);
    if (!(h.trustCoefficient >= 0)) throw new RangeError(`${where}: invalid trustCoefficient ${h.trustCoefficient}`);
  }

  step(): void {
    for (const g of this.paramGroups) this.stepGroup(g);
  }

  private stepGroup(g: ParamGroup<LARSHyper>): void {
    this.ensureState(
      g,
      (s) => !s?.mu,
      (p, s) => (s.mu = zerosLike(p)),
    );
    N.larsStep(
      g.params.map((p) => p.id),
      this.stateIds(g, 'mu'),
      g.lr,
      g.weightDecay,
      g.momentum,
      g.trustCoefficient,
    );
  }
}
