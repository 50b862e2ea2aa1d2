// decaenv shape-image shading: the contract of the compiled kernel.
//
// Op `decaenv::shade_directional(Tensor normal_map, Tensor directions, Tensor intensities, Tensor grey,
// Tensor alpha, Tensor backdrop) -> Tensor` (registered in ext.cpp, CPU only; the Python entry point is
// decaenv.runtime.shading.shape_shading, which uses the kernel for a shape of inputs only where a check on
// its first call in the process found it equal to the torch path, bit for bit).
//
// Args (float32, contiguous, on the CPU):
//   normal_map: (B, 3, H, W). directions: (B, L, 3) light directions (already normalised).
//   intensities: (B, L, 3) RGB intensity per light. grey, alpha: (B, 1, H, W). backdrop: (B, 3, H, W).
//
// Returns:
//   (B, 3, H, W): grey * light * alpha + backdrop * (1 - alpha), where per pixel and channel c
//   light = (sum over l of clamp(n . d_l, 0, 1) * intensity_lc) / L, the dot product summed x, y, z and the
//   lights summed in order, every operation rounded on its own (no fused multiply-add), as torch's CPU
//   `einsum` / elementwise kernels compute DECA's expressions.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor shade_directional_cpu(const at::Tensor& normal_map, const at::Tensor& directions,
                                 const at::Tensor& intensities, const at::Tensor& grey, const at::Tensor& alpha,
                                 const at::Tensor& backdrop);

}  // namespace decaenv
