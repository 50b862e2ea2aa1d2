// CPU box means from a summed-area table (the contract is in ../box_means.h).
//
// One pass over the cells: the four corner rows gathered, summed exactly in 64-bit integers, and normalised.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "../box_means.h"
#include "alloc.h"

namespace decaenv {

namespace {

template <typename T>
void means(const T* table, int64_t rows, int64_t c, const int64_t* corners, int64_t p_count, const float* inside,
           const float* area, float* out) {
  const int64_t *i0 = corners, *i1 = corners + p_count, *i2 = corners + 2 * p_count, *i3 = corners + 3 * p_count;
  for (int64_t p = 0; p < p_count; ++p) {
    TORCH_CHECK(i0[p] >= 0 && i0[p] < rows && i1[p] >= 0 && i1[p] < rows && i2[p] >= 0 && i2[p] < rows &&
                    i3[p] >= 0 && i3[p] < rows,
                "decaenv::box_means: cell ", p, " has a corner outside the table's ", rows, " rows");
    const T *a = table + i0[p] * c, *b = table + i1[p] * c, *d = table + i2[p] * c, *e = table + i3[p] * c;
    const float offset = 127.5f * inside[p], scale = 128.0f * area[p];
    for (int64_t k = 0; k < c; ++k) {
      const int64_t sum = static_cast<int64_t>(a[k]) - b[k] - d[k] + e[k];
      out[p * c + k] = (static_cast<float>(sum) - offset) / scale;
    }
  }
}

}  // namespace

at::Tensor box_means_cpu(const at::Tensor& table, const at::Tensor& corners, const at::Tensor& inside,
                         const at::Tensor& area) {
  TORCH_CHECK(table.dim() == 2 && (table.scalar_type() == at::kInt || table.scalar_type() == at::kLong) &&
                  table.is_contiguous() && table.device().is_cpu(),
              "decaenv::box_means: table must be a contiguous (R, C) int32 or int64 CPU tensor, got ", table.sizes(),
              " ", table.scalar_type());
  TORCH_CHECK(corners.dim() == 2 && corners.size(0) == 4 && corners.scalar_type() == at::kLong &&
                  corners.is_contiguous() && corners.device().is_cpu(),
              "decaenv::box_means: corners must be a contiguous (4, P) int64 CPU tensor, got ", corners.sizes(), " ",
              corners.scalar_type());
  const int64_t p_count = corners.size(1);
  for (const at::Tensor* t : {&inside, &area}) {
    TORCH_CHECK(t->dim() == 1 && t->size(0) == p_count && t->scalar_type() == at::kFloat && t->is_contiguous() &&
                    t->device().is_cpu(),
                "decaenv::box_means: inside and area must be contiguous (P,) float32 CPU tensors with P = ", p_count,
                ", got ", t->sizes(), " ", t->scalar_type());
  }
  const int64_t rows = table.size(0), c = table.size(1);
  at::Tensor out = empty_cpu({p_count, c}, at::kFloat);
  const int64_t* idx = corners.data_ptr<int64_t>();
  if (table.scalar_type() == at::kInt) {
    means(table.data_ptr<int32_t>(), rows, c, idx, p_count, inside.data_ptr<float>(), area.data_ptr<float>(),
          out.data_ptr<float>());
  } else {
    means(table.data_ptr<int64_t>(), rows, c, idx, p_count, inside.data_ptr<float>(), area.data_ptr<float>(),
          out.data_ptr<float>());
  }
  return out;
}

}  // namespace decaenv
