// mint/inversion/inverter_cuda.cuh -- the inversion engine on CUDA (nvcc only): Inverter<ViT<Cuda>, ...> keeps
// the images, the Adam moments, the loss (cross-entropy) and the TV prior on the GPU. This header adds the
// masked Adam kernel and makes the CUDA ops visible to the engine's policy templates, so include it before
// anything that includes mint/models/vit.hpp or mint/inversion/*.hpp.
//
// Per iteration the host sees: the loss (every term is added into the LossSink<Cuda>'s device double, read once
// per iteration to check it is finite and report it), and, at schedule events only, the last block's CLS
// attention [B, K] and the images.
//
// The executors: PlainExecutor<Cuda> (inverter.hpp) runs the iteration body as it is; IterationGraph<Cuda> (here,
// InversionOptions::cuda_graph = true) runs the same body under capture between schedule events, where the active
// count K is fixed: the iteration after the start or an event runs uncaptured (it also uploads the keep set and
// labels once), the next one is captured and launched, later ones replay the graph; an event drops the graph (K
// changes) and the cycle starts again. Adam's bias corrections come from a device copy of fn::AdamStep written
// before each launch, the model's NaN check of its input is off (the loss check remains), and the memory the
// graph uses belongs to its allocator pool (cuda::detail::DeviceCache::Pool) until it is dropped. The engine
// refuses, naming its type, an objective or prior that is not `capturable` (one that returns its loss to the host
// instead of writing it into the sink on the device: mint/inversion/loss_sink.hpp).
#pragma once

#if defined(MINT_MODELS_VIT_HPP_INCLUDED)
#error "include mint/inversion/inverter_cuda.cuh before mint/models/vit.hpp (the CUDA ops must be declared first)"
#endif

#include "mint/backend/cuda.cuh"
#include "mint/backend/cuda/losses.cuh"
#include "mint/inversion/augmentation.hpp"
#include "mint/inversion/clip_range.hpp"
#include "mint/inversion/loss_sink.hpp"
#include "mint/models/vit_cuda.cuh"
#include "mint/nn/tokens.hpp"

#if defined(MINT_INVERSION_INVERTER_HPP_INCLUDED)
#error "include mint/inversion/inverter_cuda.cuh before mint/inversion/inverter.hpp (IterationGraph<Cuda> first)"
#endif

namespace mint {

template <class Device>
class IterationGraph;  // (the primary template is in inverter.hpp: no graphs on that backend)

// The device sink: one double on the GPU that the CUDA loss ops add into (device()), read once per iteration.
// A term given as a host value (add(), a policy without a sink form) is kept on the host beside it; under
// capture there is no host value to keep (it would be the capture run's only), so add() is an error there.
template <>
class LossSink<Cuda> {
 public:
  LossSink() : sum_(sizeof(double)) {}
  void reset() {
    MINT_CUDA_CHECK(cudaMemsetAsync(sum_.as<double>(), 0, sizeof(double), cuda::stream()));
    host_ = 0.0;
  }
  [[nodiscard]] double* device() { return sum_.as<double>(); }
  void add(float v) {
    check(!capturing_, "LossSink<Cuda>: a host loss value added while a CUDA graph is captured (a policy that is "
          "not capturable)");
    host_ += v;
  }
  [[nodiscard]] float read() const {
    double d = 0.0;
    MINT_CUDA_CHECK(cudaMemcpyAsync(&d, sum_.as<double>(), sizeof d, cudaMemcpyDeviceToHost, cuda::stream()));
    MINT_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
    return static_cast<float>(d + host_);
  }
  void set_capturing(bool on) { capturing_ = on; }

 private:
  cuda::detail::DeviceBuffer sum_;
  double host_ = 0.0;
  bool capturing_ = false;
};

namespace detail {
// The kernel of masked_adam_step: `step` is read per thread from *sp (device) or taken by value (sp == nullptr).
inline void masked_adam_launch(const fn::AdamStep& step, const fn::AdamStep* sp, Tensor<Cuda>& x, const Tensor<Cuda>& g,
                               Tensor<Cuda>& m, Tensor<Cuda>& v, const nn::TokenIndex& active, std::int64_t p,
                               const ClipRange& range) {
  check_rank(x, 4, "masked_adam_step: images");
  check_shape(g, x.shape(), "masked_adam_step: gradient");
  check_shape(m, x.shape(), "masked_adam_step: first moment");
  check_shape(v, x.shape(), "masked_adam_step: second moment");
  const std::int64_t c = x.dim(1), h = x.dim(2), w = x.dim(3), gw = w / p, k = active.count;
  check(range.channels == c, "masked_adam_step: a clip range for ", range.channels, " channels, images have ", c);
  active.validate(x.dim(0), (h / p) * gw);
  const ClipRange r = range;  // by value into the kernel (fixed arrays: no device allocation, graph-safe)
  nn::cuda_detail::DeviceIndex idx(active);
  const std::int32_t* ip = idx.ptr;
  float *xp = x.data(), *mp = m.data(), *vp = v.data();
  const float* gp = g.data();
  const std::int64_t per = c * p * p;
  cuda::detail::for_each(
      active.batch * k * per,
      [=] __device__(std::int64_t t) {
        const std::int64_t bk = t / per, e = t % per, i = bk / k, patch = ip[bk];
        const std::int64_t ch = e / (p * p), y = (patch / gw) * p + (e / p) % p, xx = (patch % gw) * p + e % p;
        const std::int64_t o = ((i * c + ch) * h + y) * w + xx;
        float px = xp[o], pm = mp[o], pv = vp[o];
        if (sp) {
          const fn::AdamStep s = *sp;
          s(px, gp[o], pm, pv);
        } else {
          step(px, gp[o], pm, pv);
        }
        const float lo = r.lo[ch], hi = r.hi[ch];
        xp[o] = px < lo ? lo : (hi < px ? hi : px);  // std::clamp's rule (NaN stays NaN)
        mp[o] = pm;
        vp[o] = pv;
      },
      "masked_adam_step");
}
}  // namespace detail

// The CUDA masked Adam step (the CPU one is in inverter.hpp): fn::AdamStep and the per-channel clip on the pixels
// of the active patches only, one thread per active pixel. Distinct patches own distinct pixels: no write conflicts.
inline void masked_adam_step(const fn::AdamStep& step, Tensor<Cuda>& x, const Tensor<Cuda>& g, Tensor<Cuda>& m,
                             Tensor<Cuda>& v, const nn::TokenIndex& active, std::int64_t p, const ClipRange& range) {
  detail::masked_adam_launch(step, nullptr, x, g, m, v, active, p, range);
}

// The augmentation's transform on the GPU (the CPU overload is in augmentation.hpp): image b of `src` transformed
// into image b of `dst` (or the inverse), one thread per pixel, the same fn::RollFlip map.
inline void apply_transform(const PatchTransform& t, const Tensor<Cuda>& src, Tensor<Cuda>& dst, std::int64_t b, int p,
                            bool inverse) {
  const mint::detail::TransformedImage im = mint::detail::transformed_image(t, src, dst, b, p);
  const fn::RollFlip map = im.map;
  const float* s = im.src;
  float* d = im.dst;
  cuda::detail::for_each(
      im.pixels,
      [=] __device__(std::int64_t from) {
        const std::int64_t to = map(from);
        if (inverse) d[from] = s[to];
        else d[to] = s[from];
      },
      "apply_transform");
}

// The CUDA-graph executor (see the header comment): runs the engine's iteration body under capture and replay.
template <>
class IterationGraph<Cuda> {
 public:
  static constexpr bool available = true;
  IterationGraph() : step_(sizeof(fn::AdamStep)) {}
  ~IterationGraph() { reset(); }
  IterationGraph(const IterationGraph&) = delete;
  IterationGraph& operator=(const IterationGraph&) = delete;

  // Drops the graph (a schedule event changes K) and gives its memory back to the shared cache.
  void reset() {
    if (exec_) {
      (void)cudaStreamSynchronize(cuda::stream());  // no replay may still be running
      (void)cudaGraphExecDestroy(exec_);
      (void)cudaGraphDestroy(graph_);
      exec_ = nullptr;
      graph_ = nullptr;
    }
    cuda::detail::DeviceCache::instance().release(&pool_);
    k_ = -1;
    warm_k_ = -1;
  }

  // One iteration with K active patches: body.evaluate(sink) then body.step(*this) (the step reads Adam's
  // parameters from adam_step() on the device). The first time at this K it runs uncaptured, the second time it
  // is captured and the graph launched, after that the graph is replayed. Returns the sink's sum (one read).
  template <class Body>
  float run(Body& body, std::int64_t k, const fn::AdamStep& step, LossSink<Cuda>& sink) {
    MINT_CUDA_CHECK(cudaMemcpyAsync(step_.as<fn::AdamStep>(), &step, sizeof step, cudaMemcpyHostToDevice, cuda::stream()));
    if (exec_ && k_ == k) {
      MINT_CUDA_CHECK(cudaGraphLaunch(exec_, cuda::stream()));
    } else {
      const std::int64_t warm = warm_k_;
      if (exec_) reset();
      if (warm != k) {  // uncaptured: uploads the keep set and labels, warms cuBLAS at these shapes
        enqueue(body, sink);
        warm_k_ = k;
      } else {
        capture(body, sink);
        k_ = k;
        warm_k_ = k;
        MINT_CUDA_CHECK(cudaGraphLaunch(exec_, cuda::stream()));  // the capture itself ran nothing
      }
    }
    return sink.read();
  }

  // Device copy of this iteration's Adam step (its bias corrections change every iteration).
  [[nodiscard]] const fn::AdamStep* adam_step() const { return step_.as<fn::AdamStep>(); }
  [[nodiscard]] bool captured() const { return exec_ != nullptr; }

 private:
  template <class Body>
  void enqueue(Body& body, LossSink<Cuda>& sink) {
    sink.reset();  // a memset on the stream: captured with the rest, so every replay starts the sum at 0
    body.evaluate(sink);
    body.step(*this);
  }

  template <class Body>
  void capture(Body& body, LossSink<Cuda>& sink) {
    auto& cache = cuda::detail::DeviceCache::instance();
    MINT_CUDA_CHECK(cudaStreamBeginCapture(cuda::stream(), cudaStreamCaptureModeRelaxed));
    cache.begin_capture(&pool_);
    sink.set_capturing(true);
    try {
      enqueue(body, sink);
    } catch (...) {
      sink.set_capturing(false);
      cache.end_capture();
      cudaGraph_t broken = nullptr;
      (void)cudaStreamEndCapture(cuda::stream(), &broken);
      if (broken) (void)cudaGraphDestroy(broken);
      (void)cudaGetLastError();
      reset();
      throw;
    }
    sink.set_capturing(false);
    cache.end_capture();
    MINT_CUDA_CHECK(cudaStreamEndCapture(cuda::stream(), &graph_));
    MINT_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
  }

  cuda::detail::DeviceBuffer step_;
  cuda::detail::DeviceCache::Pool pool_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  std::int64_t k_ = -1, warm_k_ = -1;
};

// The masked Adam step of a graph iteration: the step's parameters are read on the device from `graph`.
inline void masked_adam_step(const IterationGraph<Cuda>& graph, Tensor<Cuda>& x, const Tensor<Cuda>& g, Tensor<Cuda>& m,
                             Tensor<Cuda>& v, const nn::TokenIndex& active, std::int64_t p, const ClipRange& range) {
  detail::masked_adam_launch(fn::AdamStep{}, graph.adam_step(), x, g, m, v, active, p, range);
}

}  // namespace mint

#include "mint/inversion/inverter.hpp"  // (its IterationGraph declaration is specialised above)
