// decaenv vertex normals: the contract of the compiled kernel.
//
// Op `decaenv::vertex_normals(Tensor vertices, Tensor faces) -> Tensor` (registered in ext.cpp, CPU only;
// the Python entry point is decaenv.runtime.mesh.vertex_normals, which uses the kernel only where a
// one-time check in the process found it equal to its torch path, bit for bit).
//
// Args:
//   vertices: (B, V, 3) float32. faces: (F, 3) int64, every index in [0, V). Contiguous, on the CPU.
//
// Returns:
//   (B, V, 3) float32, DECA's vertex normals: per vertex the sum of the cross products DECA adds, in DECA's
//   order (corner 1 of every face in face order, then corner 2, then corner 0; corner 1 of face (a, b, c)
//   adds (c - b) x (a - b), corner 2 (a - c) x (b - c), corner 0 (b - a) x (c - a)), divided by
//   max(|sum|, 1e-6) (F.normalize); 0 for vertices no face uses. Rounded as torch's x86 CPU kernels round:
//   each cross product component u_i * v_j - u_j * v_i with the first product fused into the subtraction,
//   |s| = sqrt(fma(s2, s2, fma(s1, s1, s0 * s0))).
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

at::Tensor vertex_normals_cpu(const at::Tensor& vertices, const at::Tensor& faces);

}  // namespace decaenv
