// CPU barycentric interpolation (the contract is in ../interpolate.h).
//
// One pass over the pixels (at::parallel_for over image rows): a covered pixel reads its face's three
// corner attributes and writes ((w0*a0 + w1*a1) + w2*a2) per channel, each product rounded before the
// sum, in corner order; built with -ffp-contract=off, so no multiply-add is fused and the result is
// bit-identical to the torch path (three gathers, products and sums in that order).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <atomic>

#include "../interpolate.h"
#include "alloc.h"

namespace decaenv {

namespace {

void check_interpolate(const at::Tensor& p2f, const at::Tensor& bary, const at::Tensor& attrs) {
  TORCH_CHECK(p2f.dim() == 3 && p2f.scalar_type() == at::kLong, "decaenv::interpolate: pix_to_face must be (B, H, W) int64, got ",
              p2f.sizes(), " ", p2f.scalar_type());
  TORCH_CHECK(bary.dim() == 4 && bary.size(3) == 3 && bary.scalar_type() == at::kFloat,
              "decaenv::interpolate: bary must be (B, H, W, 3) float32, got ", bary.sizes(), " ", bary.scalar_type());
  TORCH_CHECK(bary.size(0) == p2f.size(0) && bary.size(1) == p2f.size(1) && bary.size(2) == p2f.size(2),
              "decaenv::interpolate: bary ", bary.sizes(), " does not match pix_to_face ", p2f.sizes());
  TORCH_CHECK(attrs.dim() == 4 && attrs.size(2) == 3 && attrs.scalar_type() == at::kFloat,
              "decaenv::interpolate: face_attrs must be (B, F, 3, D) float32, got ", attrs.sizes(), " ",
              attrs.scalar_type());
  const int64_t bp = p2f.size(0), ba = attrs.size(0);
  TORCH_CHECK(bp == ba || bp == 1 || ba == 1, "decaenv::interpolate: batch sizes differ: fragments ", bp,
              ", face_attrs ", ba);
  for (const at::Tensor* t : {&p2f, &bary, &attrs}) {
    TORCH_CHECK(t->device().is_cpu(), "decaenv::interpolate: expected CPU tensors");
    TORCH_CHECK(t->is_contiguous(), "decaenv::interpolate: expected contiguous tensors");
  }
}

}  // namespace

at::Tensor interpolate_cpu(const at::Tensor& pix_to_face, const at::Tensor& bary, const at::Tensor& face_attrs) {
  check_interpolate(pix_to_face, bary, face_attrs);
  const int64_t bp = pix_to_face.size(0), ba = face_attrs.size(0), B = std::max(bp, ba);
  const int64_t H = pix_to_face.size(1), W = pix_to_face.size(2), P = H * W;
  const int64_t F = face_attrs.size(1), D = face_attrs.size(3);
  at::Tensor out = empty_cpu({B, D + 1, H, W}, face_attrs.scalar_type());  // every element written below
  const int64_t* p2f = pix_to_face.data_ptr<int64_t>();
  const float* w = bary.data_ptr<float>();
  const float* attrs = face_attrs.data_ptr<float>();
  float* o = out.data_ptr<float>();
  std::atomic<int64_t> bad{-1};  // a face index out of range; reported after the parallel pass
  at::parallel_for(0, B * H, 8, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t b = row / H, y = row % H;
      const int64_t* frow = p2f + ((bp == 1 ? 0 : b) * H + y) * W;
      const float* wrow = w + ((bp == 1 ? 0 : b) * H + y) * W * 3;
      const float* abatch = attrs + (ba == 1 ? 0 : b) * F * 3 * D;
      float* obatch = o + b * (D + 1) * P + y * W;
      for (int64_t x = 0; x < W; ++x) {
        if (frow[x] >= F) bad.store(frow[x], std::memory_order_relaxed);
      }
      // one channel plane at a time: each output row is written in order (the row's faces and weights stay
      // in the L1 cache across the planes)
      for (int64_t c = 0; c < D; ++c) {
        float* orow = obatch + c * P;
        for (int64_t x = 0; x < W; ++x) {
          const int64_t f = frow[x];
          if (f < 0 || f >= F) {
            orow[x] = 0.0f;
            continue;
          }
          const float* a = abatch + f * 3 * D + c;
          float v = a[0] * wrow[3 * x];
          v = v + a[D] * wrow[3 * x + 1];
          v = v + a[2 * D] * wrow[3 * x + 2];
          orow[x] = v;
        }
      }
      float* mask = obatch + D * P;
      for (int64_t x = 0; x < W; ++x) mask[x] = (frow[x] >= 0 && frow[x] < F) ? 1.0f : 0.0f;
    }
  });
  TORCH_CHECK(bad.load() < 0, "decaenv::interpolate: fragments index face ", bad.load(), ", face_attrs have ", F);
  return out;
}

}  // namespace decaenv
