// decaenv interpolation: the contract of the compiled kernel.
//
// Op `decaenv::interpolate(Tensor pix_to_face, Tensor bary, Tensor face_attrs) -> Tensor` (registered in
// ext.cpp, CPU only; the Python entry point is decaenv.runtime.rasterizer.interpolate, which uses it for
// float32 CPU tensors when the extension is loaded and computes the same numbers in torch otherwise).
//
// Args:
//   pix_to_face: (Bp, H, W) int64, from `rasterize` (-1 where no face).
//   bary: (Bp, H, W, 3) float32 barycentrics of that face.
//   face_attrs: (Ba, F, 3, D) float32, the attribute of corner k of face f at [b, f, k].
//   Contiguous; Bp and Ba equal, or either is 1 (broadcast).
//
// Returns:
//   (max(Bp, Ba), D + 1, H, W) float32: per covered pixel (bary_0 * a_0 + bary_1 * a_1) + bary_2 * a_2
//   (each product rounded, summed in corner order), 0 elsewhere; channel D is the coverage mask (1 or 0).
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor interpolate_cpu(const at::Tensor& pix_to_face, const at::Tensor& bary, const at::Tensor& face_attrs);

}  // namespace decaenv
