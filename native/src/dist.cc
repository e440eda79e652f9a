// Process groups over libtorch's c10d: a TCPStore rendezvous (rank 0 serves it) and a Gloo
// process group (CPU tensors; NCCL for CUDA tensors when the libtorch has it), with the
// collectives data-parallel training needs — allReduce, allGather, broadcast, barrier — each
// waited for with the group's timeout, so a dead peer becomes an Error instead of a hang.
#if __has_include(<gloo/context.h>)
#define USE_C10D_GLOO 1
#endif

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef MM_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <torch/csrc/autograd/custom_function.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <type_traits>

#include "common.h"

namespace mm {

// 2.x splits ProcessGroup (the front) from Backend (Gloo, NCCL); the collectives are the same.
#if TORCH_VERSION_MAJOR >= 2
using PG = c10d::Backend;
#else
using PG = c10d::ProcessGroup;
#endif

// 2.x's TCPStoreOptions has `useLibUV` (default true: the libuv server), which a libtorch built
// without libuv refuses (Debian's); older ones have no such field and one server.
template <typename O, typename = void>
struct HasUseLibUV : std::false_type {};
template <typename O>
struct HasUseLibUV<O, std::void_t<decltype(std::declval<O&>().useLibUV)>> : std::true_type {};
template <typename O>
bool SetUseLibUV(O& o, bool v) {
  if constexpr (HasUseLibUV<O>::value) {
    o.useLibUV = v;
    return true;
  } else {
    return false;
  }
}

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PG> pg;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{0};
  std::string backend;
};

static std::vector<std::unique_ptr<Group>> g_groups;

static Group& G(const Napi::CallbackInfo& a, size_t i) {
  int64_t id = I(a, i);
  if (id < 0 || static_cast<size_t>(id) >= g_groups.size() || !g_groups[id])
    throw std::invalid_argument("process group " + std::to_string(id) + " does not exist (destroyed?)");
  return *g_groups[id];
}

static void Wait(Group& g, const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  try {
    work->wait(g.timeout);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(what) + " failed on rank " + std::to_string(g.rank) + " of " +
                             std::to_string(g.size) + " (a peer died or timed out after " +
                             std::to_string(g.timeout.count()) + " ms): " + e.what());
  }
}

// distAvailable() -> ['gloo', 'nccl'?]: the backends this build has.
OP(distBackends, "") {
  Napi::Array r = Napi::Array::New(a.Env());
  uint32_t n = 0;
#ifdef USE_C10D_GLOO
  r.Set(n++, Napi::String::New(a.Env(), "gloo"));
#endif
#ifdef MM_WITH_NCCL
  r.Set(n++, Napi::String::New(a.Env(), "nccl"));
#endif
  (void)n;
  return r;
}

// distInit(backend, rank, worldSize, masterAddr, masterPort, timeoutMs, prefix) -> group id.
// Rank 0 serves the TCPStore; every rank waits for all to join (within the timeout).
OP(distInit, "") {
  std::string backend = Str(a, 0);
  int rank = static_cast<int>(I(a, 1));
  int size = static_cast<int>(I(a, 2));
  std::string addr = Str(a, 3);
  int64_t port = I(a, 4);
  auto timeout = std::chrono::milliseconds(I(a, 5));
  std::string prefix = IsNullish(a, 6) ? "mmoco" : Str(a, 6);
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("rank " + std::to_string(rank) + " is not in [0, " + std::to_string(size) + ")");
  if (port <= 0 || port > 65535) throw std::invalid_argument("master port must be in 1..65535, got " + std::to_string(port));

  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = rank == 0;
  so.numWorkers = static_cast<std::size_t>(size);
  so.waitWorkers = true;
  so.timeout = timeout;
  // the libuv server unless USE_LIBUV=0 (PyTorch's switch) or this libtorch lacks it
  const char* uvEnv = std::getenv("USE_LIBUV");
  bool libuv = SetUseLibUV(so, !(uvEnv && std::string(uvEnv) == "0"));
  // A signal (a profiler's SIGPROF, say) can interrupt a client's connect; libtorch 1.13 gives
  // up with EINTR, so clients try again until the timeout
  c10::intrusive_ptr<c10d::TCPStore> tcp;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    try {
      tcp = c10::make_intrusive<c10d::TCPStore>(addr, so);
      break;
    } catch (const std::exception& e) {
      std::string what = e.what();
      if (libuv && what.find("built without libuv") != std::string::npos) {
        libuv = false;
        SetUseLibUV(so, false);
        continue;
      }
      bool eintr = what.find("Interrupted system call") != std::string::npos;
      if (so.isServer || !eintr || std::chrono::steady_clock::now() >= deadline) throw;
    }
  }
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);

  auto g = std::make_unique<Group>();
  g->store = store;
  g->rank = rank;
  g->size = size;
  g->timeout = timeout;
  g->backend = backend;
  if (backend == "gloo") {
#ifdef USE_C10D_GLOO
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(addr == "localhost" ? "127.0.0.1" : addr));
    opts->threads = 2;
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, opts);
#else
    throw std::invalid_argument("this build has no Gloo (install libgloo-dev and rebuild the addon)");
#endif
  } else if (backend == "nccl") {
#ifdef MM_WITH_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, opts);
#else
    throw std::invalid_argument("this build has no NCCL (build against a CUDA libtorch)");
#endif
  } else {
    throw std::invalid_argument("backend must be 'gloo' or 'nccl', got '" + backend + "'");
  }
  g_groups.push_back(std::move(g));
  return Napi::Number::New(a.Env(), static_cast<double>(g_groups.size() - 1));
}

OP(distDestroy, "") {
  Group& g = G(a, 0);
  (void)g;
  g_groups[I(a, 0)].reset();
  return a.Env().Undefined();
}

static c10d::ReduceOp ReduceOpOf(const std::string& op) {
  if (op == "sum") return c10d::ReduceOp(c10d::ReduceOp::SUM);
  if (op == "max") return c10d::ReduceOp(c10d::ReduceOp::MAX);
  if (op == "min") return c10d::ReduceOp(c10d::ReduceOp::MIN);
  if (op == "product") return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
  throw std::invalid_argument("reduce op must be 'sum', 'max', 'min' or 'product', got '" + op + "'");
}

// distAllReduce(group, tensors, op): in place, all tensors of the list reduced across ranks.
OP(distAllReduce, ".L.") {
  Group& g = G(a, 0);
  std::vector<at::Tensor> ts = TL(a, 1);
  c10d::AllreduceOptions o;
  o.reduceOp = ReduceOpOf(Str(a, 2));
  o.timeout = g.timeout;
  // one collective per tensor: Gloo's allreduce takes one tensor (or one per device)
  for (auto& t : ts) {
    std::vector<at::Tensor> one{t};
    Wait(g, g.pg->allreduce(one, o), "allReduce");
  }
  return a.Env().Undefined();
}

// distAllGather(group, tensor) -> a new tensor [worldSize · d0, ...]: every rank's tensor
// concatenated along dim 0, in rank order.
OP(distAllGather, ".T") {
  Group& g = G(a, 0);
  at::Tensor t = T(a, 1).contiguous();
  std::vector<at::Tensor> outs;
  for (int r = 0; r < g.size; ++r) outs.push_back(at::empty_like(t));
  std::vector<std::vector<at::Tensor>> out{outs};
  std::vector<at::Tensor> in{t};
  c10d::AllgatherOptions o;
  o.timeout = g.timeout;
  Wait(g, g.pg->allgather(out, in, o), "allGather");
  return Out(a, at::cat(out[0], 0));
}

// distBroadcast(group, tensors, root): in place, every tensor takes root's values.
OP(distBroadcast, ".L.") {
  Group& g = G(a, 0);
  std::vector<at::Tensor> ts = TL(a, 1);
  c10d::BroadcastOptions o;
  o.rootRank = static_cast<int64_t>(I(a, 2));
  o.timeout = g.timeout;
  if (o.rootRank < 0 || o.rootRank >= g.size) throw std::invalid_argument("broadcast: root rank out of range");
  for (auto& t : ts) {
    std::vector<at::Tensor> one{t};
    Wait(g, g.pg->broadcast(one, o), "broadcast");
  }
  return a.Env().Undefined();
}

OP(distBarrier, "") {
  Group& g = G(a, 0);
  c10d::BarrierOptions o;
  o.timeout = g.timeout;
  Wait(g, g.pg->barrier(o), "barrier");
  return a.Env().Undefined();
}

// ---- SyncBatchNorm ----
// BatchNorm over the global batch: the per-channel sum, sum of squares and count of every rank
// are all-reduced in forward; backward all-reduces Σdy and Σdy·x̂ for the input gradient, while
// the weight and bias gradients stay local (the data-parallel gradient all-reduce averages them,
// as torch.nn.SyncBatchNorm under DDP). x is [N, C] or [N, C, *].
static at::Tensor ChannelsLast2d(const at::Tensor& x) {
  // [N, C, *] -> [N·*, C]
  if (x.dim() == 2) return x;
  return x.transpose(0, 1).reshape({x.size(1), -1}).t();
}

struct SyncBNFn : public torch::autograd::Function<SyncBNFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::Tensor x,
                                                at::Tensor weight, at::Tensor bias, int64_t group, double eps) {
    Group& g = *g_groups.at(group);
    at::Tensor x2 = ChannelsLast2d(x).to(at::kFloat);
    int64_t C = x2.size(1);
    // [sum (C), sumsq (C), count (1)] in one collective
    at::Tensor stats = at::cat({x2.sum(0), x2.square().sum(0),
                                at::full({1}, static_cast<double>(x2.size(0)), x2.options())});
    std::vector<at::Tensor> one{stats};
    c10d::AllreduceOptions o;
    o.timeout = g.timeout;
    Wait(g, g.pg->allreduce(one, o), "syncBatchNorm");
    at::Tensor count = stats.narrow(0, 2 * C, 1);
    at::Tensor mean = stats.narrow(0, 0, C) / count;
    at::Tensor var = (stats.narrow(0, C, C) / count - mean.square()).clamp_min(0);
    at::Tensor invstd = (var + eps).rsqrt();
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = C;
    at::Tensor xhat = (x.to(at::kFloat) - mean.view(shape)) * invstd.view(shape);
    at::Tensor y = xhat * weight.view(shape) + bias.view(shape);
    ctx->save_for_backward({xhat, invstd, weight, count});
    ctx->mark_non_differentiable({mean, var, count});
    ctx->saved_data["group"] = group;
    return {y.to(x.scalar_type()), mean, var, count};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor xhat = saved[0], invstd = saved[1], weight = saved[2], count = saved[3];
    Group& g = *g_groups.at(ctx->saved_data["group"].toInt());
    at::Tensor dy = grads[0].to(at::kFloat);
    int64_t C = invstd.size(0);
    std::vector<int64_t> shape(xhat.dim(), 1);
    shape[1] = C;
    at::Tensor dy2 = ChannelsLast2d(dy), xh2 = ChannelsLast2d(xhat);
    at::Tensor sumDy = dy2.sum(0), sumDyXhat = (dy2 * xh2).sum(0);
    at::Tensor both = at::cat({sumDy, sumDyXhat});
    std::vector<at::Tensor> one{both.clone()};
    c10d::AllreduceOptions o;
    o.timeout = g.timeout;
    Wait(g, g.pg->allreduce(one, o), "syncBatchNorm backward");
    at::Tensor meanDy = one[0].narrow(0, 0, C) / count, meanDyXhat = one[0].narrow(0, C, C) / count;
    at::Tensor scale = invstd * weight;
    at::Tensor dx = (dy - meanDy.view(shape) - xhat * meanDyXhat.view(shape)) * scale.view(shape);
    return {dx.to(grads[0].scalar_type()), sumDyXhat, sumDy, at::Tensor(), at::Tensor()};
  }
};

// syncBatchNorm(group, x, weight?, bias?, runningMean?, runningVar?, training, momentum, eps):
// training: global batch statistics (and the running statistics updated in place with the
// unbiased global variance); eval: the running statistics, no communication.
OP(syncBatchNorm, ".TTTTT") {
  int64_t group = I(a, 0);
  G(a, 0);
  at::Tensor x = T(a, 1);
  c10::optional<at::Tensor> w = OptT(a, 2), b = OptT(a, 3), rm = OptT(a, 4), rv = OptT(a, 5);
  bool training = B(a, 6);
  double momentum = D(a, 7), eps = D(a, 8);
  if (!training) {
    return Out(a, at::batch_norm(x, w, b, rm, rv, false, momentum, eps, true));
  }
  // no affine: ones / zeros without gradient (custom functions take no undefined inputs here)
  int64_t C = x.size(1);
  at::Tensor wt = w && w->defined() ? *w : at::ones({C}, x.options().dtype(at::kFloat));
  at::Tensor bt = b && b->defined() ? *b : at::zeros({C}, x.options().dtype(at::kFloat));
  auto out = SyncBNFn::apply(x, wt, bt, group, eps);
  if (rm && rv && rm->defined()) {
    at::NoGradGuard ng;
    at::Tensor n = out[3];
    at::Tensor unbiased = out[2] * n / (n - 1).clamp_min(1);
    rm->mul_(1 - momentum).add_(out[1].to(rm->scalar_type()), momentum);
    rv->mul_(1 - momentum).add_(unbiased.to(rv->scalar_type()), momentum);
  }
  return Out(a, out[0]);
}

}  // namespace mm
