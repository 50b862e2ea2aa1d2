// decaenv summed-area table: the contract of the compiled kernel.
//
// Op `decaenv::summed_area(Tensor image, Tensor(a!) table) -> Tensor(a!)` (registered in ext.cpp, CPU only; the
// Python entry point is decaenv.runtime.detectors.mtcnn_ops.SummedAreaTable.fill, whose torch code computes the
// same integers wherever this kernel is not loaded).
//
// table[r, c, k] = the sum of image[:r, :c, k] (so the first row and column are 0): MTCNN's box means.
//
// Args:
//   image: (H, W, C) uint8, contiguous, on the CPU. table: (H + 1, W + 1, C) int32 or int64, contiguous, on the
//   CPU; int32 only where H × W × 255 < 2^31 (the sums then fit).
//
// Returns:
//   table.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor& summed_area_cpu(const at::Tensor& image, at::Tensor& table);

}  // namespace decaenv
