// Per-face set-up and per-pixel coverage test shared by the CPU and CUDA kernels.
//
// Every backend of decaenv (the Python `reference` and `torch` backends, the CPU and the CUDA kernels)
// evaluates exactly these float32 expressions, operation by operation and in this order, so that they
// agree bit for bit. The build turns off floating-point contraction (`-ffp-contract=off` for the host
// compiler, `--fmad=false` for nvcc): a fused multiply-add would round differently.
//
// The expressions are those of pytorch3d's mesh rasterizer (the path DECA uses), written in DECA's
// image frame (x right, y down) instead of pytorch3d's (x left, y up): negating every x and y
// coordinate leaves each edge function unchanged, bit for bit.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define DECAENV_HD __host__ __device__ __forceinline__
#else
#define DECAENV_HD inline
#endif

namespace decaenv {

// pytorch3d's kEpsilon: faces with |area| <= kAreaEpsilon are skipped and the barycentric
// denominator is the signed area plus kAreaEpsilon, added in double precision like pytorch3d does.
constexpr double kAreaEpsilon = 1e-8;

// One face, ready for pixel tests. Coordinates are in the raster frame (see rasterize.h).
struct Face {
  float x0, y0, z0, x1, y1, z1, x2, y2, z2;
  // Edge deltas (b - a) of the three edge functions E(p, v1, v2), E(p, v2, v0), E(p, v0, v1).
  float dx0, dy0, dx1, dy1, dx2, dy2;
  float area;  // barycentric denominator: E(v2, v0, v1) + kAreaEpsilon, rounded to float
  float xmin, xmax, ymin, ymax;
  bool valid;  // false: the face cannot cover any pixel
};

DECAENV_HD float min3(float a, float b, float c) {
  const float m = a < b ? a : b;
  return m < c ? m : c;
}

DECAENV_HD float max3(float a, float b, float c) {
  const float m = a > b ? a : b;
  return m > c ? m : c;
}

DECAENV_HD bool finite(float v) {
  return v - v == 0.0f;  // false for +-inf and NaN, without <cmath> in device code
}

// Loads face `p` (9 floats: x0 y0 z0 x1 y1 z1 x2 y2 z2) and decides whether it can cover a pixel.
// Skipped, as in pytorch3d: zmax < 0 (behind the camera) and |E(v0, v1, v2)| <= 1e-8 (degenerate).
// Also skipped (decaenv): faces with a non-finite x or y, or a non-finite denominator; such faces
// cannot pass the inside test in pytorch3d either, their barycentrics being NaN or zero.
DECAENV_HD void load_face(const float* p, Face& f) {
  f.x0 = p[0]; f.y0 = p[1]; f.z0 = p[2];
  f.x1 = p[3]; f.y1 = p[4]; f.z1 = p[5];
  f.x2 = p[6]; f.y2 = p[7]; f.z2 = p[8];
  f.dx0 = f.x2 - f.x1; f.dy0 = f.y2 - f.y1;
  f.dx1 = f.x0 - f.x2; f.dy1 = f.y0 - f.y2;
  f.dx2 = f.x1 - f.x0; f.dy2 = f.y1 - f.y0;
  const float face_area = (f.x0 - f.x1) * f.dy0 - (f.y0 - f.y1) * f.dx0;  // E(v0, v1, v2)
  const float signed_area = (f.x2 - f.x0) * f.dy2 - (f.y2 - f.y0) * f.dx2;  // E(v2, v0, v1)
  f.area = static_cast<float>(static_cast<double>(signed_area) + kAreaEpsilon);
  f.xmin = min3(f.x0, f.x1, f.x2); f.xmax = max3(f.x0, f.x1, f.x2);
  f.ymin = min3(f.y0, f.y1, f.y2); f.ymax = max3(f.y0, f.y1, f.y2);
  const float zmax = max3(f.z0, f.z1, f.z2);
  const bool coords_finite = finite(f.x0) && finite(f.y0) && finite(f.x1) && finite(f.y1) &&
                             finite(f.x2) && finite(f.y2) && finite(f.area);
  const bool degenerate = face_area <= kAreaEpsilon && face_area >= -kAreaEpsilon;
  f.valid = coords_finite && !degenerate && !(zmax < 0.0f);
}

// Coverage of pixel centre (px, py) by face f, given the row term of each edge function
// (q0 = (py - y1) * dx0, q1 = (py - y2) * dx1, q2 = (py - y0) * dx2, see row_terms).
// Returns true when the pixel is strictly inside (all three barycentrics > 0) and the interpolated
// depth is >= 0 (NaN rejected); then w0..w2 and z hold the barycentrics and the depth (-0 turned
// into +0 so that the bit pattern of z orders like its value).
DECAENV_HD bool cover(const Face& f, float px, float q0, float q1, float q2,
                      float& w0, float& w1, float& w2, float& z) {
  const float e0 = (px - f.x1) * f.dy0 - q0;
  const float e1 = (px - f.x2) * f.dy1 - q1;
  const float e2 = (px - f.x0) * f.dy2 - q2;
  // Exact early rejection: e / area > 0 needs e and area of the same sign (area may be +-0).
  const bool positive = !(f.area < 0.0f || (f.area == 0.0f && 1.0f / f.area < 0.0f));
  if (positive ? !(e0 > 0.0f && e1 > 0.0f && e2 > 0.0f) : !(e0 < 0.0f && e1 < 0.0f && e2 < 0.0f)) {
    return false;
  }
  w0 = e0 / f.area;
  w1 = e1 / f.area;
  w2 = e2 / f.area;
  if (!(w0 > 0.0f && w1 > 0.0f && w2 > 0.0f)) {
    return false;
  }
  const float depth = w0 * f.z0 + w1 * f.z1 + w2 * f.z2;
  if (!(depth >= 0.0f)) {
    return false;
  }
  z = depth + 0.0f;
  return true;
}

// The three row terms of `cover` for the pixel row at height py.
DECAENV_HD void row_terms(const Face& f, float py, float& q0, float& q1, float& q2) {
  q0 = (py - f.y1) * f.dx0;
  q1 = (py - f.y2) * f.dx1;
  q2 = (py - f.y0) * f.dx2;
}

// First index i in [0, n) with v[i] >= x (n if none); v ascending.
DECAENV_HD int64_t first_at_least(const float* v, int64_t n, float x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (v[mid] < x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// First index i in [0, n) with v[i] > x (n if none); v ascending.
DECAENV_HD int64_t first_above(const float* v, int64_t n, float x) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (v[mid] <= x) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// Inclusive pixel range [lo, hi] of centres c with bmin <= c <= bmax (pytorch3d's bounding-box test).
DECAENV_HD void pixel_range(const float* centres, int64_t n, float bmin, float bmax,
                            int64_t& lo, int64_t& hi) {
  lo = first_at_least(centres, n, bmin);
  hi = first_above(centres, n, bmax) - 1;
}

}  // namespace decaenv
