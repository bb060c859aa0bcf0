// Test-only bindings of _C: the CUDA kernels' decompositions run serially on the CPU, through the
// same host+device headers the kernels include (knn/cuda/knn_tiles.h, ...). There is no GPU in CI,
// so this is how the tiling, schedule, merge and tie logic of the CUDA code is tested
// (tests/cuda/test_cuda_logic.py). Not part of the public API (underscore names).
#include <algorithm>
#include <vector>

#include "bindings/bindings.h"
#include "knn/cuda/knn_tiles.h"

namespace tl {

namespace {

// Every off-diagonal tile of the round-robin schedule as rows (round, I, J).
py::array_t<int64_t> knn_schedule(int64_t nb) {
  if (nb < 1) throw std::invalid_argument("nb must be >= 1");
  std::vector<int64_t> out;
  for (int64_t r = 0; r < knn_tiles::rr_rounds(nb); ++r)
    for (int64_t s = 0; s < knn_tiles::rr_pairs(nb); ++s) {
      int64_t I, J;
      if (knn_tiles::rr_pair(nb, r, s, &I, &J)) out.insert(out.end(), {r, I, J});
    }
  py::array_t<int64_t> a({(py::ssize_t)out.size() / 3, (py::ssize_t)3});
  std::copy(out.begin(), out.end(), a.mutable_data());
  return a;
}

// knn_loo_cuda's launches, serially: the diagonal tiles, then the rounds; each "CTA" computes its
// tile of fma-chain dot products, converts it to distances with the norms from the diagonal, and
// scans the row side then the column side, exactly as knn_tile_kernel does with threads.
py::tuple knn_loo(const py::array& x, const py::object& labels, int64_t k, int64_t T, bool is_bf16) {
  using namespace knn_tiles;
  const MatrixView v = host_matrix(x, "x", is_bf16);
  const int64_t n = v.rows, d = v.cols;
  if (k < 1 || k > n - 1) throw std::invalid_argument("k must be in [1, n_samples-1]");
  if (T < 1) throw std::invalid_argument("tile must be >= 1");
  const int32_t* lab = nullptr;
  py::array lab_arr;
  if (!labels.is_none()) {
    lab_arr = labels.cast<py::array>();
    lab = host_vector<int32_t>(lab_arr, n, "labels");
  }
  py::array_t<int64_t> index({n, k});
  py::array_t<float> dist({n, k});
  py::array_t<int64_t> tie_count(n), tie_same(n);
  int64_t* ti = index.mutable_data();
  float* td = dist.mutable_data();
  {
    py::gil_scoped_release release;
    std::vector<float> X(n * d), norms(n), c(T * (T + 1));
    for (int64_t i = 0; i < n; ++i) load_row_f32(v, i, 0, d, &X[i * d]);
    std::vector<TopkState> st(n, topk_empty());
    const int64_t nb = (n + T - 1) / T;
    auto scan = [&](int64_t g, const float* line, int64_t step, int64_t len, int64_t idx0) {
      topk_scan(st[g], td + g * k, ti + g * k, k, line, step, len, idx0, g, lab, lab ? lab[g] : 0);
    };
    auto tile = [&](int64_t I, int64_t J, bool diag) {
      const int64_t i0 = I * T, j0 = J * T;
      const int64_t na = std::min(T, n - i0), nbv = std::min(T, n - j0);
      for (int64_t r = 0; r < na; ++r)
        for (int64_t q = 0; q < nbv; ++q) {
          float acc = 0.f;
          for (int64_t p = 0; p < d; ++p) acc = fma_f32(X[(i0 + r) * d + p], X[(j0 + q) * d + p], acc);
          c[r * (T + 1) + q] = acc;
        }
      if (diag)
        for (int64_t r = 0; r < na; ++r) norms[i0 + r] = c[r * (T + 1) + r];
      for (int64_t r = 0; r < na; ++r)
        for (int64_t q = 0; q < nbv; ++q)
          c[r * (T + 1) + q] = pair_dist(norms[i0 + r], norms[j0 + q], c[r * (T + 1) + q]);
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
    int64_t* pc = tie_count.mutable_data();
    int64_t* ps = tie_same.mutable_data();
    for (int64_t i = 0; i < n; ++i) {
      pc[i] = st[i].cnt;
      ps[i] = lab ? st[i].same : 0;
    }
  }
  return py::make_tuple(index, dist, tie_count, tie_same);
}

}  // namespace

void bind_cuda_logic(py::module_& m) {
  m.def("_cuda_logic_knn_schedule", &knn_schedule, py::arg("nb"),
        "(test) the CUDA k-NN round-robin tile schedule: rows (round, I, J), I < J.");
  m.def("_cuda_logic_knn", &knn_loo, py::arg("x"), py::arg("labels"), py::arg("k"), py::arg("tile"),
        py::arg("is_bf16") = false,
        "(test) knn_loo_cuda's decomposition run serially on the CPU with tile edge `tile`; same outputs "
        "as _C.knn_loo.");
}

}  // namespace tl
