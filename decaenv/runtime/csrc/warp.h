// decaenv crop warp: the contract of the compiled kernel.
//
// Op `decaenv::warp_bilinear(Tensor image, Tensor inverse, Tensor(a!) out) -> Tensor(a!)` (registered in
// ext.cpp, CPU only; the Python entry point is decaenv.runtime.warp.bilinear_warp, whose numpy code computes
// the same numbers and is used wherever the kernel is not loaded).
//
// skimage's `warp(image / 255, inverse, output_shape=(S, S), order=1)` (bilinear, constant 0, clip=True), as
// DECA crops a face. Every output pixel (x = column, y = row) reads its source position
// col = (H00·x + H01·y) + H02 and row = (H10·x + H11·y) + H12 (each divided by (H20·x + H21·y) + H22 unless the
// third row is exactly (0, 0, 1)), its four 8-bit neighbours divided by 255 (0 outside the image), and sums
// top = (1 - dc)·p00 + dc·p01, bottom = (1 - dc)·p10 + dc·p11, value = (1 - dr)·top + dr·bottom in float64,
// each operation rounded on its own (built with -ffp-contract=off). The values are then clipped to
// [min, max] of image / 255, widened to include 0 when the output holds 0 and no NaN (skimage's clip), and
// rounded to float32.
//
// Args:
//   image: (H, W, C) uint8, contiguous, on the CPU. inverse: (3, 3) float64, contiguous: output (x, y, 1) →
//   image pixels. out: (S, S, C) float32, contiguous, S ≥ 1.
//
// Returns:
//   out.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor& warp_bilinear_cpu(const at::Tensor& image, const at::Tensor& inverse, at::Tensor& out);

}  // namespace decaenv
