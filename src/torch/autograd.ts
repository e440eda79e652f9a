// Autograd entry points beyond Tensor.backward: grad-mode scopes, torch.autograd.backward /
// grad, and a finite-difference gradient check.
import { N } from './native.js';
import { _wrap, type Tensor } from './tensor.js';
import { tidy } from './scope.js';
import { isFloatingPoint } from './dtype.js';

const { wrapList, ids } = _wrap;

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const prev = N.setGradEnabled(enabled) as boolean;
  try {
    return fn();
  } finally {
    N.setGradEnabled(prev);
  }
}

/** Runs fn without recording operations for autograd (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}
/** Runs fn with autograd recording on, even inside noGrad (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
export function isGradEnabled(): boolean {
  return N.isGradEnabled() as boolean;
}
export function setGradEnabled(enabled: boolean): void {
  N.setGradEnabled(enabled);
}

export interface GradOptions {
  retainGraph?: boolean;
  createGraph?: boolean;
}

/** torch.autograd.backward: accumulates into leaves' .grad; null grads mean ones (scalar outputs). */
export function backward(
  outputs: readonly Tensor[],
  gradOutputs: readonly (Tensor | null)[] = [],
  o: GradOptions = {},
): void {
  N.backward(
    outputs.map((t) => t.id),
    ids(gradOutputs),
    o.retainGraph ?? null,
    o.createGraph ?? false,
  );
}

/** torch.autograd.grad: gradients of outputs w.r.t. inputs, returned rather than accumulated. */
export function grad(
  outputs: readonly Tensor[],
  inputs: readonly Tensor[],
  o: GradOptions & { gradOutputs?: readonly (Tensor | null)[]; allowUnused?: boolean } = {},
): (Tensor | null)[] {
  const out = N.autogradGrad(
    outputs.map((t) => t.id),
    inputs.map((t) => t.id),
    o.gradOutputs ? ids(o.gradOutputs) : null,
    o.retainGraph ?? null,
    o.createGraph ?? false,
    o.allowUnused ?? false,
  ) as (number | null)[];
  return out.map((id) => (id === null ? null : wrapList([id])[0]!));
}

export interface GradcheckResult {
  ok: boolean;
  /** largest |analytic - numeric| over all inputs and elements (NaN if either is NaN) */
  maxAbsError: number;
  /** per input: the analytic and numeric gradients of fn (empty for inputs that are not floating point) */
  analytic: Float64Array[];
  numeric: Float64Array[];
}

const isFloat = (t: Tensor): boolean => isFloatingPoint(t.dtype);

/**
 * Compares autograd's gradient of a scalar function with central finite differences, like
 * torch.autograd.gradcheck. Use float64 inputs; fn must return a scalar tensor. Inputs that
 * are not floating point (class indices, masks) are passed through unchanged and not checked.
 * The inputs' elements are perturbed one at a time (a test helper: O(numel) evaluations).
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: readonly Tensor[],
  o: { eps?: number; atol?: number; rtol?: number } = {},
): GradcheckResult {
  const eps = o.eps ?? 1e-6;
  const atol = o.atol ?? 1e-5;
  const rtol = o.rtol ?? 1e-3;
  const analytic = tidy(() => {
    const leaves = inputs.map((t) => (isFloat(t) ? t.detach().requiresGrad_(true) : t));
    const y = fn(...leaves);
    if (y.numel() !== 1) throw new TypeError(`gradcheck: fn must return a scalar, got shape [${y.shape.join(', ')}]`);
    const wrt = leaves.filter(isFloat);
    // An output that does not depend on the inputs through autograd (a detached graph) has a
    // zero analytic gradient: report the mismatch rather than fail in grad().
    const gs = y.requiresGrad ? grad([y], wrt, { allowUnused: true }) : wrt.map(() => null);
    let j = 0;
    return inputs.map((t) => {
      if (!isFloat(t)) return new Float64Array(0);
      const g = gs[j++];
      return g ? new Float64Array(g.double().toTypedArray() as Float64Array) : new Float64Array(t.numel());
    });
  });
  const numeric = inputs.map((input, k) =>
    !isFloat(input)
      ? new Float64Array(0)
      : noGrad(() =>
          tidy(() => {
            // Perturb a contiguous copy in the input's own dtype (a clone keeps a transposed
            // input's strides, so make it contiguous for the flat view).
            const xs = inputs.map((t) => t.detach().clone().contiguous());
            const flat = xs[k]!.view(-1);
            const n = flat.numel();
            const out = new Float64Array(n);
            const evalAt = (): number => Number(fn(...xs).item());
            for (let i = 0; i < n; i++) {
              const e = flat.narrow(0, i, 1);
              const orig = Number(e.item());
              e.fill_(orig + eps);
              const hi = Number(e.item()); // the value stored (rounded to the dtype)
              const plus = evalAt();
              e.fill_(orig - eps);
              const lo = Number(e.item());
              const minus = evalAt();
              e.fill_(orig);
              out[i] = (plus - minus) / (hi - lo);
            }
            return out;
          }),
        ),
  );
  let maxAbsError = 0;
  let ok = true;
  analytic.forEach((a, k) => {
    const n = numeric[k]!;
    for (let i = 0; i < a.length; i++) {
      const err = Math.abs(a[i]! - n[i]!);
      maxAbsError = Number.isNaN(err) ? NaN : Math.max(maxAbsError, err);
      // written so that a NaN on either side fails the check
      if (!(err <= atol + rtol * Math.abs(n[i]!))) ok = false;
    }
  });
  return { ok, maxAbsError, analytic, numeric };
}
