// The optimiser base: parameter groups, per-parameter state, zeroGrad and the state dict, as
// torch.optim.Optimizer. Each concrete optimiser's step is one native call per group (a fused
// update over the group's tensors, native/src/optim.cc); no tensor math runs in JavaScript.
import { N } from '../native.js';
import { keep } from '../scope.js';
import { Tensor } from '../tensor.js';
import { isFloatingPoint } from '../dtype.js';

/** Hyper-parameters every group has. */
export interface BaseHyper {
  /** The learning rate the step uses. `setLr` sets it to `lr * lrScale`. */
  lr: number;
  weightDecay: number;
  /**
   * Per-group factor on the scheduled learning rate (MAE's layer-wise decay, `lr_scale`):
   * `setLr(lr)` and the schedules set `group.lr = lr * group.lrScale`. Default 1. The step
   * itself reads only `group.lr`, as in PyTorch and MAE.
   */
  lrScale: number;
}

/** A hyper-parameter value as it appears in a group and in the state dict. */
export type HyperValue = number | boolean | string | null | readonly number[];

/** One parameter group: its parameters, its hyper-parameters, and any extra keys the caller gave. */
export type ParamGroup<H extends BaseHyper> = H & { params: Tensor[] } & { [extra: string]: unknown };

/** A group as given to the constructor or `addParamGroup`: hyper-parameters left out take the defaults. */
export type ParamGroupSpec<H extends BaseHyper> = Partial<H> & { params: Iterable<Tensor> } & {
  [extra: string]: unknown;
};

/** What the constructors take: a list of tensors (one group) or a list of groups. */
export type Params<H extends BaseHyper> = Iterable<Tensor> | readonly ParamGroupSpec<H>[];

/** One parameter's state: tensors (`exp_avg`, `momentum_buffer`, `mu`, ...) and numbers (`step`). */
export type ParamState = Record<string, Tensor | number>;

/**
 * An optimiser's state dict, in PyTorch's layout (`optimizer.state_dict()`), for exact resume:
 *
 * - `state`: per parameter, keyed by its index (parameters are numbered 0, 1, ... over the
 *   groups in order, as PyTorch numbers them; a parameter that never had a grad has no entry).
 *   Keys are PyTorch's: AdamW `{ step: number, exp_avg: Tensor, exp_avg_sq: Tensor,
 *   max_exp_avg_sq?: Tensor }`, SGD `{ momentum_buffer: Tensor }` (only with momentum), LARS
 *   `{ mu: Tensor }`. `step` is a plain number (PyTorch 1.13 keeps a 0-dim float tensor; one
 *   is accepted on load).
 * - `paramGroups`: per group, its hyper-parameters under the TypeScript names (`lr`,
 *   `weightDecay`, `lrScale`, `betas`, `eps`, `momentum`, ...; extra keys given with the group
 *   too) and `params`: the indices of its parameters.
 *
 * The tensors are the optimiser's own (not copies, as in PyTorch): serialise them, or clone
 * them for a snapshot, before the next step. Everything but the tensors is plain JSON (numbers
 * may be non-finite). Object keys of `state` may be numbers or their strings (after JSON).
 */
export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  paramGroups: ({ params: number[] } & Record<string, HyperValue>)[];
}

function isGroupSpec(v: unknown): v is ParamGroupSpec<BaseHyper> {
  return typeof v === 'object' && v !== null && !(v instanceof Tensor) && 'params' in v;
}

export abstract class Optimizer<H extends BaseHyper> {
  readonly defaults: Readonly<H>;
  readonly paramGroups: ParamGroup<H>[] = [];
  /** Per-parameter state, created at a parameter's first step with a grad. */
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: Params<H>, defaults: H) {
    this.defaults = Object.freeze({ ...defaults });
    this.checkHyper(defaults, 'defaults');
    const list = [...(params as Iterable<Tensor | ParamGroupSpec<H>>)];
    if (list.length === 0) throw new Error('optimizer got an empty parameter list');
    if (list.every(isGroupSpec)) {
      for (const g of list as ParamGroupSpec<H>[]) this.addParamGroup(g);
    } else if (list.every((p) => p instanceof Tensor)) {
      this.addParamGroup({ params: list as Tensor[] } as unknown as ParamGroupSpec<H>);
    } else {
      throw new TypeError('optimizer params must be Tensors or parameter groups ({ params, ... }), not a mixture');
    }
  }

  /** Adds a group (torch.optim.Optimizer.add_param_group); unset hyper-parameters take the defaults. */
  addParamGroup(spec: ParamGroupSpec<H>): void {
    const params = [...spec.params];
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    const own = new Set<Tensor>();
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new TypeError('optimizer params must be Tensors');
      if (!p.isLeaf) throw new Error("optimizer: can't optimize a non-leaf Tensor");
      if (!isFloatingPoint(p.dtype)) throw new TypeError(`optimizer: can't optimize a ${p.dtype} Tensor`);
      if (seen.has(p) || own.has(p))
        throw new Error('optimizer: some parameters appear in more than one parameter group');
      own.add(p);
    }
    const merged: Record<string, unknown> = { ...this.defaults };
    for (const [k, v] of Object.entries(spec)) if (v !== undefined) merged[k] = Array.isArray(v) ? [...v] : v;
    const group = { ...merged, params } as unknown as ParamGroup<H>;
    this.checkHyper(group, `paramGroups[${this.paramGroups.length}]`);
    this.paramGroups.push(group);
  }

  /** Validates a group's hyper-parameters (throws RangeError). Subclasses add their own checks. */
  protected checkHyper(h: H, where: string): void {
    const nonNeg = (name: keyof BaseHyper): void => {
      const v = h[name];
      if (typeof v !== 'number' || !(v >= 0)) throw new RangeError(`${where}: invalid ${name} ${String(v)}`);
    };
    nonNeg('lr');
    nonNeg('weightDecay');
    nonNeg('lrScale');
  }

  /** Sets every group's learning rate to `lr * group.lrScale` (MAE's adjust_learning_rate). */
  setLr(lr: number): void {
    for (const g of this.paramGroups) g.lr = lr * g.lrScale;
  }

  /** All parameters, group by group (the order that numbers them in the state dict). */
  params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /**
   * Clears the gradients (optimizer.zero_grad): drops them (`setToNone`, the default, as
   * PyTorch 2.x) or zeroes them in place.
   */
  zeroGrad(setToNone = true): void {
    N.zeroGrads(
      this.params().map((p) => p.id),
      setToNone,
    );
  }

  /** One optimisation step over every group, from the parameters' current `.grad`. */
  abstract step(): void;

  /**
   * Creates or completes the state of the group's parameters for which `needs(state)` holds
   * and that have a grad (PyTorch creates state at a parameter's first step with a grad):
   * `init(p, state)` adds the missing entries. Returns the parameters it initialised. Costs a
   * native call only while some parameter of the group needs state.
   */
  protected ensureState(
    group: ParamGroup<H>,
    needs: (s: ParamState | undefined) => boolean,
    init: (p: Tensor, s: ParamState) => void,
  ): Set<Tensor> {
    const done = new Set<Tensor>();
    const missing = group.params.filter((p) => needs(this.state.get(p)));
    if (missing.length === 0) return done;
    const has = N.hasGrads(missing.map((p) => p.id)) as boolean[];
    missing.forEach((p, i) => {
      if (!has[i]) return;
      const s = this.state.get(p) ?? {};
      init(p, s);
      for (const v of Object.values(s)) if (v instanceof Tensor) keep(v);
      this.state.set(p, s);
      done.add(p);
    });
    return done;
  }

  /** The slot ids of state tensor `key` of the group's parameters (null where there is none). */
  protected stateIds(group: ParamGroup<H>, key: string): (number | null)[] {
    return group.params.map((p) => {
      const v = this.state.get(p)?.[key];
      return v instanceof Tensor ? v.id : null;
    });
  }

  /** The PyTorch-layout state dict (see OptimizerStateDict); tensors are shared, not copied. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const out: Record<string, HyperValue> = {};
      for (const [k, v] of Object.entries(g)) {
        if (k === 'params') continue;
        out[k] = Array.isArray(v) ? [...(v as number[])] : (v as HyperValue);
      }
      const ids = g.params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      });
      return { ...out, params: ids };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = { ...s };
    }
    return { state, paramGroups };
  }

  /**
   * Loads a state dict from `stateDict()` (or its JSON + tensors round trip): the groups'
   * hyper-parameters replace the current ones (the parameters stay), and each parameter's state
   * is copied in, floating-point tensors cast to the parameter's dtype and device, as PyTorch's
   * load_state_dict does. The groups must have the same sizes as this optimiser's.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (!sd || !Array.isArray(sd.paramGroups) || typeof sd.state !== 'object' || sd.state === null) {
      throw new TypeError('loadStateDict: expected { state, paramGroups }');
    }
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `loadStateDict: the state dict has ${sd.paramGroups.length} parameter groups, this optimizer ${this.paramGroups.length}`,
      );
    }
    const byIndex = new Map<number, Tensor>();
    sd.paramGroups.forEach((saved, gi) => {
      const group = this.paramGroups[gi]!;
      if (!Array.isArray(saved.params) || saved.params.length !== group.params.length) {
        throw new Error(
          `loadStateDict: parameter group ${gi} has ${saved.params?.length} parameters in the state dict, ` +
            `${group.params.length} here`,
        );
      }
      saved.params.forEach((idx, k) => byIndex.set(Number(idx), group.params[k]!));
    });
    // Validate everything before changing anything.
    const newState = new Map<Tensor, ParamState>();
    for (const [key, entry] of Object.entries(sd.state)) {
      const p = byIndex.get(Number(key));
      if (!p) throw new Error(`loadStateDict: state for parameter ${key}, which no group has`);
      const s: ParamState = {};
      for (const [name, v] of Object.entries(entry)) {
        if (v instanceof Tensor) {
          if (name === 'step') s[name] = Number(v.item());
          else if (isFloatingPoint(v.dtype)) {
            if (v.numel() !== p.numel() || v.shape.join() !== p.shape.join()) {
              throw new Error(
                `loadStateDict: state '${name}' of parameter ${key} has shape [${v.shape.join(', ')}], ` +
                  `the parameter [${p.shape.join(', ')}]`,
              );
            }
            s[name] = v.to({ dtype: p.dtype, device: p.device, copy: true });
          } else s[name] = v.to({ device: p.device, copy: true });
        } else if (typeof v === 'number') {
          s[name] = v;
        } else {
          throw new TypeError(`loadStateDict: state '${name}' of parameter ${key} is neither a Tensor nor a number`);
        }
      }
      newState.set(p, s);
    }
    const hypers = sd.paramGroups.map((saved, gi) => {
      const group = this.paramGroups[gi]!;
      const hyper: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(saved)) {
        if (k !== 'params') hyper[k] = Array.isArray(v) ? [...(v as number[])] : v;
      }
      this.checkHyper(
        { ...group, ...hyper, params: group.params } as ParamGroup<H>,
        `loadStateDict: paramGroups[${gi}]`,
      );
      return hyper;
    });
    hypers.forEach((hyper, gi) => Object.assign(this.paramGroups[gi]!, hyper));
    this.state.clear();
    for (const [p, s] of newState) {
      for (const v of Object.values(s)) if (v instanceof Tensor) keep(v);
      this.state.set(p, s);
    }
  }
}
