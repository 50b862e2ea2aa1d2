// Tiled CPU rasterizer.
//
// 1. Set up every face (parallel over faces): validity, bounding box, exact pixel ranges.
// 2. Bin faces into kTile x kTile pixel tiles, per image, keeping face index order.
// 3. Rasterize tiles in parallel (at::parallel_for): each tile walks its faces in index order with a
//    strict `<` depth test, so the nearest face wins and ties keep the lowest index. A tile only
//    writes its own pixels, so the result does not depend on the number of threads.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "../checks.h"
#include "../raster_math.h"
#include "../rasterize.h"
#include "alloc.h"

namespace decaenv {
namespace {

constexpr int64_t kTile = 16;

struct PixelRange {
  int64_t c0, c1, r0, r1;  // inclusive; empty when c0 > c1 or r0 > r1
};

struct Bins {
  int64_t tiles_x, tiles_y;
  std::vector<int64_t> count;  // faces per (image, tile)
  std::vector<int64_t> start;  // (B * tiles + 1) offsets into faces
  std::vector<int32_t> faces;  // face indices, ascending within each tile
};

// The set-up's arrays, kept between calls on the calling thread: allocated afresh, their ~10 MB for a batch
// of 8 FLAME meshes were page-faulted in again on every call whenever the C allocator had given the
// memory back. Kept only while they stay under kScratchKeepBytes.
struct Scratch {
  std::vector<Face> faces;
  std::vector<PixelRange> ranges;
  Bins bins;

  size_t bytes() const {
    return faces.capacity() * sizeof(Face) + ranges.capacity() * sizeof(PixelRange) +
           (bins.count.capacity() + bins.start.capacity()) * sizeof(int64_t) + bins.faces.capacity() * sizeof(int32_t);
  }
};

constexpr size_t kScratchKeepBytes = 64 << 20;

Scratch& thread_scratch() {
  static thread_local Scratch scratch;
  return scratch;
}

// Pixel centres along one axis, searched from the index their mean spacing predicts: the centres are
// (nearly) evenly spaced, so a face's range is a step or two away, where `pixel_range`'s binary searches
// took ~8 unpredictable branches each (most of the set-up time). Both walks end at the same partition
// point of an ascending array as those searches, whatever the guess, so the ranges are the same.
struct Axis {
  const float* v;
  int64_t n;
  double origin, inv_step;

  Axis(const float* centres, int64_t count) : v(centres), n(count), origin(count ? centres[0] : 0.0), inv_step(0.0) {
    const double span = count > 1 ? static_cast<double>(centres[count - 1]) - origin : 0.0;
    if (span > 0.0) inv_step = static_cast<double>(count - 1) / span;
  }

  int64_t guess(float x) const {
    const double g = (static_cast<double>(x) - origin) * inv_step;
    if (!(g > 0.0)) return 0;  // (NaN too)
    return g >= static_cast<double>(n) ? n : static_cast<int64_t>(g);
  }

  // first i with v[i] >= x (n if none), as first_at_least
  int64_t at_least(float x) const {
    int64_t i = guess(x);
    while (i > 0 && !(v[i - 1] < x)) --i;
    while (i < n && v[i] < x) ++i;
    return i;
  }

  // first i with v[i] > x (n if none), as first_above
  int64_t above(float x) const {
    int64_t i = guess(x);
    while (i > 0 && !(v[i - 1] <= x)) --i;
    while (i < n && v[i] <= x) ++i;
    return i;
  }
};

void setup_faces(const float* fv, int64_t n, const float* xs, int64_t W, const float* ys, int64_t H,
                 std::vector<Face>& faces, std::vector<PixelRange>& ranges) {
  const Axis columns(xs, W), rows(ys, H);
  at::parallel_for(0, n, 2048, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      Face& f = faces[i];
      load_face(fv + 9 * i, f);
      PixelRange& r = ranges[i];
      r = {0, -1, 0, -1};
      if (f.valid) {  // the inclusive range of centres c with min <= c <= max, as pixel_range
        r = {columns.at_least(f.xmin), columns.above(f.xmax) - 1, rows.at_least(f.ymin), rows.above(f.ymax) - 1};
      }
    }
  });
}

template <typename Visit>
void for_each_tile(const PixelRange& r, const Bins& bins, Visit visit) {
  if (r.c0 > r.c1 || r.r0 > r.r1) return;
  for (int64_t ty = r.r0 / kTile; ty <= r.r1 / kTile; ++ty) {
    for (int64_t tx = r.c0 / kTile; tx <= r.c1 / kTile; ++tx) {
      visit(ty * bins.tiles_x + tx);
    }
  }
}

void bin_faces(const std::vector<PixelRange>& ranges, int64_t B, int64_t F, int64_t H, int64_t W, Bins& bins) {
  bins.tiles_x = (W + kTile - 1) / kTile;
  bins.tiles_y = (H + kTile - 1) / kTile;
  const int64_t T = bins.tiles_x * bins.tiles_y;
  std::vector<int64_t>& count = bins.count;
  count.assign(B * T + 1, 0);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      int64_t* c = count.data() + b * T;
      for (int64_t f = 0; f < F; ++f) for_each_tile(ranges[b * F + f], bins, [&](int64_t t) { ++c[t]; });
    }
  });
  bins.start.assign(B * T + 1, 0);
  for (int64_t i = 0; i < B * T; ++i) bins.start[i + 1] = bins.start[i] + count[i];
  bins.faces.resize(bins.start[B * T]);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      std::vector<int64_t> cursor(bins.start.begin() + b * T, bins.start.begin() + (b + 1) * T);
      for (int64_t f = 0; f < F; ++f) {
        for_each_tile(ranges[b * F + f], bins,
                      [&](int64_t t) { bins.faces[cursor[t]++] = static_cast<int32_t>(f); });
      }
    }
  });
}

struct TileBuffer {
  float z[kTile * kTile];
  float w[kTile * kTile][3];
  int32_t face[kTile * kTile];
};

// Walks the faces binned into tile t of image b and writes the tile's pixels.
void rasterize_tile(int64_t b, int64_t t, int64_t F, int64_t H, int64_t W, const float* xs, const float* ys,
                    const std::vector<Face>& faces, const std::vector<PixelRange>& ranges, const Bins& bins,
                    int64_t* p2f, float* bary, float* zbuf) {
  const int64_t row0 = (t / bins.tiles_x) * kTile, col0 = (t % bins.tiles_x) * kTile;
  const int64_t rows = std::min(kTile, H - row0), cols = std::min(kTile, W - col0);
  TileBuffer buf;
  std::fill(buf.face, buf.face + kTile * kTile, -1);
  const int64_t T = bins.tiles_x * bins.tiles_y;
  for (int64_t k = bins.start[b * T + t]; k < bins.start[b * T + t + 1]; ++k) {
    const int32_t fi = bins.faces[k];
    const Face& f = faces[b * F + fi];
    const PixelRange& r = ranges[b * F + fi];
    const int64_t r0 = std::max(r.r0, row0), r1 = std::min(r.r1, row0 + rows - 1);
    const int64_t c0 = std::max(r.c0, col0), c1 = std::min(r.c1, col0 + cols - 1);
    for (int64_t row = r0; row <= r1; ++row) {
      float q0, q1, q2;
      row_terms(f, ys[row], q0, q1, q2);
      const int64_t base = (row - row0) * kTile - col0;
      for (int64_t col = c0; col <= c1; ++col) {
        float w0, w1, w2, z;
        if (!cover(f, xs[col], q0, q1, q2, w0, w1, w2, z)) continue;
        const int64_t p = base + col;
        if (buf.face[p] < 0 || z < buf.z[p]) {
          buf.face[p] = fi;
          buf.z[p] = z;
          buf.w[p][0] = w0;
          buf.w[p][1] = w1;
          buf.w[p][2] = w2;
        }
      }
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t p = i * kTile + j;
      const int64_t o = (b * H + row0 + i) * W + col0 + j;
      const bool hit = buf.face[p] >= 0;
      p2f[o] = buf.face[p];
      zbuf[o] = hit ? buf.z[p] : -1.0f;
      for (int v = 0; v < 3; ++v) bary[3 * o + v] = hit ? buf.w[p][v] : 0.0f;
    }
  }
}

}  // namespace

RasterOutput rasterize_cpu(const at::Tensor& face_verts, const at::Tensor& pix_x, const at::Tensor& pix_y) {
  check_inputs(face_verts, pix_x, pix_y, c10::DeviceType::CPU);
  const int64_t B = face_verts.size(0), F = face_verts.size(1);
  const int64_t H = pix_y.size(0), W = pix_x.size(0);
  at::Tensor p2f = empty_cpu({B, H, W}, at::kLong);
  at::Tensor bary = empty_cpu({B, H, W, 3}, face_verts.scalar_type());
  at::Tensor zbuf = empty_cpu({B, H, W}, face_verts.scalar_type());
  if (B * H * W == 0) return {p2f, bary, zbuf};

  const float* xs = pix_x.data_ptr<float>();
  const float* ys = pix_y.data_ptr<float>();
  Scratch& scratch = thread_scratch();
  std::vector<Face>& faces = scratch.faces;
  std::vector<PixelRange>& ranges = scratch.ranges;
  faces.resize(B * F);
  ranges.resize(B * F);
  setup_faces(face_verts.data_ptr<float>(), B * F, xs, W, ys, H, faces, ranges);
  bin_faces(ranges, B, F, H, W, scratch.bins);
  const Bins& bins = scratch.bins;

  int64_t* p2f_ptr = p2f.data_ptr<int64_t>();
  float* bary_ptr = bary.data_ptr<float>();
  float* zbuf_ptr = zbuf.data_ptr<float>();
  const int64_t T = bins.tiles_x * bins.tiles_y;
  // parallel_for hands each thread a contiguous range: visit the tiles in a scattered order (a stride
  // coprime with the tile count) so that every range mixes busy (face) and empty (background) tiles.
  const int64_t n = B * T;
  int64_t stride = std::max<int64_t>(1, static_cast<int64_t>(0.618034 * static_cast<double>(n)));
  while (std::gcd(stride, n) != 1) ++stride;
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t k = (i * stride) % n;
      rasterize_tile(k / T, k % T, F, H, W, xs, ys, faces, ranges, bins, p2f_ptr, bary_ptr, zbuf_ptr);
    }
  });
  if (scratch.bytes() > kScratchKeepBytes) scratch = Scratch();  // (a huge batch: give it back)
  return {p2f, bary, zbuf};
}

}  // namespace decaenv
