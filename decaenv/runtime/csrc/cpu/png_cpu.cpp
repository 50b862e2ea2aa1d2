// CPU PNG unfiltering (the contract is in ../png.h).
//
// The rows are copied out of the scanlines and reconstructed in place, into the result (RGB) or a scratch image
// (RGBA, then copied without alpha). Serial: a row depends on the one above; an input worker decodes its own
// image.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "../png.h"
#include "alloc.h"

namespace decaenv {

namespace {

// The Paeth predictor of left a, above b, upper left c, without branches (they would be mispredicted on
// photos): p = a + b - c, so |p - a| = |b - c|, |p - b| = |a - c|, |p - c| = |a + b - 2c|; ties prefer a, then b.
inline int paeth(int a, int b, int c) {
  const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
  const int take_b = -static_cast<int>(pb <= pc), take_a = -static_cast<int>((pa <= pb) & (pa <= pc));  // masks
  const int b_or_c = (b & take_b) | (c & ~take_b);
  return (a & take_a) | (b_or_c & ~take_a);
}

// One Paeth row reconstructed in place; above: the reconstructed row over it. Each pixel needs its left
// neighbour reconstructed first, so a row is a chain of dependent steps, the channels side by side; the left (a)
// and upper-left (c) values stay in registers.
template <int kBpp>
void paeth_row(uint8_t* row, const uint8_t* above, int64_t n) {
  int a[kBpp] = {}, c[kBpp] = {};
  for (int64_t i = 0; i < n; i += kBpp) {
    for (int k = 0; k < kBpp; ++k) {
      const int b = above[i + k];
      const int value = (row[i + k] + paeth(a[k], b, c[k])) & 0xff;
      row[i + k] = static_cast<uint8_t>(value);
      a[k] = value;
      c[k] = b;
    }
  }
}

// Reconstructs one row of n bytes in place; prev is the reconstructed row above (zeros for the first).
template <int kBpp>
void unfilter_row(int kind, uint8_t* row, const uint8_t* prev, int64_t n) {
  switch (kind) {
    case 0:
      return;
    case 1:
      for (int64_t i = kBpp; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + row[i - kBpp]);
      return;
    case 2:
      for (int64_t i = 0; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + prev[i]);
      return;
    case 3:
      for (int64_t i = 0; i < kBpp && i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + (prev[i] >> 1));
      for (int64_t i = kBpp; i < n; ++i) row[i] = static_cast<uint8_t>(row[i] + ((row[i - kBpp] + prev[i]) >> 1));
      return;
    default:  // 4, Paeth (the caller has refused anything above 4)
      paeth_row<kBpp>(row, prev, n);
  }
}

// The image's rows reconstructed into out ((height, n) bytes, n = width × kBpp).
template <int kBpp>
void unfilter_image(const uint8_t* in, int64_t height, int64_t n, uint8_t* out) {
  const std::vector<uint8_t> zeros(n, 0);
  for (int64_t y = 0; y < height; ++y) {
    const uint8_t kind = in[y * (n + 1)];
    TORCH_CHECK(kind <= 4, "decaenv::png_unfilter: row ", y, " has filter type ", static_cast<int>(kind),
                " (0 to 4 exist)");
    std::memcpy(out + y * n, in + y * (n + 1) + 1, n);
  }
  for (int64_t y = 0; y < height; ++y) {
    unfilter_row<kBpp>(in[y * (n + 1)], out + y * n, y > 0 ? out + (y - 1) * n : zeros.data(), n);
  }
}

}  // namespace

at::Tensor png_unfilter_cpu(const at::Tensor& scanlines, int64_t height, int64_t width, int64_t channels) {
  TORCH_CHECK(channels == 3 || channels == 4, "decaenv::png_unfilter: channels must be 3 or 4, got ", channels);
  TORCH_CHECK(height > 0 && width > 0, "decaenv::png_unfilter: empty image ", height, " x ", width);
  TORCH_CHECK(scanlines.dim() == 1 && scanlines.scalar_type() == at::kByte && scanlines.is_contiguous() &&
                  scanlines.device().is_cpu(),
              "decaenv::png_unfilter: scanlines must be a contiguous 1-D uint8 CPU tensor");
  TORCH_CHECK(width <= (INT64_MAX / 8) / height && scanlines.numel() == height * (1 + width * channels),
              "decaenv::png_unfilter: ", scanlines.numel(), " bytes of scanlines, expected ", height, " x (1 + ",
              width, " x ", channels, ")");
  const uint8_t* in = scanlines.data_ptr<uint8_t>();
  at::Tensor rgb = empty_cpu({height, width, 3}, at::kByte);
  if (channels == 3) {
    unfilter_image<3>(in, height, width * 3, rgb.data_ptr<uint8_t>());
    return rgb;
  }
  std::vector<uint8_t> rgba(static_cast<size_t>(height * width * 4));
  unfilter_image<4>(in, height, width * 4, rgba.data());
  uint8_t* out = rgb.data_ptr<uint8_t>();
  for (int64_t p = 0; p < height * width; ++p) std::memcpy(out + 3 * p, rgba.data() + 4 * p, 3);  // alpha dropped
  return rgb;
}

}  // namespace decaenv
