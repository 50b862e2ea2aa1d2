// decaenv greedy non-maximum suppression: the contract of the compiled kernel.
//
// Op `decaenv::nms_keep(Tensor boxes, float threshold, bool min_mode, Tensor groups) -> Tensor` (registered in
// ext.cpp, CPU only; the Python entry point is decaenv.runtime.detectors.mtcnn_ops.nms, whose torch code keeps
// the same boxes wherever this kernel is not loaded).
//
// boxes are in priority order (best score first). Box i is kept when no kept box j < i of the same group
// overlaps it by more than `threshold`:
//   area(b)  = max(x2 - x1, 0) · max(y2 - y1, 0)
//   w        = max(min(x2_j, x2_i) - max(x1_j, x1_i), 0), h likewise, inter = w · h
//   denom    = min(area_j, area_i) (min_mode) or (area_j + area_i) - inter
//   overlap  = inter / max(denom, 1e-12) where denom > 0, else 0
// in float64, every operation rounded on its own (built with -ffp-contract=off) and NaN propagated through min
// and max as torch.minimum/maximum/clamp_min do, so each comparison is the torch code's.
//
// Args:
//   boxes: (N, 4) float64 x1 y1 x2 y2, contiguous, on the CPU. groups: (N,) int64 (boxes only suppress boxes
//   of their own group) or (0,) (one group), contiguous, on the CPU.
//
// Returns:
//   (N,) bool: which boxes are kept.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor nms_keep_cpu(const at::Tensor& boxes, double threshold, bool min_mode, const at::Tensor& groups);

}  // namespace decaenv
