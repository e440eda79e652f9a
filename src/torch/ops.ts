// Free functions in torch's namespace that take several tensors (torch.cat, torch.where, ...).
import { N } from './native.js';
import { _wrap, type Tensor, type TensorOrScalar } from './tensor.js';

const { wrap, isScalar } = _wrap;

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(
    N.cat(
      tensors.map((t) => t.id),
      dim,
    ),
  );
}
export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  return wrap(
    N.stack(
      tensors.map((t) => t.id),
      dim,
    ),
  );
}
/** Elements of x where cond holds, else of y; x and y may be numbers (promoted as Python numbers are). */
export function where(cond: Tensor, x: TensorOrScalar, y: TensorOrScalar): Tensor {
  if (isScalar(x)) return isScalar(y) ? wrap(N.whereSS(cond.id, x, y)) : wrap(N.whereST(cond.id, x, y.id));
  return isScalar(y) ? wrap(N.whereTS(cond.id, x.id, y)) : wrap(N.where(cond.id, x.id, y.id));
}
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return wrap(
    N.einsum(
      equation,
      operands.map((t) => t.id),
    ),
  );
}
/** beta * input + alpha * (m1 @ m2) */
export function addmm(input: Tensor, m1: Tensor, m2: Tensor, o: { beta?: number; alpha?: number } = {}): Tensor {
  return wrap(N.addmm(input.id, m1.id, m2.id, o.beta ?? 1, o.alpha ?? 1));
}
export const matmul = (a: Tensor, b: Tensor): Tensor => a.matmul(b);
export const mm = (a: Tensor, b: Tensor): Tensor => a.mm(b);
export const bmm = (a: Tensor, b: Tensor): Tensor => a.bmm(b);
export const maximum = (a: Tensor, b: Tensor): Tensor => a.maximum(b);
export const minimum = (a: Tensor, b: Tensor): Tensor => a.minimum(b);
export function allclose(a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8, equalNan = false): boolean {
  return N.allclose(a.id, b.id, rtol, atol, equalNan) as boolean;
}
/** Same shape and the same elements. */
export function equal(a: Tensor, b: Tensor): boolean {
  return N.equal(a.id, b.id) as boolean;
}
