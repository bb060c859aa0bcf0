// Python bindings of csrc/leep for _C (see leep/leep.h for the contract).
#include <algorithm>
#include <string>

#include "bindings/bindings.h"
#include "bindings/leep_stats_dict.h"
#include "leep/leep.h"

namespace tl {

namespace {

const double* lse_arg(const py::object& row_lse, bool from_logits, int64_t n, py::array& keep) {
  if (!from_logits) return nullptr;
  if (row_lse.is_none()) throw std::invalid_argument("row_lse is required with from_logits (from leep_row_stats)");
  keep = row_lse.cast<py::array>();
  return host_vector<double>(keep, n, "row_lse");
}

// A C-contiguous float64 (rows x cols) array; its data pointer.
const double* host_table(const py::array& a, int64_t rows, int64_t cols, const char* name) {
  if (!py::isinstance<py::array_t<double>>(a) || a.ndim() != 2 || a.shape(0) != rows || a.shape(1) != cols ||
      !(a.flags() & py::array::c_style))
    throw std::invalid_argument(std::string(name) + " must be a C-contiguous float64 array of shape (" +
                                std::to_string(rows) + ", " + std::to_string(cols) + ")");
  return static_cast<const double*>(a.data());
}

py::tuple leep_row_stats(const py::array& p, bool from_logits, double tol, bool is_bf16, int num_threads) {
  const MatrixView v = host_matrix(p, "source_probs", is_bf16);
  py::object lse = py::none();
  double* plse = nullptr;
  if (from_logits) {
    py::array_t<double> a(v.rows);
    plse = a.mutable_data();
    lse = a;
  }
  ProbRowStats s;
  {
    py::gil_scoped_release release;
    leep_row_stats_cpu(v, from_logits, tol, &s, plse, num_threads);
  }
  return py::make_tuple(prob_row_stats_dict(s), lse);
}

py::array leep_joint(const py::array& p, const py::array& labels, int64_t n_classes, bool from_logits,
                     const py::object& row_lse, bool is_bf16, int num_threads, const py::object& joint) {
  const MatrixView v = host_matrix(p, "source_probs", is_bf16);
  if (n_classes < 1) throw std::invalid_argument("n_classes must be >= 1");
  const int32_t* lab = host_vector<int32_t>(labels, v.rows, "labels");
  py::array lse_keep;
  const double* plse = lse_arg(row_lse, from_logits, v.rows, lse_keep);
  py::array out;
  double* pj = nullptr;
  if (joint.is_none()) {
    py::array_t<double> fresh({n_classes, v.cols});
    pj = fresh.mutable_data();
    std::fill(pj, pj + n_classes * v.cols, 0.0);
    out = fresh;
  } else {
    out = joint.cast<py::array>();  // no conversion: a wrong dtype or layout is an error, not a copy
    host_table(out, n_classes, v.cols, "joint");
    if (!out.writeable()) throw std::invalid_argument("joint must be writeable (it is accumulated in place)");
    pj = static_cast<double*>(out.mutable_data());
  }
  {
    py::gil_scoped_release release;
    leep_joint_cpu(v, lab, n_classes, from_logits, plse, pj, num_threads);
  }
  return out;
}

py::array leep_eep(const py::array& p, const py::array& labels, int64_t n_classes, bool from_logits,
                   const py::object& row_lse, const py::array& cond, bool is_bf16, int num_threads) {
  const MatrixView v = host_matrix(p, "source_probs", is_bf16);
  if (n_classes < 1) throw std::invalid_argument("n_classes must be >= 1");
  const int32_t* lab = host_vector<int32_t>(labels, v.rows, "labels");
  py::array lse_keep;
  const double* plse = lse_arg(row_lse, from_logits, v.rows, lse_keep);
  const double* pc = host_table(cond, n_classes, v.cols, "cond");
  py::array_t<double> eep(v.rows);
  double* pe = eep.mutable_data();
  {
    py::gil_scoped_release release;
    leep_eep_cpu(v, lab, n_classes, from_logits, plse, pc, pe, num_threads);
  }
  return eep;
}

}  // namespace

void bind_leep_cpu(py::module_& m) {
  m.def("leep_row_stats", &leep_row_stats, py::arg("p"), py::arg("from_logits"), py::arg("tol"), py::arg("is_bf16"),
        py::arg("num_threads"),
        "One pass over P: (stats dict, row_lse float64 (n,) with from_logits else None). Stats: nonfinite_rows, "
        "negative_rows, bad_sum_rows with their first_* row (-1 if none), min/max_row_sum over finite rows.");
  m.def("leep_joint", &leep_joint, py::arg("p"), py::arg("labels"), py::arg("n_classes"), py::arg("from_logits"),
        py::arg("row_lse"), py::arg("is_bf16"), py::arg("num_threads"), py::arg("joint") = py::none(),
        "J (n_classes x Z float64) += sum over rows of class c of P[i, :] (not divided by N). With `joint` given, "
        "accumulates into it in place and returns it: chunk after chunk equals one shot, bitwise.");
  m.def("leep_eep", &leep_eep, py::arg("p"), py::arg("labels"), py::arg("n_classes"), py::arg("from_logits"),
        py::arg("row_lse"), py::arg("cond"), py::arg("is_bf16"), py::arg("num_threads"),
        "eep (n,) float64: eep[i] = sum_z P[i, z] * cond[labels[i], z].");
}

}  // namespace tl
