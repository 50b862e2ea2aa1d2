// decaenv box means from a summed-area table: the contract of the compiled kernel.
//
// Op `decaenv::box_means(Tensor table, Tensor corners, Tensor inside, Tensor area) -> Tensor` (registered in
// ext.cpp, CPU only; the Python entry point is decaenv.runtime.detectors.mtcnn_ops.box_means, whose torch code
// computes the same numbers wherever this kernel is not loaded).
//
// MTCNN's normalised cell means: for every cell p and channel k,
//   sum = table[corners[0, p], k] - table[corners[1, p], k] - table[corners[2, p], k] + table[corners[3, p], k]
//   out[p, k] = (float(sum) - 127.5 · inside[p]) / (128 · area[p])
// in float32, every operation rounded on its own (built with -ffp-contract=off): the conversion of sums below
// 2^24 and the two products are exact, the subtraction and the division are rounded once each, as torch's
// elementwise kernels round them.
//
// Args:
//   table: (R, C) int32 or int64, contiguous, on the CPU (a summed-area table's rows). corners: (4, P) int64,
//   contiguous, every entry in [0, R). inside, area: (P,) float32, contiguous.
//
// Returns:
//   (P, C) float32.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor box_means_cpu(const at::Tensor& table, const at::Tensor& corners, const at::Tensor& inside,
                         const at::Tensor& area);

}  // namespace decaenv
