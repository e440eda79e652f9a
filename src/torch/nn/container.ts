// Containers: Sequential and ModuleList, whose children are named by position ("0", "1", ...)
// as PyTorch names them, so "blocks.3.mlp.fc1.weight" means the same in both.
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

/** A module with a one-tensor-in, one-tensor-out forward (what Sequential chains). */
export interface TensorModule extends Module {
  forward(x: Tensor): Tensor;
}

function position(i: number, n: number, what: string): number {
  const k = i < 0 ? i + n : i;
  if (!Number.isInteger(k) || k < 0 || k >= n)
    throw new RangeError(`${what}: index ${i} is out of range (length ${n})`);
  return k;
}

/** Runs its modules in order, each on the previous one's output, as torch.nn.Sequential. */
export class Sequential extends Module {
  constructor(...modules: TensorModule[]) {
    super();
    modules.forEach((m, i) => this.registerModule(String(i), m));
  }

  /** A Sequential whose children have the given names (PyTorch's `Sequential(OrderedDict(...))`). */
  static fromEntries(entries: Iterable<readonly [string, TensorModule]>): Sequential {
    const s = new Sequential();
    for (const [name, m] of entries) s.registerModule(name, m);
    return s;
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this._modules.values()) y = (m as TensorModule).forward(y);
    return y;
  }

  get length(): number {
    return this._modules.size;
  }
  /** The module at a position (negative counts from the end). */
  get(i: number): TensorModule {
    return [...this._modules.values()][position(i, this.length, 'Sequential')] as TensorModule;
  }
  append(m: TensorModule): this {
    this.registerModule(String(this.length), m);
    return this;
  }
  [Symbol.iterator](): Iterator<TensorModule> {
    return ([...this._modules.values()] as TensorModule[])[Symbol.iterator]();
  }
}

/** A list of sub-modules registered as "0", "1", ..., as torch.nn.ModuleList (no forward of its own). */
export class ModuleList<M extends Module = Module> extends Module {
  constructor(modules: Iterable<M> = []) {
    super();
    this.extend(modules);
  }

  get length(): number {
    return this._modules.size;
  }
  /** The module at a position (negative counts from the end). */
  get(i: number): M {
    return this._modules.get(String(position(i, this.length, 'ModuleList')))! as M;
  }
  /** Replaces the module at a position. */
  set(i: number, m: M): this {
    this.registerModule(String(position(i, this.length, 'ModuleList')), m);
    return this;
  }
  append(m: M): this {
    this.registerModule(String(this.length), m);
    return this;
  }
  extend(modules: Iterable<M>): this {
    for (const m of modules) this.append(m);
    return this;
  }
  /** Inserts before position `index` (clamped to the list, as Python's list.insert), renumbering the rest. */
  insert(index: number, m: M): this {
    const items = [...this];
    const n = items.length;
    const k = Math.min(Math.max(index < 0 ? index + n : index, 0), n);
    items.splice(k, 0, m);
    this._modules.clear();
    items.forEach((item, i) => this.registerModule(String(i), item));
    return this;
  }
  [Symbol.iterator](): Iterator<M> {
    return ([...this._modules.values()] as M[])[Symbol.iterator]();
  }
  map<T>(fn: (m: M, i: number) => T): T[] {
    return [...this].map(fn);
  }
}
