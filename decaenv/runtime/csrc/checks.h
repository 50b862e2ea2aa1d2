// Input checks shared by the CPU and CUDA launchers: readable messages instead of crashes.
#pragma once

#include <ATen/core/Tensor.h>

namespace decaenv {

inline void check_inputs(const at::Tensor& face_verts, const at::Tensor& pix_x, const at::Tensor& pix_y,
                         c10::DeviceType device) {
  TORCH_CHECK(face_verts.dim() == 4 && face_verts.size(2) == 3 && face_verts.size(3) == 3,
              "decaenv::rasterize: face_verts must have shape (B, F, 3, 3), got ", face_verts.sizes());
  TORCH_CHECK(pix_x.dim() == 1 && pix_y.dim() == 1,
              "decaenv::rasterize: pix_x and pix_y must be 1-D, got ", pix_x.sizes(), " and ", pix_y.sizes());
  for (const at::Tensor* t : {&face_verts, &pix_x, &pix_y}) {
    TORCH_CHECK(t->scalar_type() == at::kFloat, "decaenv::rasterize: expected float32 tensors, got ",
                t->scalar_type());
    TORCH_CHECK(t->is_contiguous(), "decaenv::rasterize: expected contiguous tensors");
    TORCH_CHECK(t->device().type() == device && t->device() == face_verts.device(),
                "decaenv::rasterize: all tensors must be on ", face_verts.device(), ", got ", t->device());
  }
  TORCH_CHECK(face_verts.size(1) <= INT32_MAX, "decaenv::rasterize: at most 2^31-1 faces per mesh");
}

}  // namespace decaenv
