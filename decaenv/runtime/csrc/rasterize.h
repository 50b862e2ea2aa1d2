// decaenv rasterizer: the contract of the compiled kernels.
//
// Op `decaenv::rasterize(Tensor face_verts, Tensor pix_x, Tensor pix_y) -> (Tensor, Tensor, Tensor)`
// (registered in ext.cpp; the Python entry point is decaenv.runtime.rasterizer.rasterize).
//
// Args:
//   face_verts: (B, F, 3, 3) float32, contiguous: per face the (x, y, z) of its three vertices in the
//     raster frame, i.e. DECA's normalised image coordinates (x right, y down, z smaller = nearer), the
//     longer image axis already multiplied by long/short like DECA's pytorch3d wrapper does.
//   pix_x: (W,) float32, ascending: x of each pixel column centre in that frame.
//   pix_y: (H,) float32, ascending: y of each pixel row centre in that frame.
//   All three on the same device (CPU or CUDA).
//
// Returns:
//   pix_to_face: (B, H, W) int64, index in [0, F) of the face seen at each pixel, -1 where none.
//   bary: (B, H, W, 3) float32, screen-space barycentrics of that face (0 where none).
//   zbuf: (B, H, W) float32, barycentric-interpolated depth of that face (-1 where none).
//
// Semantics (identical in every backend, see raster_math.h and the Python docstring of
// decaenv.runtime.rasterizer.api): a face covers a pixel when the pixel centre lies inside its
// bounding box, all three barycentrics are > 0 and the depth is >= 0; faces with zmax < 0 or
// |area| <= 1e-8 are skipped; the nearest covering face wins, equal depths keep the lowest index.
// Deterministic: the result does not depend on the number of threads or on scheduling.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace decaenv {

using RasterOutput = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

// Tiled CPU kernel (at::parallel_for over image tiles).
RasterOutput rasterize_cpu(const at::Tensor& face_verts, const at::Tensor& pix_x, const at::Tensor& pix_y);

#ifdef WITH_CUDA
// CUDA kernel: a face pass with a 64-bit atomicMin on (depth bits << 32 | face), then a pixel pass.
RasterOutput rasterize_cuda(const at::Tensor& face_verts, const at::Tensor& pix_x, const at::Tensor& pix_y);
#endif

// A one-line description of this build (CUDA or not, compiler, source digest), for diagnostics.
std::string build_info();

}  // namespace decaenv
