// CPU vertex normals (the contract is in ../vertex_normals.h).
//
// A counting sort lists, per vertex, the (corner, face) pairs that add to it in the order torch's
// index_add visits them; then every vertex (at::parallel_for) computes its own cross products and adds
// them in that order, then normalises them. Each vertex writes only its own rows: the result does not
// depend on the thread count. Built with -ffp-contract=off: the only fused operations are the explicit
// std::fma calls, placed where torch's x86 CPU kernels fuse.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../vertex_normals.h"
#include "alloc.h"

namespace decaenv {

namespace {

// DECA adds corner 1's cross products first, then corner 2's, then corner 0's.
constexpr int kCornerOrder[3] = {1, 2, 0};
constexpr float kEps = 1e-6f;

inline float cross_component(float u_i, float v_j, float u_j, float v_i) {
  return std::fma(u_i, v_j, -(u_j * v_i));  // u_i * v_j - u_j * v_i, as torch's x86 kernel rounds it
}

void check_normals(const at::Tensor& vertices, const at::Tensor& faces) {
  TORCH_CHECK(vertices.dim() == 3 && vertices.size(2) == 3 && vertices.scalar_type() == at::kFloat,
              "decaenv::vertex_normals: vertices must be (B, V, 3) float32, got ", vertices.sizes(), " ",
              vertices.scalar_type());
  TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3 && faces.scalar_type() == at::kLong,
              "decaenv::vertex_normals: faces must be (F, 3) int64, got ", faces.sizes(), " ", faces.scalar_type());
  for (const at::Tensor* t : {&vertices, &faces}) {
    TORCH_CHECK(t->device().is_cpu(), "decaenv::vertex_normals: expected CPU tensors");
    TORCH_CHECK(t->is_contiguous(), "decaenv::vertex_normals: expected contiguous tensors");
  }
}

}  // namespace

at::Tensor vertex_normals_cpu(const at::Tensor& vertices, const at::Tensor& faces) {
  check_normals(vertices, faces);
  const int64_t B = vertices.size(0), V = vertices.size(1), F = faces.size(0);
  const int64_t* fc = faces.data_ptr<int64_t>();
  for (int64_t i = 0; i < 3 * F; ++i) {
    TORCH_CHECK(fc[i] >= 0 && fc[i] < V, "decaenv::vertex_normals: face index ", fc[i], " outside [0, ", V, ")");
  }
  // entries of vertex v: order[start[v] .. start[v + 1]), each p = pass * F + face (pass 0, 1, 2 = corner 1, 2, 0)
  std::vector<int64_t> start(V + 1, 0), order(3 * F);
  for (int64_t p = 0; p < 3 * F; ++p) ++start[fc[(p % F) * 3 + kCornerOrder[p / F]] + 1];
  for (int64_t v = 0; v < V; ++v) start[v + 1] += start[v];
  std::vector<int64_t> cursor(start.begin(), start.end() - 1);
  for (int64_t p = 0; p < 3 * F; ++p) order[cursor[fc[(p % F) * 3 + kCornerOrder[p / F]]]++] = p;

  at::Tensor out = empty_cpu({B, V, 3}, vertices.scalar_type());  // every element written below
  const float* vt = vertices.data_ptr<float>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, V, 1024, [&](int64_t v0, int64_t v1) {
    std::vector<float> sums(B * 3);
    for (int64_t v = v0; v < v1; ++v) {
      std::fill(sums.begin(), sums.end(), 0.0f);
      for (int64_t e = start[v]; e < start[v + 1]; ++e) {
        const int64_t p = order[e], f = p % F, corner = kCornerOrder[p / F];
        // the corner's vertex m and the next two: (n1 - m) x (n2 - m) is (c - b) x (a - b) for corner 1 of
        // face (a, b, c), (a - c) x (b - c) for corner 2, (b - a) x (c - a) for corner 0
        const int64_t m = fc[f * 3 + corner], n1 = fc[f * 3 + (corner + 1) % 3], n2 = fc[f * 3 + (corner + 2) % 3];
        for (int64_t b = 0; b < B; ++b) {
          const float* base = vt + b * V * 3;
          const float* pm = base + m * 3;
          const float* pn1 = base + n1 * 3;
          const float* pn2 = base + n2 * 3;
          const float u0 = pn1[0] - pm[0], u1 = pn1[1] - pm[1], u2 = pn1[2] - pm[2];
          const float w0 = pn2[0] - pm[0], w1 = pn2[1] - pm[1], w2 = pn2[2] - pm[2];
          float* acc = sums.data() + b * 3;
          acc[0] = acc[0] + cross_component(u1, w2, u2, w1);
          acc[1] = acc[1] + cross_component(u2, w0, u0, w2);
          acc[2] = acc[2] + cross_component(u0, w1, u1, w0);
        }
      }
      for (int64_t b = 0; b < B; ++b) {  // F.normalize(eps=1e-6): s / max(|s|, eps), |s| as torch reduces it
        const float* s = sums.data() + b * 3;
        const float norm = std::sqrt(std::fma(s[2], s[2], std::fma(s[1], s[1], s[0] * s[0])));
        const float d = std::isnan(norm) ? norm : std::max(norm, kEps);
        float* dst = o + (b * V + v) * 3;
        dst[0] = s[0] / d;
        dst[1] = s[1] / d;
        dst[2] = s[2] / d;
      }
    }
  });
  return out;
}

}  // namespace decaenv
