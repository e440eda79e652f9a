// Deterministic memory: every Tensor is owned either by the innermost open `tidy` scope,
// which releases it when the scope closes, or (outside any scope, or once it escapes one)
// by a FinalizationRegistry entry, the safety net that releases it when the handle is
// garbage collected. Tensors created inside a scope skip the registry, and tensors outside
// one are registered only when the current job ends (a microtask), so one disposed at once
// never pays for a registration: both keep the per-op cost low. Nothing is lost by waiting:
// finalisers run as tasks, never in the middle of synchronous code.
import { N } from './native.js';
import type { Tensor } from './tensor.js';

const registry = new FinalizationRegistry<number>((id) => {
  N.release(id);
});

const scopes: Tensor[][] = [];

/** Called by the Tensor constructor. */
export function track(t: Tensor): void {
  const scope = scopes[scopes.length - 1];
  if (scope !== undefined) scope.push(t);
  else adopt(t);
}

let pending: Tensor[] = [];
let flushQueued = false;

function flush(): void {
  const ts = pending;
  pending = [];
  for (const t of ts) {
    if (t._registered || t._id < 0) continue;
    registry.register(t, t._id, t);
    t._registered = true;
  }
}

/** Hands a tensor to the finaliser (it lives until disposed or collected). */
function adopt(t: Tensor): void {
  if (t._registered || t._id < 0) return;
  pending.push(t);
  // A long synchronous loop flushes as it goes, so disposed tensors are not held here.
  if (pending.length >= 256) flush();
  else if (!flushQueued) {
    flushQueued = true;
    queueMicrotask(() => {
      flushQueued = false;
      flush();
    });
  }
}

/** Releases the tensor's native memory now. */
export function release(t: Tensor): void {
  if (t._id < 0) return;
  N.release(t._id);
  t._id = -1;
  if (t._registered) {
    registry.unregister(t);
    t._registered = false;
  }
}

/** Collects the tensors in a value returned from a scope (arrays and plain objects, nested). */
function collect(value: unknown, out: Tensor[], TensorClass: new (...a: never[]) => Tensor, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if (value instanceof TensorClass) {
    out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, TensorClass, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, TensorClass, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, TensorClass, depth + 1);
  }
}

let TensorCtor: (new (...a: never[]) => Tensor) | undefined;
export function setTensorClass(c: new (...a: never[]) => Tensor): void {
  TensorCtor = c;
}

/**
 * Runs `fn` and releases every tensor created while it runs, except those in its result
 * (returned directly, or inside arrays / plain objects / Maps) and those passed to `keep`.
 * Synchronous functions only: an async function would leave the scope before its awaits.
 */
export function tidy<T>(fn: () => T): T {
  if (fn.constructor.name === 'AsyncFunction') {
    throw new TypeError('tidy: fn must be synchronous (its tensors would be released before its awaits finish)');
  }
  const scope: Tensor[] = [];
  scopes.push(scope);
  let result: T | undefined;
  let ok = false;
  try {
    result = fn();
    ok = true;
  } finally {
    scopes.pop();
    const survivors: Tensor[] = [];
    if (ok && TensorCtor) collect(result, survivors, TensorCtor);
    for (const t of survivors) t._escaping = true;
    // Only what this scope created moves on; a returned tensor from an enclosing scope (an
    // Identity layer returns its input) stays where it is.
    const moving: Tensor[] = [];
    for (const t of scope) {
      if (t._escaping) moving.push(t);
      else if (t._kept) adopt(t);
      else release(t);
    }
    for (const t of survivors) t._escaping = false;
    for (const t of moving) {
      if (t._id < 0) continue;
      if (t._kept) adopt(t);
      else track(t);
    }
  }
  return result as T;
}

/** Exempts a tensor from the scopes it was created in: it lives until disposed or collected. */
export function keep<T extends Tensor>(t: T): T {
  t._kept = true;
  return t;
}

/** Releases the given tensors (arrays and plain objects are walked). */
export function dispose(value: unknown): void {
  if (!TensorCtor) return;
  const ts: Tensor[] = [];
  collect(value, ts, TensorCtor);
  for (const t of ts) release(t);
}

/** Native tensors alive now (handles not yet disposed or collected). */
export function liveTensors(): number {
  return N.liveCount() as number;
}

export function memory(): { liveTensors: number; openScopes: number } {
  return { liveTensors: liveTensors(), openScopes: scopes.length };
}
