// decaenv channels-last max pooling: the contract of the compiled kernel.
//
// Op `decaenv::max_pool_cl(Tensor x, int kernel, int stride) -> Tensor` (registered in ext.cpp, CPU only; the
// Python entry point is decaenv.runtime.detectors.mtcnn_ops.MaxPool, MTCNN's pooling layers, which call torch's
// `max_pool2d` wherever this kernel is not loaded or does not apply).
//
// torch's `max_pool2d(x, kernel, stride, padding=0, ceil_mode=True)`: output size ceil((H - k) / s) + 1, less one
// where the last window would start past the input; windows clipped at the edge. Each output is the first
// maximum of its window in row-major order (`v > max`, and a NaN wins, as torch's CPU kernel compares), so the
// values, a -0/+0 tie and NaN included, are torch's.
//
// Args:
//   x: (N, C, H, W) float32 on the CPU in channels-last memory (x.permute(0, 2, 3, 1) contiguous).
//   kernel, stride: ≥ 1, kernel ≤ H and W.
//
// Returns:
//   (N, C, Ho, Wo) float32, channels-last.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor max_pool_cl_cpu(const at::Tensor& x, int64_t kernel, int64_t stride);

}  // namespace decaenv
