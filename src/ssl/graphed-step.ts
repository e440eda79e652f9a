// trainStep as one CUDA graph: on a GPU a step of a small model (ViT-Tiny at 32 px) is thousands
// of short kernels, and launching them costs more than running them. GraphedTrainStep records
// the whole step once — the EMA update, the masks (drawn on the GPU), the online and target
// forwards under autocast, the loss, backward and AdamW — and then replays it with one launch per
// step. What changes from step to step lives on the GPU: the two views are copied into the
// tensors the capture read, the momentum and each group's learning rate are scalar tensors
// filled before the replay, and AdamW's step count is a tensor the step itself increments
// (native adamwTensorLr). The optimiser's state is AdamW's own (exp_avg, exp_avg_sq, step), kept
// current, so checkpoints and a later eager trainStep carry on from it.
//
// Without CUDA graphs (the CPU, a libtorch without them, or `graph: false`) every step runs the
// same body eagerly: that is how the CPU tests check it against trainStep. The first `warmup`
// steps always run eagerly (PyTorch's advice before a capture: libraries initialise there).
// The κ monitor reads numbers back, which a capture cannot: with a model that monitors κ
// (n > 1) the graph writes κ's inputs (the chunk rows of the rep layer, projector and
// predictor) into tensors of its own, and a step asked for κ computes it from them after the
// replay. Not supported inside a graph: gradient clipping, distributed training (collectives)
// and AdamW's amsgrad/maximize; the constructor refuses them.
import * as torch from '../torch/index.js';
import { optim, type Tensor } from '../torch/index.js';
import {
  DEFAULT_BASE_MOMENTUM,
  kappaStats,
  type KappaInputs,
  type MaskedContrastive,
  type TrainStepResult,
} from './method.js';

export interface GraphedStepOptions {
  lrSchedule: optim.WarmupCosine;
  itersPerEpoch?: number;
  epochs?: number;
  baseMomentum?: number;
  autocast?: torch.AutocastOptions | null;
  /** eager steps before the capture (default 3) */
  warmup?: number;
  /** capture a CUDA graph (default: when the model is on a GPU and this build has graphs) */
  graph?: boolean;
}

export class GraphedTrainStep {
  readonly device: string;
  readonly graphed: boolean;
  private readonly x1: Tensor;
  private readonly x2: Tensor;
  private readonly momentum: Tensor;
  private readonly stepCount: Tensor;
  private readonly lrs: Tensor[];
  private graph: torch.CUDAGraph | null = null;
  private loss: Tensor | null = null;
  /** the graph's κ inputs (null without κ or before the capture) */
  private kappaInputs: KappaInputs | null = null;
  /** whether the model's κ monitor applies (monitorKappa and n > 1) */
  readonly kappa: boolean;
  private steps = 0;
  /** the step count this object started from (the warm-up counts from there) */
  private readonly firstStep: number;

  constructor(
    readonly model: MaskedContrastive,
    readonly optimizer: optim.AdamW,
    /** the shape of one view batch, [B, C, H, W] */
    viewShape: readonly number[],
    private readonly o: GraphedStepOptions,
  ) {
    if (model.group)
      throw new Error('GraphedTrainStep: distributed training is not supported (collectives inside a graph)');
    for (const g of optimizer.paramGroups) {
      if (g.amsgrad || g.maximize) throw new Error('GraphedTrainStep: AdamW with amsgrad or maximize is not supported');
    }
    const params = optimizer.params();
    if (params.length === 0) throw new Error('GraphedTrainStep: the optimiser has no parameters');
    this.device = params[0]!.device;
    this.kappa = model.monitorKappa && model.numChunks > 1;
    this.graphed = o.graph ?? (this.device.startsWith('cuda') && torch.cuda.graphsAvailable());
    if (this.graphed && !torch.cuda.graphsAvailable())
      throw new Error('GraphedTrainStep: graph: true, but this build has no CUDA graphs');
    if (this.graphed && !this.device.startsWith('cuda'))
      throw new Error(`GraphedTrainStep: graph: true needs the model on a CUDA device (it is on ${this.device})`);
    // AdamW's state, created as its first step would, with one step count for all parameters
    const counts = new Set<number>();
    for (const p of params) {
      let s = optimizer.state.get(p);
      if (!s) optimizer.state.set(p, (s = { step: 0, exp_avg: torch.zerosLike(p), exp_avg_sq: torch.zerosLike(p) }));
      counts.add(s.step as number);
    }
    if (counts.size !== 1) throw new Error(`GraphedTrainStep: the parameters are at different steps (${[...counts]})`);
    this.steps = [...counts][0]!;
    this.firstStep = this.steps;
    const dev = { device: this.device };
    this.x1 = torch.keep(torch.zeros([...viewShape], dev));
    this.x2 = torch.keep(torch.zeros([...viewShape], dev));
    this.momentum = torch.keep(torch.zeros([], dev));
    this.stepCount = torch.keep(torch.full([], this.steps, dev));
    this.lrs = optimizer.paramGroups.map(() => torch.keep(torch.zeros([], dev)));
  }

  /**
   * One training step on views x1, x2 (any device; copied into the step's own tensors). κ is
   * computed when the model monitors it and `o.kappa` is not false (NaN otherwise): pass
   * `kappa: false` on steps whose κ nobody reads, it costs host syncs.
   */
  step(x1: Tensor, x2: Tensor, iter: number, so: { kappa?: boolean } = {}): TrainStepResult {
    const o = this.o;
    const epoch = iter / (o.itersPerEpoch ?? o.lrSchedule.itersPerEpoch);
    const lr = o.lrSchedule.apply(this.optimizer, epoch);
    const momentum = optim.cosineMomentum(
      epoch,
      o.epochs ?? o.lrSchedule.epochs,
      o.baseMomentum ?? DEFAULT_BASE_MOMENTUM[this.model.method],
    );
    this.momentum.fill_(momentum);
    this.optimizer.paramGroups.forEach((g, i) => this.lrs[i]!.fill_(g.lr));
    this.x1.copy_(x1);
    this.x2.copy_(x2);
    const wantKappa = this.kappa && so.kappa !== false;
    let stats = { kappaRep: NaN, kappaProj: NaN, kappaPred: NaN };
    let value: number;
    if (!this.graphed || this.steps < (o.warmup ?? 3) + this.firstStep) {
      value = torch.tidy(() => {
        // what the graph will hold: host reads are refused here too, so the CPU proves it capturable
        const { loss, kappa } = torch.forbidHostSync("GraphedTrainStep's step", () => this.body());
        this.optimizer.zeroGrad();
        if (wantKappa) stats = kappaStats(kappa!);
        return Number(loss.item());
      });
    } else {
      if (!this.graph) this.capture();
      this.graph!.replay();
      value = Number(this.loss!.item());
      if (wantKappa) stats = kappaStats(this.kappaInputs!);
    }
    this.steps++;
    for (const s of this.optimizer.state.values()) s.step = this.steps;
    return { loss: value, lr, momentum, ...stats };
  }

  /** EMA, forward, loss, backward and AdamW on the step's own tensors; returns the loss (and κ's inputs). */
  private body(): { loss: Tensor; kappa: KappaInputs | undefined } {
    const amp = this.o.autocast;
    const fwd = () => this.model.forward(this.x1, this.x2, this.momentum, { kappa: this.kappa ? 'inputs' : 'none' });
    const { loss, kappaInputs } = amp ? torch.autocast(amp, fwd) : fwd();
    loss.backward();
    this.optimizer.paramGroups.forEach((g, i) => {
      const st = g.params.map((p) => this.optimizer.state.get(p)!);
      optim.adamwTensorLrStep(
        g.params,
        g.params.map((p) => {
          if (!p.grad) throw new Error('GraphedTrainStep: a parameter of the optimiser got no gradient');
          return p.grad;
        }),
        st.map((s) => s.exp_avg as Tensor),
        st.map((s) => s.exp_avg_sq as Tensor),
        this.stepCount,
        this.lrs[i]!,
        g,
      );
    });
    return { loss, kappa: kappaInputs };
  }

  private capture(): void {
    // the gradients are made inside the capture (from the graph's memory) and stay as the
    // parameters' .grad between replays; nothing outside may drop them
    this.optimizer.zeroGrad();
    torch.cuda.synchronize();
    const g = new torch.cuda.CUDAGraph();
    const { loss, kappa } = g.capture(() =>
      torch.tidy(() => {
        const r = this.body();
        torch.keep(r.loss);
        if (r.kappa) for (const t of [r.kappa.rep, r.kappa.z, r.kappa.q]) torch.keep(t);
        return r;
      }),
    );
    this.loss = loss;
    this.kappaInputs = kappa ?? null;
    this.graph = g;
  }

  /** Frees the graph (its memory) and the step's tensors; the gradients are dropped. */
  dispose(): void {
    this.graph?.dispose();
    this.graph = null;
    const k = this.kappaInputs;
    torch.dispose([this.x1, this.x2, this.momentum, this.stepCount, ...this.lrs, ...(this.loss ? [this.loss] : [])]);
    if (k) torch.dispose([k.rep, k.z, k.q]);
    this.loss = null;
    this.kappaInputs = null;
    this.optimizer.zeroGrad();
  }
}
