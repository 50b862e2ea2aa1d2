// CUDA rasterizer: deterministic by construction.
//
// Pass 1 (one thread per face): for every covered pixel of the face's bounding box, a 64-bit
//   atomicMin on key = (float bits of the depth << 32) | face index. Depths are >= +0, whose bit
//   patterns order like their values, so the minimum key is the nearest face and, on equal depths,
//   the lowest face index: no lost-write races, and the same answer on every run.
// Pass 2 (one thread per pixel): decode the winner and recompute its barycentrics and depth with the
//   same float expressions as pass 1 (raster_math.h), then write the outputs.
// The translation unit must be compiled with `--fmad=false` so that the results equal the CPU kernel's
// bit for bit (the build does this; the compile-only test checks the flag is honoured).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "../checks.h"
#include "../raster_math.h"
#include "../rasterize.h"

// ATen's AT_CUDA_CHECK (ATen/cuda/Exceptions.h) is C10_CUDA_CHECK; that header also pulls in the cuBLAS and
// cuSPARSE headers, which this kernel does not need and minimal toolkits do not ship.
#ifndef AT_CUDA_CHECK
#define AT_CUDA_CHECK(EXPR) C10_CUDA_CHECK(EXPR)
#endif

namespace decaenv {
namespace {

constexpr int kThreads = 256;
constexpr unsigned long long kEmpty = ~0ull;

__global__ void face_pass_kernel(const float* __restrict__ face_verts, const float* __restrict__ xs,
                                 const float* __restrict__ ys, int64_t B, int64_t F, int64_t H, int64_t W,
                                 unsigned long long* __restrict__ keys) {
  const int64_t total = B * F;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    Face f;
    load_face(face_verts + 9 * i, f);
    if (!f.valid) continue;
    int64_t c0, c1, r0, r1;
    pixel_range(xs, W, f.xmin, f.xmax, c0, c1);
    pixel_range(ys, H, f.ymin, f.ymax, r0, r1);
    const int64_t b = i / F;
    const unsigned long long face = static_cast<unsigned long long>(i - b * F);
    for (int64_t row = r0; row <= r1; ++row) {
      float q0, q1, q2;
      row_terms(f, ys[row], q0, q1, q2);
      unsigned long long* line = keys + (b * H + row) * W;
      for (int64_t col = c0; col <= c1; ++col) {
        float w0, w1, w2, z;
        if (!cover(f, xs[col], q0, q1, q2, w0, w1, w2, z)) continue;
        const unsigned long long key = (static_cast<unsigned long long>(__float_as_uint(z)) << 32) | face;
        // Early depth rejection: keys only decrease, so a stale read can only let a useless atomic through.
        if (key < line[col]) atomicMin(line + col, key);
      }
    }
  }
}

__global__ void pixel_pass_kernel(const float* __restrict__ face_verts, const float* __restrict__ xs,
                                  const float* __restrict__ ys, int64_t B, int64_t F, int64_t H, int64_t W,
                                  const unsigned long long* __restrict__ keys, int64_t* __restrict__ p2f,
                                  float* __restrict__ bary, float* __restrict__ zbuf) {
  const int64_t total = B * H * W;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const unsigned long long key = keys[i];
    float w0 = 0.0f, w1 = 0.0f, w2 = 0.0f, z = -1.0f;
    int64_t face = -1;
    if (key != kEmpty) {
      face = static_cast<int64_t>(key & 0xffffffffull);
      const int64_t b = i / (H * W), row = (i / W) % H, col = i % W;
      Face f;
      load_face(face_verts + 9 * (b * F + face), f);
      float q0, q1, q2;
      row_terms(f, ys[row], q0, q1, q2);
      cover(f, xs[col], q0, q1, q2, w0, w1, w2, z);  // true by construction: it won pass 1
    }
    p2f[i] = face;
    zbuf[i] = z;
    bary[3 * i + 0] = w0;
    bary[3 * i + 1] = w1;
    bary[3 * i + 2] = w2;
  }
}

int blocks_for(int64_t n) {
  const int64_t wanted = (n + kThreads - 1) / kThreads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(wanted, 1 << 20)));
}

}  // namespace

RasterOutput rasterize_cuda(const at::Tensor& face_verts, const at::Tensor& pix_x, const at::Tensor& pix_y) {
  check_inputs(face_verts, pix_x, pix_y, c10::DeviceType::CUDA);
  const c10::cuda::CUDAGuard device_guard(face_verts.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t B = face_verts.size(0), F = face_verts.size(1);
  const int64_t H = pix_y.size(0), W = pix_x.size(0);
  at::Tensor p2f = at::empty({B, H, W}, face_verts.options().dtype(at::kLong));
  at::Tensor bary = at::empty({B, H, W, 3}, face_verts.options());
  at::Tensor zbuf = at::empty({B, H, W}, face_verts.options());
  if (B * H * W == 0) return {p2f, bary, zbuf};

  // -1 as int64 is all bits set: the empty key.
  at::Tensor keys = at::full({B, H, W}, -1, face_verts.options().dtype(at::kLong));
  auto* key_ptr = reinterpret_cast<unsigned long long*>(keys.data_ptr<int64_t>());
  if (B * F > 0) {
    face_pass_kernel<<<blocks_for(B * F), kThreads, 0, stream>>>(
        face_verts.data_ptr<float>(), pix_x.data_ptr<float>(), pix_y.data_ptr<float>(), B, F, H, W, key_ptr);
    AT_CUDA_CHECK(cudaGetLastError());
  }
  pixel_pass_kernel<<<blocks_for(B * H * W), kThreads, 0, stream>>>(
      face_verts.data_ptr<float>(), pix_x.data_ptr<float>(), pix_y.data_ptr<float>(), B, F, H, W, key_ptr,
      p2f.data_ptr<int64_t>(), bary.data_ptr<float>(), zbuf.data_ptr<float>());
  AT_CUDA_CHECK(cudaGetLastError());
  return {p2f, bary, zbuf};
}

}  // namespace decaenv
