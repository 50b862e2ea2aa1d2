// CPU crop warp (the contract is in ../warp.h).
//
// One pass over the output pixels computing, per pixel, the operations numpy's vectorised code performs
// across all of them (decaenv/runtime/warp.py), then one clipping pass. Serial: a 224 × 224 crop takes a
// fraction of a millisecond, and the callers (input worker processes, input threads) each warp their own.
#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>

#include "../warp.h"

namespace decaenv {

namespace {

void check_warp(const at::Tensor& image, const at::Tensor& inverse, const at::Tensor& out) {
  TORCH_CHECK(image.dim() == 3 && image.scalar_type() == at::kByte && image.is_contiguous() && image.device().is_cpu(),
              "decaenv::warp_bilinear: image must be a contiguous (H, W, C) uint8 CPU tensor, got ", image.sizes(),
              " ", image.scalar_type());
  TORCH_CHECK(image.size(0) > 0 && image.size(1) > 0 && image.size(2) > 0, "decaenv::warp_bilinear: empty image ",
              image.sizes());
  TORCH_CHECK(inverse.dim() == 2 && inverse.size(0) == 3 && inverse.size(1) == 3 &&
                  inverse.scalar_type() == at::kDouble && inverse.is_contiguous() && inverse.device().is_cpu(),
              "decaenv::warp_bilinear: inverse must be a contiguous (3, 3) float64 CPU tensor, got ",
              inverse.sizes(), " ", inverse.scalar_type());
  TORCH_CHECK(out.dim() == 3 && out.size(0) == out.size(1) && out.size(0) > 0 && out.size(2) == image.size(2) &&
                  out.scalar_type() == at::kFloat && out.is_contiguous() && out.device().is_cpu(),
              "decaenv::warp_bilinear: out must be a contiguous (S, S, C) float32 CPU tensor with the image's ",
              image.size(2), " channels, got ", out.sizes(), " ", out.scalar_type());
}

// floor(v), without a call into libm where the build targets plain x86-64 (no rounding instruction): the
// truncation of a double of magnitude below 2^62 to an integer is exact, and one step down makes it the floor.
inline double floor_of(double v) {
  if (!(v > -4.0e18 && v < 4.0e18)) return std::floor(v);  // NaN, infinities, huge values
  const double t = static_cast<double>(static_cast<int64_t>(v));
  return t > v ? t - 1.0 : t;
}

struct Source {
  const uint8_t* pixels;
  int64_t h, w, c;
  // The pixel at (r, col), whole numbers held in doubles (or NaN, or huge), or nullptr outside the image.
  const uint8_t* at(double r, double col) const {
    if (!(r >= 0.0 && r < static_cast<double>(h) && col >= 0.0 && col < static_cast<double>(w))) return nullptr;
    return pixels + (static_cast<int64_t>(r) * w + static_cast<int64_t>(col)) * c;
  }
};

// v / 255 for every 8-bit v: the quotients numpy divides out, looked up (a division per neighbour and
// channel was most of the kernel's time).
struct Quotients {
  double of[256];
  Quotients() {
    for (int v = 0; v < 256; ++v) of[v] = static_cast<double>(v) / 255.0;
  }
};
const Quotients kQuotients;

// A neighbour's channel k divided by 255, 0 outside the image.
inline double value_of(const uint8_t* pixel, int64_t k) {
  return pixel != nullptr ? kQuotients.of[pixel[k]] : 0.0;
}

struct Flags {
  bool le0 = false, ge0 = false, nan = false;
  void see(double v) {
    le0 |= v <= 0.0;
    ge0 |= v >= 0.0;
    nan |= v != v;
  }
};

// The output pixel (x, y)'s C values, unclipped, into out[0 .. C).
void warp_pixel(const Source& src, const double* m, bool projective, double x, double y, float* out, Flags& flags) {
  double col = m[0] * x;
  col = col + m[1] * y;
  col = col + m[2];
  double row = m[3] * x;
  row = row + m[4] * y;
  row = row + m[5];
  if (projective) {
    double z = m[6] * x;
    z = z + m[7] * y;
    z = z + m[8];
    col = col / z;
    row = row / z;
  }
  const double r0 = floor_of(row), c0 = floor_of(col);
  const double dr = row - r0, dc = col - c0;
  const double left = 1.0 - dc, up = 1.0 - dr;
  const uint8_t *p00 = src.at(r0, c0), *p01 = src.at(r0, c0 + 1.0);
  const uint8_t *p10 = src.at(r0 + 1.0, c0), *p11 = src.at(r0 + 1.0, c0 + 1.0);
  for (int64_t k = 0; k < src.c; ++k) {
    const double top = value_of(p00, k) * left + value_of(p01, k) * dc;
    const double bottom = value_of(p10, k) * left + value_of(p11, k) * dc;
    const double value = top * up + bottom * dr;
    flags.see(value);
    out[k] = static_cast<float>(value);
  }
}

}  // namespace

at::Tensor& warp_bilinear_cpu(const at::Tensor& image, const at::Tensor& inverse, at::Tensor& out) {
  check_warp(image, inverse, out);
  const Source src{image.data_ptr<uint8_t>(), image.size(0), image.size(1), image.size(2)};
  const double* m = inverse.data_ptr<double>();
  const bool projective = !(m[6] == 0.0 && m[7] == 0.0 && m[8] == 1.0);
  const int64_t size = out.size(0), count = src.h * src.w * src.c;
  float* dst = out.data_ptr<float>();
  Flags flags;
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      float* pixel_out = dst + (y * size + x) * src.c;
      warp_pixel(src, m, projective, static_cast<double>(x), static_cast<double>(y), pixel_out, flags);
    }
  }
  uint8_t lowest = 255, highest = 0;
  for (int64_t i = 0; i < count; ++i) {
    lowest = src.pixels[i] < lowest ? src.pixels[i] : lowest;
    highest = src.pixels[i] > highest ? src.pixels[i] : highest;
  }
  double low = static_cast<double>(lowest) / 255.0, high = static_cast<double>(highest) / 255.0;
  if (!(low <= 0.0 && 0.0 <= high) && !flags.nan && flags.le0 && flags.ge0) {  // skimage: the constant 0 is kept
    low = low < 0.0 ? low : 0.0;
    high = high > 0.0 ? high : 0.0;
  }
  // Clipping after rounding to float32 with rounded bounds gives what rounding the clipped doubles gives
  // (rounding is monotonic); NaN stays NaN, as in numpy's clip.
  const float lo = static_cast<float>(low), hi = static_cast<float>(high);
  for (int64_t i = 0, n = size * size * src.c; i < n; ++i) {
    const float v = dst[i];
    dst[i] = v < lo ? lo : (v > hi ? hi : v);
  }
  return out;
}

}  // namespace decaenv
