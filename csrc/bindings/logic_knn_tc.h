// transferlab._cuda_logic_testing, part: the tensor-core leave-one-out k-NN (knn/cuda/knn_tc.cu) run
// serially on the CPU through its host+device header knn/cuda/knn_tc.h. TEST-ONLY (included by
// module_cuda_logic_testing.cpp alone). The TF32 tensor-core pass is emulated: inputs rounded to TF32
// (round to nearest, as __float_to_tf32; or truncated, the worst input rounding the bound allows),
// exact products, float32 sums in feature order. The device's accumulation order differs; the bound
// (knn_tc.h) allows any order, and tests/cuda/test_cuda_scores.py checks the device against the
// exact path on a GPU.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "bindings/bindings.h"
#include "knn/cuda/knn_tc.h"
#include "knn/cuda/knn_tiles.h"

namespace tl {
namespace logic_knn_tc {

struct HostRows {
  const float* X;
  int64_t d;
  float operator()(int64_t i, int64_t p) const { return X[i * d + p]; }
};

inline float tf32_trunc_host(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  b &= ~0x1fffu;
  std::memcpy(&v, &b, 4);
  return v;
}

// The bank as float32 rows, and the same rows rounded to TF32.
struct Bank {
  int64_t n, d;
  std::vector<float> X, Xt, norms, roots;
  bool in_range = true;
};

inline Bank load_bank(const py::array& x, bool is_bf16, bool truncate) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  Bank b;
  b.n = v.rows;
  b.d = v.cols;
  b.X.resize(b.n * b.d);
  for (int64_t i = 0; i < b.n; ++i) load_row_f32(v, i, 0, b.d, &b.X[i * b.d]);
  b.Xt.resize(b.X.size());
  for (size_t e = 0; e < b.X.size(); ++e) {
    b.Xt[e] = truncate ? tf32_trunc_host(b.X[e]) : knn_tc::tf32_round_host(b.X[e]);
    b.in_range = b.in_range && knn_tc::tc_in_range(b.X[e]);
  }
  const HostRows rows{b.X.data(), b.d};
  b.norms.resize(b.n);
  b.roots.resize(b.n);
  for (int64_t i = 0; i < b.n; ++i) {
    b.norms[i] = knn_tc::exact_dot(rows, i, i, b.d);  // the diagonal tile's chain
    b.roots[i] = std::sqrt(b.norms[i]);
  }
  return b;
}

// The emulated tensor-core dot: TF32 inputs, exact products (<= 22 bits), float32 sums.
inline float tf32_dot(const Bank& b, int64_t i, int64_t j) {
  float acc = 0.f;
  for (int64_t p = 0; p < b.d; ++p) acc += b.Xt[i * b.d + p] * b.Xt[j * b.d + p];
  return acc;
}

// Every pair's (approximate distance a, bound B, exact distance e, lo, up) as n x n float64
// (unclamped; i == j included), and whether the bank is inside the bound's range.
inline py::tuple intervals(const py::array& x, bool is_bf16, bool truncate) {
  const Bank b = load_bank(x, is_bf16, truncate);
  const int64_t n = b.n;
  py::array_t<double> A({n, n}), Bd({n, n}), E({n, n}), Lo({n, n}), Up({n, n});
  double *pa = A.mutable_data(), *pb = Bd.mutable_data(), *pe = E.mutable_data();
  double *pl = Lo.mutable_data(), *pu = Up.mutable_data();
  const knn_tc::TcBound c = knn_tc::tc_bound(b.d);
  const HostRows rows{b.X.data(), b.d};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const float s = b.norms[i] + b.norms[j], rr = b.roots[i] * b.roots[j], dt = tf32_dot(b, i, j);
      float a, bnd, lo, up;
      knn_tc::tc_approx(c, s, rr, dt, &a, &bnd);
      knn_tc::tc_interval(c, s, rr, dt, &lo, &up);
      const float dot = knn_tc::exact_dot(rows, i, j, b.d);
      const int64_t e = i * n + j;
      pa[e] = a, pb[e] = bnd, pl[e] = lo, pu[e] = up;
      pe[e] = (double)(s - (dot + dot));
    }
  return py::make_tuple(A, Bd, E, Lo, Up, b.in_range);
}

// knn_loo_tc_cuda's decomposition serially: the TF32 tile pass over the exact path's round-robin
// schedule (cand_scan on the row side and the column side of each tile), then per row the exact
// re-check (tc_recheck_row) or, for an overflowed row, the exact scan of every other row. A bank
// outside tc_in_range runs the exact scan for every row. Returns (index, dist, tie_count, tie_same,
// overflow (n,) int8, candidates (n,) int32 = kept candidates within the final threshold).
inline py::tuple knn_loo(const py::array& x, const py::object& labels, int64_t k, int64_t T, int64_t cap,
                         bool is_bf16, bool truncate) {
  using namespace knn_tiles;
  using namespace knn_tc;
  const Bank b = load_bank(x, is_bf16, truncate);
  const int64_t n = b.n, d = b.d;
  if (k < 1 || k > n - 1) throw std::invalid_argument("k must be in [1, n_samples-1]");
  if (T < 1) throw std::invalid_argument("tile must be >= 1");
  if (cap <= 0) cap = cand_cap(k);
  if (cap < k) throw std::invalid_argument("cap must be >= k");
  const int32_t* lab = nullptr;
  py::array lab_arr;
  if (!labels.is_none()) {
    lab_arr = labels.cast<py::array>();
    lab = host_vector<int32_t>(lab_arr, n, "labels");
  }
  py::array_t<int64_t> index({n, k});
  py::array_t<float> dist({n, k});
  py::array_t<int64_t> tie_count(n), tie_same(n);
  py::array_t<int8_t> overflow(n);
  py::array_t<int32_t> ncand(n);
  int64_t* ti = index.mutable_data();
  float* td = dist.mutable_data();
  const HostRows rows{b.X.data(), d};
  const TcBound bound = tc_bound(d);
  std::vector<CandState> cs(n, cand_empty());
  std::vector<float> ub(n * k), clo(n * cap);
  std::vector<int32_t> cidx(n * cap);
  if (!b.in_range)
    for (auto& c : cs) c.dropped = -std::numeric_limits<float>::infinity();
  else {
    std::vector<float> c(T * (T + 1));
    const int64_t nb = (n + T - 1) / T;
    auto tile = [&](int64_t I, int64_t J, bool diag) {
      const int64_t i0 = I * T, j0 = J * T;
      const int64_t na = std::min(T, n - i0), nbv = std::min(T, n - j0);
      for (int64_t r = 0; r < na; ++r)
        for (int64_t q = 0; q < nbv; ++q) c[r * (T + 1) + q] = tf32_dot(b, i0 + r, j0 + q);
      auto scan = [&](int64_t g, const float* line, int64_t step, int64_t len, int64_t idx0) {
        cand_scan(cs[g], &ub[g * k], &cidx[g * cap], &clo[g * cap], k, cap, bound, b.norms[g], b.roots[g], line,
                  step, &b.norms[idx0], &b.roots[idx0], 1, len, idx0, g);
      };
      for (int64_t r = 0; r < na; ++r) scan(i0 + r, &c[r * (T + 1)], 1, nbv, j0);
      if (!diag)
        for (int64_t q = 0; q < nbv; ++q) scan(j0 + q, &c[q], T + 1, na, i0);
    };
    for (int64_t I = 0; I < nb; ++I) tile(I, I, true);
    for (int64_t r = 0; r < rr_rounds(nb); ++r)
      for (int64_t s = 0; s < rr_pairs(nb); ++s) {
        int64_t I, J;
        if (rr_pair(nb, r, s, &I, &J)) tile(I, J, false);
      }
  }
  int64_t* pc = tie_count.mutable_data();
  int64_t* ps = tie_same.mutable_data();
  int8_t* po = overflow.mutable_data();
  int32_t* pn = ncand.mutable_data();
  std::vector<float> line(n);
  for (int64_t i = 0; i < n; ++i) {
    TopkState s = topk_empty();
    const CandState& c = cs[i];
    const bool over = cand_overflow(c, &ub[i * k], k);
    po[i] = (int8_t)over;
    pn[i] = 0;
    if (over) {  // the exact path for this row: every other row
      for (int64_t j = 0; j < n; ++j) line[j] = pair_dist(b.norms[i], b.norms[j], exact_dot(rows, i, j, d));
      topk_scan(s, td + i * k, ti + i * k, k, line.data(), 1, n, 0, i, lab, lab ? lab[i] : 0);
    } else {
      const float thr = cand_threshold(c, &ub[i * k], k);
      for (int32_t r = 0; r < c.nc; ++r) pn[i] += clo[i * cap + r] <= thr;
      tc_recheck_row(rows, d, b.norms.data(), i, c, &ub[i * k], &cidx[i * cap], &clo[i * cap], k, s, td + i * k,
                     ti + i * k, lab);
    }
    pc[i] = s.cnt;
    ps[i] = lab ? s.same : 0;
  }
  return py::make_tuple(index, dist, tie_count, tie_same, overflow, ncand);
}

inline void bind(py::module_& m) {
  m.def("knn_tc_bound", [](int64_t d) {
    const knn_tc::TcBound b = knn_tc::tc_bound(d);
    return py::make_tuple(b.c1, b.c2, b.c3);
  }, py::arg("d"), "knn_tc.h's bound constants (c1, c2, c3) for d features.");
  m.def("knn_tc_intervals", &intervals, py::arg("x"), py::arg("is_bf16") = false, py::arg("truncate") = false,
        "every pair's (approximate distance, bound, exact distance, lo, up) as n x n float64 (unclamped), "
        "and whether the bank is inside the bound's range.");
  m.def("knn_loo_tc", &knn_loo, py::arg("x"), py::arg("labels"), py::arg("k"), py::arg("tile"),
        py::arg("cap") = 0, py::arg("is_bf16") = false, py::arg("truncate") = false,
        "knn_loo_tc_cuda serially: (index, dist, tie_count, tie_same, overflow, candidates); the first four "
        "equal knn_loo's.");
}

}  // namespace logic_knn_tc
}  // namespace tl
