// Views, joins and indexing.
#include "common.h"

namespace mm {

OP(reshape, "T") { return Out(a, T(a, 0).reshape(IL(a, 1))); }
OP(view, "T") { return Out(a, T(a, 0).view(IL(a, 1))); }
OP(permute, "T") { return Out(a, T(a, 0).permute(IL(a, 1))); }
OP(transpose, "T") { return Out(a, T(a, 0).transpose(I(a, 1), I(a, 2))); }
OP(flatten, "T") { return Out(a, T(a, 0).flatten(I(a, 1), I(a, 2))); }
OP(unsqueeze, "T") { return Out(a, T(a, 0).unsqueeze(I(a, 1))); }
OP(squeeze, "T") {
  if (IsNullish(a, 1)) return Out(a, T(a, 0).squeeze());
  return Out(a, T(a, 0).squeeze(I(a, 1)));
}
OP(expand, "T") { return Out(a, T(a, 0).expand(IL(a, 1))); }
OP(narrow, "T") { return Out(a, T(a, 0).narrow(I(a, 1), I(a, 2), I(a, 3))); }
// slice(t, dim, start?, end?, step): Python's t[..., start:end:step, ...]
OP(slice, "T") { return Out(a, T(a, 0).slice(I(a, 1), OptI(a, 2), OptI(a, 3), I(a, 4))); }
OP(select, "T") { return Out(a, T(a, 0).select(I(a, 1), I(a, 2))); }
OP(chunk, "T") { return OutList(a, T(a, 0).chunk(I(a, 1), I(a, 2))); }
OP(split, "T") {
  if (a[1].IsNumber()) return OutList(a, T(a, 0).split(I(a, 1), I(a, 2)));
  return OutList(a, T(a, 0).split_with_sizes(IL(a, 1), I(a, 2)));
}
OP(unbind, "T") { return OutList(a, T(a, 0).unbind(I(a, 1))); }
OP(cat, "L") { return Out(a, at::cat(TL(a, 0), I(a, 1))); }
OP(stack, "L") { return Out(a, at::stack(TL(a, 0), I(a, 1))); }
OP(repeat, "T") { return Out(a, T(a, 0).repeat(IL(a, 1))); }
OP(flip, "T") { return Out(a, T(a, 0).flip(IL(a, 1))); }
OP(roll, "T") { return Out(a, T(a, 0).roll(IL(a, 1), IL(a, 2))); }
OP(tril, "T") { return Out(a, T(a, 0).tril(I(a, 1))); }
OP(triu, "T") { return Out(a, T(a, 0).triu(I(a, 1))); }

OP(indexSelect, "T.T") { return Out(a, T(a, 0).index_select(I(a, 1), T(a, 2))); }
OP(gather, "T.T") { return Out(a, T(a, 0).gather(I(a, 1), T(a, 2))); }
// scatter(t, dim, index, src, reduce?) / scatterS(t, dim, index, value, reduce?) -> new tensor
OP(scatter, "T.TT") {
  if (IsNullish(a, 4)) return Out(a, T(a, 0).scatter(I(a, 1), T(a, 2), T(a, 3)));
  return Out(a, T(a, 0).scatter(I(a, 1), T(a, 2), T(a, 3), Str(a, 4)));
}
OP(scatterS, "T.T") {
  if (IsNullish(a, 4)) return Out(a, T(a, 0).scatter(I(a, 1), T(a, 2), S(a, 3)));
  return Out(a, T(a, 0).scatter(I(a, 1), T(a, 2), S(a, 3), Str(a, 4)));
}
OP(scatterAdd, "T.TT") { return Out(a, T(a, 0).scatter_add(I(a, 1), T(a, 2), T(a, 3))); }
OP(maskedFill, "TTT") { return Out(a, T(a, 0).masked_fill(T(a, 1), T(a, 2))); }
OP(maskedFillS, "TT") { return Out(a, T(a, 0).masked_fill(T(a, 1), S(a, 2))); }
OP(maskedSelect, "TT") { return Out(a, T(a, 0).masked_select(T(a, 1))); }
OP(nonzero, "T") { return Out(a, T(a, 0).nonzero()); }
OP(where, "TTT") { return Out(a, at::where(T(a, 0), T(a, 1), T(a, 2))); }
// where with number operands goes through libtorch's Scalar overloads, which promote a number
// as Python does (where(c, int64 tensor, 2.5) is float32, where(c, 1, 0) int64); a 0-dim tensor
// of the other operand's dtype would not.
OP(whereTS, "TT") { return Out(a, at::where(T(a, 0), T(a, 1), S(a, 2))); }
OP(whereST, "T.T") { return Out(a, at::where(T(a, 0), S(a, 1), T(a, 2))); }
OP(whereSS, "T") { return Out(a, at::where(T(a, 0), S(a, 1), S(a, 2))); }
// scalarTensor(value, dtype?, device?): a 0-dim tensor, for scalars in tensor positions.
OP(scalarTensor, "") { return Out(a, at::scalar_tensor(S(a, 0), Opts(a, 1, 2))); }

// Advanced indexing: index(t, [idx0 | null, idx1 | null, ...]) is Python's t[idx0, idx1];
// null stands for a full slice ':'. Index tensors are int64 or bool masks.
static c10::List<c10::optional<at::Tensor>> Indices(const Napi::CallbackInfo& a, size_t i) {
  c10::List<c10::optional<at::Tensor>> out;
  for (auto& t : OptTL(a, i)) out.push_back(std::move(t));
  return out;
}
OP(index, "TL") { return Out(a, T(a, 0).index(Indices(a, 1))); }
OP(indexPut_, "TLT") {
  T(a, 0).index_put_(Indices(a, 1), T(a, 2), B(a, 3));
  return a[0];
}


}  // namespace mm
