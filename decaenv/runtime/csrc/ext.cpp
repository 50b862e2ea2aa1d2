// The one registration unit of the decaenv extension: op schemas and their CPU/CUDA kernels.
//
// Loaded from Python with torch.ops.load_library (decaenv.runtime.rasterizer.extension); the ops are
// then torch.ops.decaenv.rasterize, torch.ops.decaenv._build_info, and torch.ops.decaenv.interpolate,
// torch.ops.decaenv.vertex_normals, torch.ops.decaenv.shade_directional, and the input side's
// torch.ops.decaenv.warp_bilinear, torch.ops.decaenv.png_unfilter, torch.ops.decaenv.summed_area,
// torch.ops.decaenv.box_means, torch.ops.decaenv.max_pool_cl and torch.ops.decaenv.nms_keep (CPU kernels only).
// The torch dispatcher routes each op to the kernel of the inputs' device.
#include <torch/library.h>

#include <string>

#include "box_means.h"
#include "interpolate.h"
#include "max_pool.h"
#include "nms.h"
#include "png.h"
#include "rasterize.h"
#include "shade.h"
#include "summed_area.h"
#include "vertex_normals.h"
#include "warp.h"

#define DECAENV_STR2(x) #x
#define DECAENV_STR(x) DECAENV_STR2(x)

#ifndef DECAENV_SOURCE_DIGEST
#define DECAENV_SOURCE_DIGEST unknown
#endif

namespace decaenv {

std::string build_info() {
  std::string info = "decaenv-rasterizer source=" DECAENV_STR(DECAENV_SOURCE_DIGEST);
#ifdef WITH_CUDA
  info += " cuda=1";
#else
  info += " cuda=0";
#endif
#if defined(__clang__)
  info += " compiler=clang-" __clang_version__;
#elif defined(__GNUC__)
  info += " compiler=gcc-" __VERSION__;
#elif defined(_MSC_VER)
  info += " compiler=msvc-" DECAENV_STR(_MSC_VER);
#endif
  return info;
}

}  // namespace decaenv

TORCH_LIBRARY(decaenv, m) {
  m.def("rasterize(Tensor face_verts, Tensor pix_x, Tensor pix_y) -> (Tensor, Tensor, Tensor)");
  m.def("interpolate(Tensor pix_to_face, Tensor bary, Tensor face_attrs) -> Tensor");
  m.def("vertex_normals(Tensor vertices, Tensor faces) -> Tensor");
  m.def(
      "shade_directional(Tensor normal_map, Tensor directions, Tensor intensities, Tensor grey, Tensor alpha, "
      "Tensor backdrop) -> Tensor");
  m.def("warp_bilinear(Tensor image, Tensor inverse, Tensor(a!) out) -> Tensor(a!)");
  m.def("png_unfilter(Tensor scanlines, int height, int width, int channels) -> Tensor");
  m.def("summed_area(Tensor image, Tensor(a!) table) -> Tensor(a!)");
  m.def("max_pool_cl(Tensor x, int kernel, int stride) -> Tensor");
  m.def("box_means(Tensor table, Tensor corners, Tensor inside, Tensor area) -> Tensor");
  m.def("nms_keep(Tensor boxes, float threshold, bool min_mode, Tensor groups) -> Tensor");
  m.def("_build_info() -> str", &decaenv::build_info);
}

TORCH_LIBRARY_IMPL(decaenv, CPU, m) {
  m.impl("rasterize", &decaenv::rasterize_cpu);
  m.impl("interpolate", &decaenv::interpolate_cpu);
  m.impl("vertex_normals", &decaenv::vertex_normals_cpu);
  m.impl("shade_directional", &decaenv::shade_directional_cpu);
  m.impl("warp_bilinear", &decaenv::warp_bilinear_cpu);
  m.impl("png_unfilter", &decaenv::png_unfilter_cpu);
  m.impl("summed_area", &decaenv::summed_area_cpu);
  m.impl("max_pool_cl", &decaenv::max_pool_cl_cpu);
  m.impl("box_means", &decaenv::box_means_cpu);
  m.impl("nms_keep", &decaenv::nms_keep_cpu);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(decaenv, CUDA, m) {
  m.impl("rasterize", &decaenv::rasterize_cuda);
}
#endif
