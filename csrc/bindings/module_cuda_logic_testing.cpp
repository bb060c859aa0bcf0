// transferlab._cuda_logic_testing: a TEST-ONLY extension, built beside _C and never imported by the
// library. The CUDA kernels' decompositions run serially on the CPU, through the same host+device
// headers the kernels include (knn/cuda/knn_tiles.h, ...). There is no GPU in CI, so this is how the
// tiling, schedule, merge and tie logic of the CUDA code is tested (tests/cuda/test_cuda_logic.py;
// on a GPU, tests/cuda/test_cuda_scores.py checks the device kernels against these twins).
// Each function is named after the entry point of _cuda it mirrors; none is part of the API.
#include <algorithm>
#include <cmath>
#include <vector>

#include "bindings/bindings.h"
#include "bindings/logic_knn_tc.h"
#include "common/class_rows.h"
#include "knn/cuda/knn_tiles.h"
#include "lda/cuda/lda_tiles.h"
#include "leep/cuda/leep_logic.h"

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

// ------------------------------------------------------------------ class CSR
struct ClassRows {
  std::vector<int32_t> order;
  std::vector<int64_t> starts, totals;
};

// build_class_rows' four launches, each "thread" a loop iteration. chunks <= 0: the kernels' choice.
ClassRows class_rows_serial(const int32_t* labels, int64_t n, int64_t C, int64_t chunks) {
  for (int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= C) throw std::invalid_argument("labels must be in [0, n_classes)");
  if (chunks <= 0) chunks = class_rows::num_chunks(n, C);
  const int64_t chunk = class_rows::chunk_rows(n, chunks);
  ClassRows r;
  r.order.assign(n, -1);
  r.starts.assign(C, 0);
  r.totals.assign(C, 0);
  std::vector<int32_t> hist(chunks * C);
  for (int64_t t = 0; t < chunks; ++t) class_rows::hist_chunk(labels, n, chunk, t, C, hist.data());
  for (int64_t c = 0; c < C; ++c) class_rows::scan_class(hist.data(), chunks, C, c, r.totals.data());
  class_rows::class_starts(r.totals.data(), C, r.starts.data());
  for (int64_t t = 0; t < chunks; ++t)
    class_rows::scatter_chunk(labels, n, chunk, t, C, r.starts.data(), hist.data(), r.order.data());
  return r;
}

template <class T>
py::array_t<T> to_array(const std::vector<T>& v) {
  py::array_t<T> a((py::ssize_t)v.size());
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

py::tuple class_rows_py(const py::array& labels, int64_t C, int64_t chunks) {
  if (labels.ndim() != 1) throw std::invalid_argument("labels must be 1-D");
  const int32_t* lab = host_vector<int32_t>(labels, labels.shape(0), "labels");
  ClassRows r = class_rows_serial(lab, labels.shape(0), C, chunks);
  return py::make_tuple(to_array(r.order), to_array(r.starts), to_array(r.totals));
}

const double* optional_vector(const py::object& o, int64_t n, const char* name, py::array& keep) {
  if (o.is_none()) return nullptr;
  keep = o.cast<py::array>();
  return host_vector<double>(keep, n, name);
}

// A C-contiguous (rows, cols) float64 array.
const double* host_f64_matrix(const py::array& a, int64_t rows, int64_t cols, const char* name) {
  if (!py::isinstance<py::array_t<double>>(a) || a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols ||
      !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + " must be a C-contiguous float64 array of shape (" +
                                std::to_string(rows) + ", " + std::to_string(cols) + ")");
  return static_cast<const double*>(a.data());
}

// ------------------------------------------------------------------ leep
struct RowLoad {
  const MatrixView* v;
  int64_t i;
  double operator()(int64_t z) const { return load_as_double(v->row_ptr(i), z, v->dtype); }
};

// row_stats_kernel (32 lanes per row, then the shuffle tree) and fold_stats_kernel, serially.
py::tuple leep_row_stats(const py::array& p, bool from_logits, double tol, bool is_bf16) {
  using namespace leep_logic;
  const MatrixView v = host_matrix(p, "p", is_bf16);
  const int64_t n = v.rows;
  py::array_t<double> lse(n);
  double* pl = lse.mutable_data();
  int64_t cnt[3] = {0, 0, 0}, first[3] = {-1, -1, -1};
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    const RowLoad load{&v, i};
    double sums[kLanes], mx = -INFINITY, ex[kLanes];
    bool nonfinite = false, negative = false;
    for (int l = 0; l < kLanes; ++l) {
      const LanePass1 r = lane_pass1(load, v.cols, l);
      nonfinite |= r.nonfinite;
      negative |= r.negative;
      sums[l] = r.sum;
      mx = r.max > mx ? r.max : mx;
    }
    const double sum = lane_tree_sum(sums);
    if (from_logits) {
      for (int l = 0; l < kLanes; ++l) ex[l] = nonfinite ? 0.0 : lane_exp_sum(load, v.cols, l, mx);
      pl[i] = nonfinite ? NAN : mx + log_f64(lane_tree_sum(ex));
    }
    const uint8_t f = row_flags(nonfinite, negative, sum, from_logits, tol);
    for (int b = 0; b < 3; ++b)
      if (f & (1 << b)) {
        ++cnt[b];
        if (first[b] < 0) first[b] = i;
      }
    if (!(f & kNonFinite) && !from_logits) {
      lo = sum < lo ? sum : lo;
      hi = sum > hi ? sum : hi;
    }
  }
  py::dict d;
  d["nonfinite_rows"] = cnt[0];
  d["first_nonfinite_row"] = first[0];
  d["negative_rows"] = cnt[1];
  d["first_negative_row"] = first[1];
  d["bad_sum_rows"] = cnt[2];
  d["first_bad_sum_row"] = first[2];
  d["min_row_sum"] = lo <= hi ? lo : 0.0;
  d["max_row_sum"] = lo <= hi ? hi : 0.0;
  return py::make_tuple(d, from_logits ? py::object(lse) : py::object(py::none()));
}

// joint_kernel: one "thread" per (class, column), the class's rows in order, into joint.
py::array_t<double> leep_joint(const py::array& p, const py::array& labels, int64_t C, bool from_logits,
                               const py::object& row_lse, const py::object& joint, int64_t chunks, bool is_bf16) {
  const MatrixView v = host_matrix(p, "p", is_bf16);
  const int64_t n = v.rows, Z = v.cols;
  const int32_t* lab = host_vector<int32_t>(labels, n, "labels");
  py::array keep;
  const double* lse = optional_vector(row_lse, n, "row_lse", keep);
  if (from_logits && !lse) throw std::invalid_argument("row_lse is required with from_logits");
  py::array_t<double> out({C, Z});
  double* J = out.mutable_data();
  if (joint.is_none()) {
    std::fill(J, J + C * Z, 0.0);
  } else {
    const py::array j = joint.cast<py::array>();
    const double* src = host_f64_matrix(j, C, Z, "joint");
    std::copy(src, src + C * Z, J);
  }
  const ClassRows r = class_rows_serial(lab, n, C, chunks);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t z = 0; z < Z; ++z) {
      auto load = [&](int32_t i) {
        return leep_logic::prob_entry(load_as_double(v.row_ptr(i), z, v.dtype), from_logits, lse ? lse[i] : 0.0);
      };
      J[c * Z + z] = leep_logic::class_column_sum(J[c * Z + z], r.order.data(), r.starts[c], r.starts[c] + r.totals[c],
                                                  load);
    }
  return out;
}

// eep_kernel: 32 lanes per row, then the shuffle tree.
py::array_t<double> leep_eep(const py::array& p, const py::array& labels, int64_t C, bool from_logits,
                             const py::object& row_lse, const py::array& cond, bool is_bf16) {
  using namespace leep_logic;
  const MatrixView v = host_matrix(p, "p", is_bf16);
  const int64_t n = v.rows, Z = v.cols;
  const int32_t* lab = host_vector<int32_t>(labels, n, "labels");
  py::array keep;
  const double* lse = optional_vector(row_lse, n, "row_lse", keep);
  if (from_logits && !lse) throw std::invalid_argument("row_lse is required with from_logits");
  const double* cd = host_f64_matrix(cond, C, Z, "cond");
  py::array_t<double> out(n);
  double* e = out.mutable_data();
  for (int64_t i = 0; i < n; ++i) {
    if (lab[i] < 0 || lab[i] >= C) throw std::invalid_argument("labels must be in [0, n_classes)");
    double part[kLanes];
    for (int l = 0; l < kLanes; ++l)
      part[l] = lane_eep(RowLoad{&v, i}, cd + lab[i] * Z, Z, l, from_logits, lse ? lse[i] : 0.0);
    e[i] = lane_tree_sum(part);
  }
  return out;
}

// ------------------------------------------------------------------ lda
py::tuple lda_class_sums(const py::array& x, const py::array& labels, int64_t C, const py::object& shift,
                         const py::object& row_weight, int64_t chunks, bool is_bf16) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  const int64_t n = v.rows, d = v.cols;
  const int32_t* lab = host_vector<int32_t>(labels, n, "labels");
  py::array k1, k2;
  const double* sh = optional_vector(shift, d, "shift", k1);
  const double* w = optional_vector(row_weight, n, "row_weight", k2);
  const ClassRows r = class_rows_serial(lab, n, C, chunks);
  py::array_t<double> sums({C, d});
  double* S = sums.mutable_data();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < d; ++j) {
      double acc = 0.0;
      for (int64_t idx = r.starts[c]; idx < r.starts[c] + r.totals[c]; ++idx) {
        const int64_t i = r.order[idx];
        acc = lda_tiles::class_sum_step(acc, load_as_double(v.row_ptr(i), j, v.dtype), sh, j, w, i);
      }
      S[c * d + j] = acc;
    }
  return py::make_tuple(to_array(r.totals), sums);
}

// gram_kernel: the upper tiles of edge `tile`, each element one chain over the rows from the
// value already in gram, mirrored for off-diagonal tiles.
py::array_t<double> lda_gram(const py::array& x, const py::object& shift, const py::object& row_scale, int64_t tile,
                             const py::object& gram, bool is_bf16) {
  using namespace lda_tiles;
  if (tile < 1) throw std::invalid_argument("tile must be >= 1");
  const MatrixView v = host_matrix(x, "x", is_bf16);
  const int64_t n = v.rows, d = v.cols;
  py::array k1, k2;
  const double* sh = optional_vector(shift, d, "shift", k1);
  const double* s = optional_vector(row_scale, n, "row_scale", k2);
  py::array_t<double> out({d, d});
  double* G = out.mutable_data();
  if (gram.is_none()) {
    std::fill(G, G + d * d, 0.0);
  } else {
    const py::array g = gram.cast<py::array>();
    const double* src = host_f64_matrix(g, d, d, "gram");
    std::copy(src, src + d * d, G);
  }
  std::vector<double> U(n * d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) U[i * d + j] = centred(load_as_double(v.row_ptr(i), j, v.dtype), sh, j, s, i);
  const int64_t nbd = (d + tile - 1) / tile;
  for (int64_t t = 0; t < num_upper_tiles(nbd); ++t) {
    int64_t A, B;
    upper_tile(t, nbd, &A, &B);
    for (int64_t a = A * tile; a < std::min(d, (A + 1) * tile); ++a)
      for (int64_t b = B * tile; b < std::min(d, (B + 1) * tile); ++b) {
        double acc = G[a * d + b];
        for (int64_t i = 0; i < n; ++i) acc = gram_step(acc, U[i * d + a], U[i * d + b]);
        G[a * d + b] = acc;
        if (A != B) G[b * d + a] = acc;
      }
  }
  return out;
}

}  // namespace

}  // namespace tl

PYBIND11_MODULE(_cuda_logic_testing, m) {
  using namespace tl;
  m.doc() =
      "TEST-ONLY, not part of transferlab's API: the CUDA kernels' decompositions (tiling, schedules, merges, "
      "tie rules) run serially on the CPU, so tests check the CUDA path's logic without a GPU. The library "
      "never imports this module; nothing in it is stable.";
  m.def("knn_schedule", &knn_schedule, py::arg("nb"),
        "the CUDA k-NN round-robin tile schedule: rows (round, I, J), I < J.");
  m.def("knn_loo", &knn_loo, py::arg("x"), py::arg("labels"), py::arg("k"), py::arg("tile"),
        py::arg("is_bf16") = false,
        "knn_loo_cuda's decomposition run serially on the CPU with tile edge `tile`; same outputs "
        "as _C.knn_loo.");
  m.def("class_rows", &class_rows_py, py::arg("labels"), py::arg("n_classes"), py::arg("chunks") = 0,
        "the device class CSR: (order int32, starts, totals).");
  m.def("leep_row_stats", &leep_row_stats, py::arg("p"), py::arg("from_logits"), py::arg("tol"),
        py::arg("is_bf16") = false, "leep_row_stats_cuda serially: (stats dict, row_lse or None).");
  m.def("leep_joint", &leep_joint, py::arg("p"), py::arg("labels"), py::arg("n_classes"),
        py::arg("from_logits"), py::arg("row_lse"), py::arg("joint") = py::none(), py::arg("chunks") = 0,
        py::arg("is_bf16") = false, "leep_joint_cuda serially (returns a new joint = joint + ...).");
  m.def("leep_eep", &leep_eep, py::arg("p"), py::arg("labels"), py::arg("n_classes"),
        py::arg("from_logits"), py::arg("row_lse"), py::arg("cond"), py::arg("is_bf16") = false,
        "leep_eep_cuda serially.");
  m.def("lda_class_sums", &lda_class_sums, py::arg("x"), py::arg("labels"), py::arg("n_classes"),
        py::arg("shift"), py::arg("row_weight"), py::arg("chunks") = 0, py::arg("is_bf16") = false,
        "lda_class_sums_cuda serially: (counts, sums).");
  m.def("lda_gram", &lda_gram, py::arg("x"), py::arg("shift"), py::arg("row_scale"), py::arg("tile"),
        py::arg("gram") = py::none(), py::arg("is_bf16") = false,
        "lda_gram_cuda's upper-tile decomposition serially with tile edge `tile`.");
  logic_knn_tc::bind(m);
}
