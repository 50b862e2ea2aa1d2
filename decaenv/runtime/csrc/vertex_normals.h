// decaenv vertex normals: the contract of the compiled kernel.
//
// Op `decaenv::vertex_normal_sums(Tensor vertices, Tensor faces) -> Tensor` (registered in ext.cpp, CPU
// only; the Python entry point is decaenv.runtime.mesh.vertex_normals, which normalises the sums and uses
// the kernel only where a one-time check in the process found it equal to its torch path, bit for bit).
//
// Args:
//   vertices: (B, V, 3) float32. faces: (F, 3) int64, every index in [0, V). Contiguous, on the CPU.
//
// Returns:
//   (V, B, 3) float32: per vertex the sum of the cross products DECA's vertex normals add, in DECA's
//   order (corner 1 of every face in face order, then corner 2, then corner 0; corner 1 of face (a, b, c)
//   adds (c - b) x (a - b), corner 2 (a - c) x (b - c), corner 0 (b - a) x (c - a)), each cross product
//   component computed as torch's CPU kernel does on x86 (u1 * v2 - u2 * v1 with the first product fused
//   into the subtraction); 0 for vertices no face uses.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor vertex_normal_sums_cpu(const at::Tensor& vertices, const at::Tensor& faces);

}  // namespace decaenv
