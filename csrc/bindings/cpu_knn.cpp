// Python bindings of csrc/knn for _C (see knn/knn.h for the contract).
#include "bindings/bindings.h"
#include "knn/knn.h"

namespace tl {

namespace {

py::tuple knn_loo(const py::array& x, const py::object& labels, int64_t k, bool is_bf16, int num_threads) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  if (k < 1 || k > v.rows - 1) throw std::invalid_argument("k must be in [1, n_samples-1]");
  const int32_t* lab = nullptr;
  py::array lab_arr;
  if (!labels.is_none()) {
    lab_arr = labels.cast<py::array>();
    lab = host_vector<int32_t>(lab_arr, v.rows, "labels");
  }
  const int64_t n = v.rows;
  py::array_t<int64_t> index({n, k});
  py::array_t<float> dist({n, k});
  py::array_t<int64_t> tie_count(n);
  py::array_t<int64_t> tie_same(n);
  int64_t* pi = index.mutable_data();
  float* pd = dist.mutable_data();
  int64_t* pc = tie_count.mutable_data();
  int64_t* ps = tie_same.mutable_data();
  if (lab == nullptr) std::fill(ps, ps + n, int64_t(0));
  {
    py::gil_scoped_release release;
    knn_loo_cpu(v, lab, k, pi, pd, pc, ps, num_threads);
  }
  return py::make_tuple(index, dist, tie_count, tie_same);
}

float knn_pair_dist(const py::array& x, int64_t i, int64_t j, bool is_bf16) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  if (i < 0 || i >= v.rows || j < 0 || j >= v.rows)
    throw std::invalid_argument("i and j must be row indices in [0, " + std::to_string(v.rows) + ")");
  py::gil_scoped_release release;
  return knn_pair_dist_cpu(v, i, j);
}

py::tuple knn_boundary_labels(const py::array& x, const py::array& labels, const py::array& rows,
                              const py::array& boundary, bool is_bf16, int num_threads) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  const int32_t* lab = host_vector<int32_t>(labels, v.rows, "labels");
  if (rows.ndim() != 1) throw std::invalid_argument("rows must be 1-D");
  const int64_t r = rows.shape(0);
  const int64_t* pr = host_vector<int64_t>(rows, r, "rows");
  const float* pb = host_vector<float>(boundary, r, "boundary");
  std::vector<int64_t> offsets, counts;
  std::vector<int32_t> out_labels;
  {
    py::gil_scoped_release release;
    knn_boundary_labels_cpu(v, lab, pr, pb, r, offsets, out_labels, counts, num_threads);
  }
  py::array_t<int64_t> o((py::ssize_t)offsets.size(), offsets.data());
  py::array_t<int32_t> l((py::ssize_t)out_labels.size(), out_labels.data());
  py::array_t<int64_t> c((py::ssize_t)counts.size(), counts.data());
  return py::make_tuple(o, l, c);
}

}  // namespace

void bind_knn_cpu(py::module_& m) {
  m.def("knn_loo", &knn_loo, py::arg("x"), py::arg("labels"), py::arg("k"), py::arg("is_bf16"),
        py::arg("num_threads"),
        "Fused leave-one-out k-NN: (nbr_index int64 (n,k), nbr_dist float32 (n,k), tie_count int64 (n,), "
        "tie_same int64 (n,)). See csrc/knn/knn.h.");
  m.def("knn_pair_dist", &knn_pair_dist, py::arg("x"), py::arg("i"), py::arg("j"), py::arg("is_bf16"),
        "The float32 squared distance knn_loo uses for rows i and j (its exact scalar twin).");
  m.def("knn_boundary_labels", &knn_boundary_labels, py::arg("x"), py::arg("labels"), py::arg("rows"),
        py::arg("boundary"), py::arg("is_bf16"), py::arg("num_threads"),
        "Label histograms (offsets, labels, counts) of the rows at exactly distance boundary[r] from rows[r].");
}

}  // namespace tl
