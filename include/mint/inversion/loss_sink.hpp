// mint/inversion/loss_sink.hpp -- LossSink<Device>: where every objective and prior of an inversion iteration
// writes its loss term (the engine's explicit replacement for a hidden global accumulator). The engine resets the
// sink before an iteration and reads the sum once after it, so a plain run and a CUDA-graph run (where no term may
// be read back to the host while the work is captured) report the same loss through the same path.
//
// A policy writes to the sink in one of two ways:
//   - loss(logits, labels, d_logits, LossSink<D>&) / add(images, d_images, LossSink<D>&): it adds its own term
//     (on CUDA on the device, through sink.device(), which is what a captured iteration needs); a policy that does
//     so on every backend declares `static constexpr bool capturable = true`;
//   - the plain loss(...) / add(...) returning a float: the engine adds that value (write_loss, write_prior below).
//     Such a policy cannot run inside a CUDA graph, and the engine refuses it there, naming its type.
// The Cuda specialisation is in mint/inversion/inverter_cuda.cuh.
#pragma once

#include "mint/core/tensor.hpp"
#include "mint/inversion/concepts.hpp"
#include "mint/nn/tokens.hpp"

namespace mint {

template <class Device>
class LossSink;

// The host sink: a float sum in the order the terms arrive (what the engine always computed: objective, then
// prior), so the reported loss is bit-identical to adding the returned values.
template <>
class LossSink<Cpu> {
 public:
  void reset() { sum_ = 0.0f; }
  void add(float v) { sum_ += v; }
  [[nodiscard]] float read() const { return sum_; }

 private:
  float sum_ = 0.0f;
};

// Whether a policy declares that it writes its term to the sink on the device (see the header comment).
template <class P>
inline constexpr bool capturable = false;
template <class P>
  requires requires { P::capturable; }
inline constexpr bool capturable<P> = static_cast<bool>(P::capturable);

// The objective's term into the sink: its sink form when it has one, else its returned value.
template <class O, class D>
void write_loss(const O& o, const Tensor<D>& logits, const std::vector<int>& labels, Tensor<D>& d_logits,
                LossSink<D>& sink) {
  if constexpr (requires { o.loss(logits, labels, d_logits, sink); }) {
    o.loss(logits, labels, d_logits, sink);
  } else {
    sink.add(o.loss(logits, labels, d_logits));
  }
}

// The prior's term into the sink: its sink form when it has one, else its returned value.
template <class R, class D>
void write_prior(const R& r, const Tensor<D>& images, Tensor<D>& d_images, LossSink<D>& sink) {
  if constexpr (requires { r.add(images, d_images, sink); }) {
    r.add(images, d_images, sink);
  } else {
    sink.add(r.add(images, d_images));
  }
}

// A prior's value and gradient for an optimiser that steps only the patches `stepped` (patch size p): its
// active-set form add(images, d_images, stepped, p) when it has one (TV: mint/inversion/regularizers.hpp), else
// its plain add (which computes every pixel's gradient).
template <class R>
float add_stepped(const R& r, const Tensor<Cpu>& images, Tensor<Cpu>& d_images, const nn::TokenIndex& stepped,
                  std::int64_t p) {
  if constexpr (requires { r.add(images, d_images, stepped, p); }) {
    return r.add(images, d_images, stepped, p);
  } else {
    return r.add(images, d_images);
  }
}

// The prior's term into the sink, from the engine, which then steps only `stepped`'s pixels: on the CPU a prior
// with an active-set form uses it (add_stepped); everything else is write_prior above.
template <class R, class D>
void write_prior(const R& r, const Tensor<D>& images, Tensor<D>& d_images, LossSink<D>& sink,
                 const nn::TokenIndex& stepped, std::int64_t p) {
  if constexpr (std::is_same_v<D, Cpu> && requires { r.add(images, d_images, stepped, p); }) {
    sink.add(r.add(images, d_images, stepped, p));
  } else {
    write_prior(r, images, d_images, sink);
  }
}

}  // namespace mint
