// CPU channels-last max pooling (the contract is in ../max_pool.h).
//
// An output pixel's C channels are contiguous, and so are each input pixel's: the window is walked pixel by
// pixel with a loop over the channels the compiler vectorises, instead of a strided walk per channel. Where the
// CPU has AVX2 (checked at run time; the library itself targets the baseline ISA, so one build runs on every
// x86-64 node of a cluster), the channels go in 8-wide vectors held in registers over the whole window, ~2.7×
// faster (MTCNN's R-Net/O-Net first pools: 0.21 → 0.08 ms); the comparisons, and so the values, are the same.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../max_pool.h"
#include "alloc.h"

namespace decaenv {

namespace {

// torch's pooling output size with ceil_mode and no padding.
int64_t pooled_size(int64_t size, int64_t kernel, int64_t stride) {
  int64_t out = (size - kernel + stride - 1) / stride + 1;
  if ((out - 1) * stride >= size) --out;
  return out;
}

// One output pixel's channels: from -inf, each window value in row-major order replaces the maximum when it is
// greater or NaN (torch's comparison, so the same value stands on ties: -0 before +0 stays -0).
void pool_pixel(const float* x, int64_t w, int64_t c, int64_t y0, int64_t y1, int64_t x0, int64_t x1, float* out) {
  for (int64_t k = 0; k < c; ++k) out[k] = -INFINITY;
  for (int64_t iy = y0; iy < y1; ++iy) {
    for (int64_t ix = x0; ix < x1; ++ix) {
      const float* v = x + (iy * w + ix) * c;
      for (int64_t k = 0; k < c; ++k) out[k] = (v[k] > out[k] || std::isnan(v[k])) ? v[k] : out[k];
    }
  }
}

// Output rows [begin, end) of (batch, output row) pairs, one pixel at a time.
void pool_rows(const float* in, int64_t h, int64_t w, int64_t c, int64_t kernel, int64_t stride, int64_t ho,
               int64_t wo, float* dst, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const int64_t b = row / ho, oy = row % ho;
    const int64_t y0 = oy * stride, y1 = std::min(y0 + kernel, h);
    for (int64_t ox = 0; ox < wo; ++ox) {
      const int64_t x0 = ox * stride, x1 = std::min(x0 + kernel, w);
      pool_pixel(in + b * h * w * c, w, c, y0, y1, x0, x1, dst + ((b * ho + oy) * wo + ox) * c);
    }
  }
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define DECAENV_POOL_AVX2 1
typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));

// pool_rows for C ≥ 8 with AVX2: 8 channels at a time, the last group overlapping the one before it where C is
// not a multiple of 8 (a maximum taken twice is the same maximum). Per lane the same rule as pool_pixel.
__attribute__((target("avx2"))) void pool_rows_avx2(const float* in, int64_t h, int64_t w, int64_t c,
                                                    int64_t kernel, int64_t stride, int64_t ho, int64_t wo,
                                                    float* dst, int64_t begin, int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const int64_t b = row / ho, oy = row % ho;
    const int64_t y0 = oy * stride, y1 = std::min(y0 + kernel, h);
    const float* image = in + b * h * w * c;
    for (int64_t ox = 0; ox < wo; ++ox) {
      const int64_t x0 = ox * stride, x1 = std::min(x0 + kernel, w);
      float* out = dst + ((b * ho + oy) * wo + ox) * c;
      for (int64_t group = 0; group < c; group += 8) {
        const int64_t k = std::min(group, c - 8);
        f32x8 best = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        for (int64_t iy = y0; iy < y1; ++iy) {
          for (int64_t ix = x0; ix < x1; ++ix) {
            f32x8 v;
            std::memcpy(&v, image + (iy * w + ix) * c + k, sizeof v);
            const i32x8 take = (v > best) | (v != v);
            best = (f32x8)(((i32x8)v & take) | ((i32x8)best & ~take));
          }
        }
        std::memcpy(out + k, &best, sizeof best);
      }
    }
  }
}
#endif

}  // namespace

at::Tensor max_pool_cl_cpu(const at::Tensor& x, int64_t kernel, int64_t stride) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.device().is_cpu() &&
                  x.is_contiguous(at::MemoryFormat::ChannelsLast),
              "decaenv::max_pool_cl: x must be a (N, C, H, W) float32 CPU tensor in channels-last memory, got ",
              x.sizes(), " ", x.scalar_type());
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  TORCH_CHECK(kernel >= 1 && stride >= 1 && kernel <= h && kernel <= w, "decaenv::max_pool_cl: kernel ", kernel,
              " and stride ", stride, " do not fit a ", h, " x ", w, " input");
  const int64_t ho = pooled_size(h, kernel, stride), wo = pooled_size(w, kernel, stride);
  at::Tensor out = empty_cpu({n, c, ho, wo}, x.scalar_type(), at::MemoryFormat::ChannelsLast);
  const float* in = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  auto rows = pool_rows;
#ifdef DECAENV_POOL_AVX2
  const char* baseline = std::getenv("DECAENV_BASELINE_KERNELS");  // "1": the scalar loop (tests compare both)
  if (c >= 8 && !(baseline != nullptr && baseline[0] == '1') && __builtin_cpu_supports("avx2")) rows = pool_rows_avx2;
#endif
  at::parallel_for(0, n * ho, 16,
                   [&](int64_t begin, int64_t end) { rows(in, h, w, c, kernel, stride, ho, wo, dst, begin, end); });
  return out;
}

}  // namespace decaenv
