// CPU summed-area table (the contract is in ../summed_area.h).
//
// One pass: each row's running sums along W added to the finished row above (integers: exact in any order),
// the channels of a pixel side by side.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <cstring>

#include "../summed_area.h"

namespace decaenv {

namespace {

// Row r's running sums along W for kC channels side by side, each added to the finished row above.
template <typename T, int kC>
void fill_rows(const uint8_t* image, int64_t h, int64_t w, T* table) {
  const int64_t stride = (w + 1) * kC;
  for (int64_t r = 1; r <= h; ++r) {
    T* row = table + r * stride;
    const T* above = row - stride;
    const uint8_t* pixels = image + (r - 1) * w * kC;
    T running[kC] = {};
    for (int k = 0; k < kC; ++k) row[k] = 0;  // column 0
    for (int64_t x = 0; x < w; ++x) {
      for (int k = 0; k < kC; ++k) {
        running[k] += pixels[x * kC + k];
        row[(x + 1) * kC + k] = running[k] + above[(x + 1) * kC + k];
      }
    }
  }
}

template <typename T>
void fill_table(const uint8_t* image, int64_t h, int64_t w, int64_t c, T* table) {
  std::memset(table, 0, sizeof(T) * (w + 1) * c);  // row 0
  if (c == 3) return fill_rows<T, 3>(image, h, w, table);
  if (c == 1) return fill_rows<T, 1>(image, h, w, table);
  const int64_t stride = (w + 1) * c;  // any other channel count: one channel at a time
  for (int64_t r = 1; r <= h; ++r) {
    T* row = table + r * stride;
    const T* above = row - stride;
    const uint8_t* pixels = image + (r - 1) * w * c;
    for (int64_t k = 0; k < c; ++k) {
      T running = 0;
      row[k] = 0;
      for (int64_t x = 0; x < w; ++x) {
        running += pixels[x * c + k];
        row[(x + 1) * c + k] = running + above[(x + 1) * c + k];
      }
    }
  }
}

}  // namespace

at::Tensor& summed_area_cpu(const at::Tensor& image, at::Tensor& table) {
  TORCH_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte && image.is_contiguous() && image.device().is_cpu(),
              "decaenv::summed_area: image must be a contiguous (H, W, C) uint8 CPU tensor, got ", image.sizes(), " ",
              image.scalar_type());
  const int64_t h = image.size(0), w = image.size(1), c = image.size(2);
  TORCH_CHECK(table.dim() == 3 && table.size(0) == h + 1 && table.size(1) == w + 1 && table.size(2) == c &&
                  table.is_contiguous() && table.device().is_cpu(),
              "decaenv::summed_area: table must be a contiguous (H + 1, W + 1, C) CPU tensor, got ", table.sizes(),
              " for an image of ", image.sizes());
  const uint8_t* pixels = image.data_ptr<uint8_t>();
  if (table.scalar_type() == at::kLong) {
    fill_table(pixels, h, w, c, table.data_ptr<int64_t>());
  } else {
    TORCH_CHECK(table.scalar_type() == at::kInt, "decaenv::summed_area: table must be int32 or int64, got ",
                table.scalar_type());
    TORCH_CHECK(h * w * 255 < (int64_t{1} << 31), "decaenv::summed_area: int32 sums would overflow for ",
                image.sizes(), " (use an int64 table)");
    fill_table(pixels, h, w, c, table.data_ptr<int32_t>());
  }
  return table;
}

}  // namespace decaenv
