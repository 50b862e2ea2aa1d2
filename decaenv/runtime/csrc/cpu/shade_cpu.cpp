// CPU shape-image shading (the contract is in ../shade.h).
//
// One pass over the pixels instead of torch's two batched matrix products, a clamp, a division and five
// elementwise passes over (B, 3, H, W) tensors. Pixels are taken in blocks of kBlock so that every inner
// loop runs over contiguous pixels (the compiler vectorises them); each pixel still sees the same operations
// in the same order. Every output element depends only on its own pixel: the result does not depend on the
// thread count. Built with -ffp-contract=off (no fused multiply-adds).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>

#include "../shade.h"
#include "alloc.h"

namespace decaenv {

namespace {

constexpr int64_t kBlock = 256;

void check_shade(const at::Tensor& normal_map, const at::Tensor& directions, const at::Tensor& intensities,
                 const at::Tensor& grey, const at::Tensor& alpha, const at::Tensor& backdrop) {
  TORCH_CHECK(normal_map.dim() == 4 && normal_map.size(1) == 3,
              "decaenv::shade_directional: normal_map must be (B, 3, H, W), got ", normal_map.sizes());
  const int64_t B = normal_map.size(0), H = normal_map.size(2), W = normal_map.size(3);
  TORCH_CHECK(directions.dim() == 3 && directions.size(0) == B && directions.size(2) == 3 &&
                  intensities.sizes() == directions.sizes(),
              "decaenv::shade_directional: directions and intensities must both be (B, L, 3), got ",
              directions.sizes(), " and ", intensities.sizes());
  TORCH_CHECK(directions.size(1) > 0, "decaenv::shade_directional: at least one light");
  TORCH_CHECK(grey.dim() == 4 && grey.size(0) == B && grey.size(1) == 1 && grey.size(2) == H && grey.size(3) == W &&
                  alpha.sizes() == grey.sizes(),
              "decaenv::shade_directional: grey and alpha must both be (B, 1, H, W), got ", grey.sizes(), " and ",
              alpha.sizes());
  TORCH_CHECK(backdrop.sizes() == normal_map.sizes(),
              "decaenv::shade_directional: backdrop must be (B, 3, H, W), got ", backdrop.sizes());
  for (const at::Tensor* t : {&normal_map, &directions, &intensities, &grey, &alpha, &backdrop}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat, "decaenv::shade_directional: expected float32 tensors");
    TORCH_CHECK(t->device().is_cpu(), "decaenv::shade_directional: expected CPU tensors");
    TORCH_CHECK(t->is_contiguous(), "decaenv::shade_directional: expected contiguous tensors");
  }
}

struct Image {
  const float *nx, *ny, *nz, *grey, *alpha, *back;  // planes of one batch element
  const float *dirs, *ints;                          // (L, 3) each
  float* out;
  int64_t plane, lights;
};

// Pixels [p0, p0 + n) of one image, n <= kBlock.
void shade_block(const Image& im, int64_t p0, int64_t n) {
  float cosine[kBlock], sum[3][kBlock];
  const float *nx = im.nx + p0, *ny = im.ny + p0, *nz = im.nz + p0;
  for (int64_t l = 0; l < im.lights; ++l) {
    const float dx = im.dirs[3 * l], dy = im.dirs[3 * l + 1], dz = im.dirs[3 * l + 2];
    for (int64_t i = 0; i < n; ++i) {
      const float dot = (nx[i] * dx + ny[i] * dy) + nz[i] * dz;
      cosine[i] = dot < 0.0f ? 0.0f : (dot > 1.0f ? 1.0f : dot);  // clamp; NaN stays NaN
    }
    for (int c = 0; c < 3; ++c) {
      const float ic = im.ints[3 * l + c];
      float* s = sum[c];
      if (l == 0) {
        for (int64_t i = 0; i < n; ++i) s[i] = cosine[i] * ic;
      } else {
        for (int64_t i = 0; i < n; ++i) s[i] = s[i] + cosine[i] * ic;
      }
    }
  }
  const float count = static_cast<float>(im.lights);
  const float *grey = im.grey + p0, *alpha = im.alpha + p0;
  for (int c = 0; c < 3; ++c) {
    const float* s = sum[c];
    const float* back = im.back + c * im.plane + p0;
    float* out = im.out + c * im.plane + p0;
    for (int64_t i = 0; i < n; ++i) out[i] = (grey[i] * (s[i] / count)) * alpha[i] + back[i] * (1.0f - alpha[i]);
  }
}

}  // namespace

at::Tensor shade_directional_cpu(const at::Tensor& normal_map, const at::Tensor& directions,
                                 const at::Tensor& intensities, const at::Tensor& grey, const at::Tensor& alpha,
                                 const at::Tensor& backdrop) {
  check_shade(normal_map, directions, intensities, grey, alpha, backdrop);
  const int64_t B = normal_map.size(0), L = directions.size(1);
  const int64_t plane = normal_map.size(2) * normal_map.size(3);
  at::Tensor out = empty_cpu(normal_map.sizes(), normal_map.scalar_type());
  const int64_t blocks = (plane + kBlock - 1) / kBlock;
  if (B * blocks == 0) return out;
  const float* nm = normal_map.data_ptr<float>();
  const float* dirs = directions.data_ptr<float>();
  const float* ints = intensities.data_ptr<float>();
  const float* grey_p = grey.data_ptr<float>();
  const float* alpha_p = alpha.data_ptr<float>();
  const float* back = backdrop.data_ptr<float>();
  float* out_p = out.data_ptr<float>();
  at::parallel_for(0, B * blocks, 16, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = k / blocks, p0 = (k % blocks) * kBlock;
      const Image im{nm + b * 3 * plane,       nm + b * 3 * plane + plane, nm + b * 3 * plane + 2 * plane,
                     grey_p + b * plane,       alpha_p + b * plane,        back + b * 3 * plane,
                     dirs + b * L * 3,         ints + b * L * 3,           out_p + b * 3 * plane,
                     plane,                    L};
      shade_block(im, p0, std::min(kBlock, plane - p0));
    }
  });
  return out;
}

}  // namespace decaenv
