// CPU greedy non-maximum suppression (the contract is in ../nms.h).
//
// One pass in priority order against the boxes kept so far: O(N · kept), no N × N matrix.
#include <ATen/core/Tensor.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../nms.h"
#include "alloc.h"

namespace decaenv {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// torch.minimum / torch.maximum / clamp_min: NaN in, NaN out.
inline double min_nan(double a, double b) { return (std::isnan(a) || std::isnan(b)) ? kNaN : (b < a ? b : a); }
inline double max_nan(double a, double b) { return (std::isnan(a) || std::isnan(b)) ? kNaN : (b > a ? b : a); }

inline double area(const double* b) { return max_nan(b[2] - b[0], 0.0) * max_nan(b[3] - b[1], 0.0); }

// The overlap of an earlier box a (area aa) with a later box b (area ab), as mtcnn_ops._overlap computes it.
inline double overlap(const double* a, double aa, const double* b, double ab, bool min_mode) {
  const double w = max_nan(min_nan(a[2], b[2]) - max_nan(a[0], b[0]), 0.0);
  const double h = max_nan(min_nan(a[3], b[3]) - max_nan(a[1], b[1]), 0.0);
  const double inter = w * h;
  const double denom = min_mode ? min_nan(aa, ab) : (aa + ab) - inter;
  return denom > 0 ? inter / max_nan(denom, 1e-12) : 0.0;
}

}  // namespace

at::Tensor nms_keep_cpu(const at::Tensor& boxes, double threshold, bool min_mode, const at::Tensor& groups) {
  TORCH_CHECK(boxes.dim() == 2 && boxes.size(1) == 4 && boxes.scalar_type() == at::kDouble &&
                  boxes.is_contiguous() && boxes.device().is_cpu(),
              "decaenv::nms_keep: boxes must be a contiguous (N, 4) float64 CPU tensor, got ", boxes.sizes(), " ",
              boxes.scalar_type());
  const int64_t n = boxes.size(0);
  const bool grouped = groups.numel() > 0;
  TORCH_CHECK(groups.dim() == 1 && (groups.size(0) == n || !grouped) && groups.scalar_type() == at::kLong &&
                  groups.is_contiguous() && groups.device().is_cpu(),
              "decaenv::nms_keep: groups must be a contiguous (N,) or (0,) int64 CPU tensor with N = ", n, ", got ",
              groups.sizes(), " ", groups.scalar_type());
  const double* b = boxes.data_ptr<double>();
  const int64_t* g = grouped ? groups.data_ptr<int64_t>() : nullptr;
  at::Tensor keep = empty_cpu({n}, at::kBool);
  bool* out = keep.data_ptr<bool>();
  std::vector<int64_t> kept;
  std::vector<double> areas(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) areas[i] = area(b + 4 * i);
  for (int64_t i = 0; i < n; ++i) {
    bool alive = true;
    for (int64_t j : kept) {
      if ((!grouped || g[j] == g[i]) && overlap(b + 4 * j, areas[j], b + 4 * i, areas[i], min_mode) > threshold) {
        alive = false;
        break;
      }
    }
    out[i] = alive;
    if (alive) kept.push_back(i);
  }
  return keep;
}

}  // namespace decaenv
