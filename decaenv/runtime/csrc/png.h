// decaenv PNG unfiltering: the contract of the compiled kernel.
//
// Op `decaenv::png_unfilter(Tensor scanlines, int height, int width, int channels) -> Tensor` (registered in
// ext.cpp, CPU only; the Python entry point is decaenv.runtime.png_fast.decode, which inflates the image data
// itself and falls back to libspng or Pillow wherever this kernel or the inflater is missing).
//
// The PNG specification's reconstruction of a non-interlaced 8-bit image: each of the `height` scanlines is a
// filter-type byte (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth) followed by width × channels filtered bytes; the
// bytes before the first pixel and the row above the first row count as 0.
//
// Args:
//   scanlines: (height × (1 + width × channels),) uint8, contiguous, on the CPU (the inflated IDAT stream).
//   channels: 3 (RGB) or 4 (RGBA; the alpha channel is dropped from the result).
//
// Returns:
//   (height, width, 3) uint8 RGB. A filter-type byte above 4 is an error naming its row.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor png_unfilter_cpu(const at::Tensor& scanlines, int64_t height, int64_t width, int64_t channels);

}  // namespace decaenv
