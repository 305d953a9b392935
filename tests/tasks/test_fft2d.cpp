// GradViT's FFT2D measure (tasks::fft2d): 1 - cosine of the 2-D Fourier magnitude spectra, against numpy.
#include "test_util.hpp"

#include <cmath>

#include "mint/tasks/metrics.hpp"

using namespace mint;

TEST_CASE("FFT2D equals numpy's value on known inputs", "[metrics][fft2d]") {
  // a[n,c,i,j] = sin(0.37 (i+1) + 0.91 (j+1)(c+1) + n) + 0.5,  b = cos(0.23 (i+1)(j+1) + 0.5 c - n) + 0.2 i / H,
  // shape [2, 2, 6, 5] (H != W catches a transposed transform). Reference, float32 inputs, float64 numpy:
  //   A = abs(np.fft.fft2(a, axes=(2, 3))); B = abs(np.fft.fft2(b, axes=(2, 3)))
  //   1 - (A*B).sum((1,2,3)) / sqrt((A*A).sum((1,2,3)) * (B*B).sum((1,2,3)))  ->  [0.21425509, 0.17024699]
  // (torch.fft.fft2 gives the same; the complex-valued cosine would be the pixel cosine, [0.7024, 1.0448]).
  const int N = 2, C = 2, H = 6, W = 5;
  auto a = Tensor<>::empty(Shape{N, C, H, W}), b = Tensor<>::empty(Shape{N, C, H, W});
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H; ++i)
        for (int j = 0; j < W; ++j) {
          const auto k = ((n * C + c) * H + i) * W + j;
          a[k] = static_cast<float>(std::sin(0.37 * (i + 1) + 0.91 * (j + 1) * (c + 1) + n) + 0.5);
          b[k] = static_cast<float>(std::cos(0.23 * (i + 1) * (j + 1) + 0.5 * c - n) + 0.2 * i / H);
        }
  const auto f = tasks::fft2d(a, b);
  REQUIRE(f.size() == 2);
  // both sides in double from the same float32 inputs; numpy printed 8 digits
  REQUIRE(f[0] == Approx(0.21425509).margin(1e-8));
  REQUIRE(f[1] == Approx(0.17024699).margin(1e-8));
  REQUIRE(tasks::fft2d(b, a)[1] == Approx(f[1]).margin(1e-12));  // symmetric
}

TEST_CASE("FFT2D: identity, circular-shift invariance, zero images, bad input", "[metrics][fft2d]") {
  auto a = testing::uniform(Shape{1, 1, 7, 7}, 55, 0.0f, 1.0f);
  REQUIRE(tasks::fft2d(a, a)[0] == Approx(0.0).margin(1e-12));
  // a circular shift changes only the phase: FFT2D is 0 (a pixel metric would not be)
  auto r = Tensor<>::empty(a.shape());
  for (int i = 0; i < 7; ++i)
    for (int j = 0; j < 7; ++j) r[((i + 2) % 7) * 7 + (j + 3) % 7] = a[i * 7 + j];
  REQUIRE(tasks::fft2d(a, r)[0] == Approx(0.0).margin(1e-12));
  const auto z = Tensor<>::zeros(a.shape());
  REQUIRE(tasks::fft2d(a, z)[0] == 1.0);
  REQUIRE(tasks::fft2d(z, z)[0] == 0.0);
  REQUIRE_THROWS_WITH(tasks::fft2d(a, Tensor<>::zeros(Shape{1, 1, 7, 6})), Catch::Contains("shapes differ"));
}
