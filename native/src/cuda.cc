// CUDA-only pieces beyond the tensor ops: page-locked (pinned) host memory, so that a host batch
// is copied to the GPU without blocking, and CUDA graphs (at::cuda::CUDAGraph), which record a
// whole training step once and replay it with one launch. Generic: nothing here knows what is
// captured. Without a CUDA libtorch (or without the CUDA headers at build time) the graph ops
// throw and pinning is refused with a message that says why.
#include "common.h"

#if MMOCO_WITH_CUDA && MMOCO_CUDA_HEADERS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#define MM_GRAPHS 1
#else
#define MM_GRAPHS 0
#endif

#include <map>
#include <memory>

namespace mm {

// pinMemory(t): a copy of the CPU tensor `t` in page-locked memory (PyTorch's pin_memory()).
OP(pinMemory, "T") {
  at::Tensor& t = T(a, 0);
  if (!t.device().is_cpu()) throw std::invalid_argument("pinMemory: the tensor must be on the CPU");
  if (!MMOCO_WITH_CUDA) throw std::invalid_argument("pinMemory: this build has no CUDA (pinned memory needs it)");
  return Out(a, t.pin_memory());
}
OP(isPinned, "T") { return Napi::Boolean::New(a.Env(), T(a, 0).is_pinned()); }

// graphsAvailable(): whether this build can capture CUDA graphs.
OP(cudaGraphsAvailable, "") { return Napi::Boolean::New(a.Env(), static_cast<bool>(MM_GRAPHS)); }

#if MM_GRAPHS
namespace {
// A graph and the streams of its capture: capture runs on a side stream (CUDA refuses to
// capture the legacy default stream), which first waits for the work already queued.
struct Graph {
  std::unique_ptr<at::cuda::CUDAGraph> graph = std::make_unique<at::cuda::CUDAGraph>();
  c10::optional<c10::cuda::CUDAStream> previous;
  bool capturing = false;
  bool captured = false;
};
std::map<int64_t, Graph> graphs;
int64_t nextGraph = 1;

Graph& GraphOf(const Napi::CallbackInfo& a, const char* what) {
  auto it = graphs.find(I(a, 0));
  if (it == graphs.end()) throw std::invalid_argument(std::string(what) + ": no such CUDA graph (disposed?)");
  return it->second;
}

// Makes `waiter` wait for the work queued so far on `on` (an event, as CUDAEvent::block does;
// the runtime API alone keeps the build to cuda_runtime_api.h).
void StreamWait(c10::cuda::CUDAStream waiter, c10::cuda::CUDAStream on) {
  cudaEvent_t ev;
  C10_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  C10_CUDA_CHECK(cudaEventRecord(ev, on.stream()));
  C10_CUDA_CHECK(cudaStreamWaitEvent(waiter.stream(), ev, 0));
  C10_CUDA_CHECK(cudaEventDestroy(ev));
}

void RestoreStream(Graph& g) {
  if (!g.previous) return;
  c10::cuda::CUDAStream side = c10::cuda::getCurrentCUDAStream();
  c10::cuda::setCurrentCUDAStream(*g.previous);
  StreamWait(*g.previous, side);
  g.previous.reset();
}
}  // namespace

OP(cudaGraphCreate, "") {
  int64_t id = nextGraph++;
  graphs.emplace(id, Graph{});
  return Napi::Number::New(a.Env(), static_cast<double>(id));
}

// cudaGraphCaptureBegin(id): from now on the ops of this thread are recorded, not run.
OP(cudaGraphCaptureBegin, "") {
  Graph& g = GraphOf(a, "cudaGraphCaptureBegin");
  if (g.capturing) throw std::invalid_argument("cudaGraphCaptureBegin: this graph is already capturing");
  if (g.captured) throw std::invalid_argument("cudaGraphCaptureBegin: this graph was captured already (reset it first)");
  c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream();
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  StreamWait(side, current);
  g.previous = current;
  c10::cuda::setCurrentCUDAStream(side);
  try {
#if TORCH_VERSION_MAJOR >= 2
    // thread-local: CUDA calls of other threads (decoders, the host allocator) stay legal
    g.graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
#else
    g.graph->capture_begin();
#endif
  } catch (...) {
    RestoreStream(g);
    throw;
  }
  g.capturing = true;
  return a.Env().Undefined();
}

// cudaGraphCaptureEnd(id, abandon?): ends the capture; with abandon (an op failed while
// recording) the partial graph is dropped and the graph can capture again.
OP(cudaGraphCaptureEnd, "") {
  Graph& g = GraphOf(a, "cudaGraphCaptureEnd");
  if (!g.capturing) throw std::invalid_argument("cudaGraphCaptureEnd: this graph is not capturing");
  bool abandon = !IsNullish(a, 1) && B(a, 1);
  g.capturing = false;
  try {
    g.graph->capture_end();
  } catch (...) {
    RestoreStream(g);
    g.graph = std::make_unique<at::cuda::CUDAGraph>();
    if (abandon) return a.Env().Undefined();
    throw;
  }
  RestoreStream(g);
  if (abandon) {
    g.graph = std::make_unique<at::cuda::CUDAGraph>();
    return a.Env().Undefined();
  }
  g.captured = true;
  return a.Env().Undefined();
}

// cudaGraphReplay(id): runs the recorded work again on the current stream (same memory).
OP(cudaGraphReplay, "") {
  Graph& g = GraphOf(a, "cudaGraphReplay");
  if (!g.captured) throw std::invalid_argument("cudaGraphReplay: the graph has not been captured");
  g.graph->replay();
  return a.Env().Undefined();
}

// cudaGraphDestroy(id): frees the graph and its private memory pool.
OP(cudaGraphDestroy, "") {
  auto it = graphs.find(I(a, 0));
  if (it != graphs.end()) {
    if (it->second.capturing) {
      try {
        it->second.graph->capture_end();
      } catch (...) {
      }
      RestoreStream(it->second);
    }
    graphs.erase(it);
  }
  return a.Env().Undefined();
}
#else
static Napi::Value NoGraphs(const char* what) {
  throw std::invalid_argument(std::string(what) +
                              ": this build has no CUDA graphs (build against a CUDA libtorch with the CUDA headers)");
}
OP(cudaGraphCreate, "") { return NoGraphs("cudaGraphCreate"); }
OP(cudaGraphCaptureBegin, "") { return NoGraphs("cudaGraphCaptureBegin"); }
OP(cudaGraphCaptureEnd, "") { return NoGraphs("cudaGraphCaptureEnd"); }
OP(cudaGraphReplay, "") { return NoGraphs("cudaGraphReplay"); }
OP(cudaGraphDestroy, "") { return a.Env().Undefined(); }
#endif

}  // namespace mm
