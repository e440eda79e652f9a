// Module: a tree of named parameters, buffers and sub-modules, as torch.nn.Module and
// tch-rs's VarStore. Names are hierarchical ("blocks.0.attn.qkv.weight"), so a state dict
// maps one to one onto a PyTorch/timm checkpoint.
import { noGrad } from '../autograd.js';
import { keep, tidy } from '../scope.js';
import { Tensor } from '../tensor.js';
import type { DType, Device } from '../dtype.js';
import { isFloatingPoint } from '../dtype.js';

export type StateDict = Map<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export abstract class Module {
  /** Training mode (dropout active, batch statistics); `eval()` turns it off. */
  training = true;
  /** @internal */ readonly _parameters = new Map<string, Tensor | null>();
  /** @internal */ readonly _buffers = new Map<string, Tensor | null>();
  /** @internal */ readonly _nonPersistent = new Set<string>();
  /** @internal */ readonly _modules = new Map<string, Module>();

  /** Registers a trainable tensor (requiresGrad set; exempt from tidy scopes). */
  protected registerParameter(name: string, t: Tensor): Tensor;
  protected registerParameter(name: string, t: Tensor | null): Tensor | null;
  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    checkName(name, this, this._parameters);
    if (t) keep(t).requiresGrad_(true);
    this._parameters.set(name, t);
    return t;
  }

  /** Registers state that is not trained (running statistics); `persistent: false` keeps it out of the state dict. */
  protected registerBuffer(name: string, t: Tensor, persistent?: boolean): Tensor;
  protected registerBuffer(name: string, t: Tensor | null, persistent?: boolean): Tensor | null;
  protected registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor | null {
    checkName(name, this, this._buffers);
    if (t) keep(t);
    this._buffers.set(name, t);
    if (persistent) this._nonPersistent.delete(name);
    else this._nonPersistent.add(name);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    checkName(name, this, this._modules);
    this._modules.set(name, m);
    return m;
  }

  // ---- traversal ----
  // As in PyTorch, the named*/modules/parameters/buffers listings name a module or tensor
  // registered at several places (tied weights) once, under its first name, so that an
  // optimiser steps it once; stateDict and loadStateDict use every name.

  /** This module and its descendants, depth first, each once. */
  namedModules(prefix = ''): [string, Module][] {
    return firstOfEach(walk(this, prefix));
  }
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }
  namedChildren(): [string, Module][] {
    return firstOfEach([...this._modules]);
  }
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }
  /** Calls fn on every descendant (children first) and then on this module, as PyTorch's `apply`. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, p] of m._parameters) {
        if (p && !seen.has(p)) {
          seen.add(p);
          out.push([join(path, name), p]);
        }
      }
    }
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [name, b] of m._buffers) {
        if (b && !seen.has(b)) {
          seen.add(b);
          out.push([join(path, name), b]);
        }
      }
    }
    return out;
  }
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }
  /** Number of elements over all parameters. */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel(), 0);
  }

  // ---- modes ----
  /** Sets training mode here and, through their own `train`, in every child (so overrides apply). */
  train(mode = true): this {
    this.training = mode;
    for (const c of this.children()) c.train(mode);
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Freezes (false) or unfreezes (true) every parameter. */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }
  /** Drops every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  // ---- state ----
  /**
   * Parameters and persistent buffers by hierarchical name, in PyTorch's order (a module's own
   * parameters, then its buffers, then its children). The tensors share storage with the module.
   */
  stateDict(prefix = ''): StateDict {
    const out: StateDict = new Map();
    for (const [path, m] of walk(this, prefix)) {
      for (const [name, p] of m._parameters) if (p) out.set(join(path, name), p.detach());
      for (const [name, b] of m._buffers) {
        if (b && !m._nonPersistent.has(name)) out.set(join(path, name), b.detach());
      }
    }
    return out;
  }

  /**
   * Copies tensors from `sd` into the module's parameters and buffers. In strict mode (the
   * default) any missing, unexpected or wrongly shaped key fails the whole load, with every bad
   * key named in one error, before anything is copied.
   */
  loadStateDict(sd: Map<string, Tensor> | Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const src = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = new Map<string, Tensor>();
    for (const [path, m] of walk(this, '')) {
      for (const [name, p] of m._parameters) if (p) own.set(join(path, name), p);
      for (const [name, b] of m._buffers) if (b && !m._nonPersistent.has(name)) own.set(join(path, name), b);
    }
    const missingKeys = [...own.keys()].filter((k) => !src.has(k));
    const unexpectedKeys = [...src.keys()].filter((k) => !own.has(k));
    const badShapes: string[] = [];
    for (const [k, t] of own) {
      const s = src.get(k);
      if (s && !sameShape(s.shape, t.shape)) {
        badShapes.push(`${k} (checkpoint [${s.shape.join(', ')}], model [${t.shape.join(', ')}])`);
      }
    }
    const problems: string[] = [];
    if (badShapes.length) problems.push(`${badShapes.length} with a different shape: ${badShapes.join(', ')}`);
    if (strict && missingKeys.length) problems.push(`${missingKeys.length} missing: ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length)
      problems.push(`${unexpectedKeys.length} unexpected: ${unexpectedKeys.join(', ')}`);
    if (problems.length) throw new Error(`loadStateDict: ${problems.join('; ')}`);
    noGrad(() => {
      for (const [k, t] of own) {
        const s = src.get(k);
        if (s) t.copy_(s);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /**
   * A deep copy with its own parameter and buffer storage (same values, same requiresGrad, no
   * gradients), for a momentum/EMA target. Non-tensor fields are copied structurally; functions
   * are shared.
   */
  copy(): this {
    return tidy(() => deepCopy(this, new Map()) as this);
  }

  /** Moves parameters and buffers to a device and/or floating dtype in place (they stay the same leaves). */
  to(target: Device | DType | { device?: Device | string; dtype?: DType }): this {
    const o =
      typeof target === 'string'
        ? /^(cpu|cuda|cuda:\d+)$/.test(target)
          ? { device: target }
          : { dtype: target as DType }
        : target;
    tidy(() =>
      noGrad(() => {
        for (const t of [...this.parameters(), ...this.buffers()]) {
          const dtype = o.dtype && isFloatingPoint(t.dtype) ? o.dtype : undefined;
          t.setData(t.to({ device: o.device, dtype }));
        }
      }),
    );
    return this;
  }

  /** Releases every parameter and buffer. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
  }
}

const join = (prefix: string, name: string): string => (prefix ? `${prefix}.${name}` : name);

/** The pairs whose module has not appeared earlier in the list. */
function firstOfEach(pairs: [string, Module][]): [string, Module][] {
  const seen = new Set<Module>();
  return pairs.filter(([, m]) => {
    if (seen.has(m)) return false;
    seen.add(m);
    return true;
  });
}

/** Every (path, module) pair, depth first, a module registered twice listed at both paths. */
function walk(m: Module, prefix: string, out: [string, Module][] = []): [string, Module][] {
  out.push([prefix, m]);
  for (const [name, c] of m._modules) walk(c, join(prefix, name), out);
  return out;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A valid name, not already taken by another kind of member (re-registering the same kind replaces it). */
function checkName(name: string, m: Module, kind: Map<string, unknown>): void {
  if (!name || name.includes('.')) throw new TypeError(`${m.constructor.name}: bad name '${name}' (non-empty, no '.')`);
  for (const other of [m._parameters, m._buffers, m._modules] as Map<string, unknown>[]) {
    if (other !== kind && other.has(name)) {
      throw new TypeError(`${m.constructor.name}: '${name}' is already registered as a different kind of member`);
    }
  }
}

function deepCopy(value: unknown, memo: Map<unknown, unknown>): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (memo.has(value)) return memo.get(value);
  if (value instanceof Tensor) {
    const c = keep(value.detach().clone());
    if (value.requiresGrad) c.requiresGrad_(true);
    memo.set(value, c);
    return c;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    memo.set(value, out);
    for (const v of value) out.push(deepCopy(v, memo));
    return out;
  }
  if (value instanceof Map) {
    const out = new Map();
    memo.set(value, out);
    for (const [k, v] of value) out.set(k, deepCopy(v, memo));
    return out;
  }
  if (value instanceof Set) {
    const out = new Set();
    memo.set(value, out);
    for (const v of value) out.add(deepCopy(v, memo));
    return out;
  }
  if (ArrayBuffer.isView(value)) {
    const out = (value as unknown as { slice(): unknown }).slice();
    memo.set(value, out);
    return out;
  }
  const out = Object.create(Object.getPrototypeOf(value) as object) as Record<string, unknown>;
  memo.set(value, out);
  for (const key of Reflect.ownKeys(value)) {
    const desc = Object.getOwnPropertyDescriptor(value, key)!;
    if ('value' in desc) desc.value = deepCopy(desc.value, memo);
    Object.defineProperty(out, key, desc);
  }
  return out;
}
