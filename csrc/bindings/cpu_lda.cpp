// Python bindings of csrc/lda for _C (see lda/lda.h for the contract).
// Optional arguments are None. The outputs are fresh arrays, or, when `out` is given, the caller's
// float64 arrays accumulated into (a chunked pass then runs the same chain as one pass).
#include <vector>

#include "bindings/bindings.h"
#include "lda/lda.h"

namespace tl {

namespace {

// Optional contiguous float64 vector of length n (nullptr for None).
const double* opt_vector(const py::object& o, int64_t n, const char* name, py::array& keep) {
  if (o.is_none()) return nullptr;
  keep = o.cast<py::array>();
  return host_vector<double>(keep, n, name);
}

// A writable C-contiguous array of dtype T and the given shape (the accumulation target).
template <class T>
T* out_array(py::array& a, std::vector<int64_t> shape, const char* name) {
  bool ok = py::isinstance<py::array_t<T>>(a) && a.ndim() == (py::ssize_t)shape.size() && a.writeable() &&
            (a.flags() & py::array::c_style);
  for (size_t k = 0; ok && k < shape.size(); ++k) ok = a.shape(k) == shape[k];
  if (!ok) {
    std::string s;
    for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    throw std::invalid_argument(std::string(name) + " must be a writable C-contiguous " +
                                py::str(py::dtype::of<T>()).cast<std::string>() + " array of shape (" + s + ")");
  }
  return static_cast<T*>(a.mutable_data());
}

py::tuple lda_class_sums(const py::array& x, const py::array& labels, int64_t n_classes, const py::object& shift,
                         const py::object& row_weight, bool is_bf16, int num_threads, const py::object& counts_out,
                         const py::object& sums_out) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  if (n_classes < 1) throw std::invalid_argument("n_classes must be >= 1");
  const int32_t* lab = host_vector<int32_t>(labels, v.rows, "labels");
  py::array keep_shift, keep_w;
  const double* ps = opt_vector(shift, v.cols, "shift", keep_shift);
  const double* pw = opt_vector(row_weight, v.rows, "row_weight", keep_w);
  py::array counts = counts_out.is_none() ? py::array(py::array_t<int64_t>(n_classes)) : counts_out.cast<py::array>();
  py::array sums = sums_out.is_none() ? py::array(py::array_t<double>({n_classes, (int64_t)v.cols}))
                                      : sums_out.cast<py::array>();
  int64_t* pc = out_array<int64_t>(counts, {n_classes}, "counts");
  double* pm = out_array<double>(sums, {n_classes, (int64_t)v.cols}, "sums");
  if (counts_out.is_none()) std::fill(pc, pc + n_classes, int64_t(0));
  if (sums_out.is_none()) std::fill(pm, pm + n_classes * v.cols, 0.0);
  {
    py::gil_scoped_release release;
    lda_class_sums_cpu(v, lab, n_classes, ps, pw, pc, pm, num_threads);
  }
  return py::make_tuple(counts, sums);
}

py::array lda_gram(const py::array& x, const py::object& shift, const py::object& row_scale, bool is_bf16,
                   int num_threads, const py::object& out) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  py::array keep_shift, keep_s;
  const double* ps = opt_vector(shift, v.cols, "shift", keep_shift);
  const double* pr = opt_vector(row_scale, v.rows, "row_scale", keep_s);
  const int64_t d = v.cols;
  py::array gram = out.is_none() ? py::array(py::array_t<double>({d, d})) : out.cast<py::array>();
  double* pg = out_array<double>(gram, {d, d}, "out");
  if (out.is_none()) std::fill(pg, pg + d * d, 0.0);
  {
    py::gil_scoped_release release;
    lda_gram_cpu(v, ps, pr, pg, num_threads);
  }
  return gram;
}

py::list lda_gram_batched(const py::list& xs, const py::object& shifts, const py::object& row_scale,
                          const py::object& is_bf16, int num_threads) {
  const int64_t m = (int64_t)py::len(xs);
  std::vector<py::array> arrays, keep;
  std::vector<MatrixView> views;
  std::vector<const double*> sh(m, nullptr);
  std::vector<bool> bf(m, false);
  if (!is_bf16.is_none()) {
    py::list flags = is_bf16.cast<py::list>();
    if ((int64_t)py::len(flags) != m) throw std::invalid_argument("is_bf16 must list one flag per model");
    for (int64_t k = 0; k < m; ++k) bf[k] = flags[k].cast<bool>();
  }
  py::list shift_list;
  if (!shifts.is_none()) {
    shift_list = shifts.cast<py::list>();
    if ((int64_t)py::len(shift_list) != m) throw std::invalid_argument("shifts must list one entry (or None) per model");
  }
  for (int64_t k = 0; k < m; ++k) {
    arrays.push_back(xs[k].cast<py::array>());
    const std::string name = "xs[" + std::to_string(k) + "]";
    views.push_back(host_matrix(arrays.back(), name.c_str(), bf[k]));
    if (!shifts.is_none() && !shift_list[k].is_none()) {
      keep.push_back(shift_list[k].cast<py::array>());
      sh[k] = host_vector<double>(keep.back(), views[k].cols, "shifts[k]");
    }
  }
  if (m > 0 && !row_scale.is_none()) {
    for (int64_t k = 1; k < m; ++k)
      if (views[k].rows != views[0].rows)
        throw std::invalid_argument("with a shared row_scale every model must have the same number of rows (xs[0] has " +
                                    std::to_string(views[0].rows) + ", xs[" + std::to_string(k) + "] has " +
                                    std::to_string(views[k].rows) + ")");
  }
  py::array keep_s;
  const double* pr = m > 0 ? opt_vector(row_scale, views[0].rows, "row_scale", keep_s) : nullptr;
  std::vector<py::array> grams;
  std::vector<double*> gp;
  for (int64_t k = 0; k < m; ++k) {
    const int64_t d = views[k].cols;
    py::array_t<double> g({d, d});
    std::fill(g.mutable_data(), g.mutable_data() + d * d, 0.0);
    gp.push_back(g.mutable_data());
    grams.push_back(g);
  }
  {
    py::gil_scoped_release release;
    lda_gram_batched_cpu(views.data(), m, sh.data(), pr, gp.data(), num_threads);
  }
  py::list result;
  for (auto& g : grams) result.append(g);
  return result;
}

py::array lda_project(const py::array& x, const py::array& w, const py::object& b, bool is_bf16, int num_threads) {
  const MatrixView v = host_matrix(x, "x", is_bf16);
  if (w.ndim() != 2 || w.shape(1) != v.cols || !py::isinstance<py::array_t<double>>(w) ||
      !(w.flags() & py::array::c_style))
    throw std::invalid_argument("W must be a C-contiguous float64 array of shape (n_out, " + std::to_string(v.cols) + ")");
  const int64_t k = w.shape(0);
  if (k < 1) throw std::invalid_argument("W must have at least one row");
  py::array keep_b;
  const double* pb = opt_vector(b, k, "b", keep_b);
  py::array_t<double> out({(int64_t)v.rows, k});
  double* po = out.mutable_data();
  const double* pw = static_cast<const double*>(w.data());
  {
    py::gil_scoped_release release;
    lda_project_cpu(v, pw, pb, k, po, num_threads);
  }
  return out;
}

}  // namespace

void bind_lda_cpu(py::module_& m) {
  m.def("lda_class_sums", &lda_class_sums, py::arg("x"), py::arg("labels"), py::arg("n_classes"), py::arg("shift"),
        py::arg("row_weight"), py::arg("is_bf16"), py::arg("num_threads"), py::arg("counts") = py::none(),
        py::arg("sums") = py::none(),
        "(counts int64 (C,), sums float64 (C, D)): counts[c] += #{i: y_i = c}, "
        "sums[c] += sum_{y_i = c} w_i (x_i - shift). See csrc/lda/lda.h.");
  m.def("lda_gram", &lda_gram, py::arg("x"), py::arg("shift"), py::arg("row_scale"), py::arg("is_bf16"),
        py::arg("num_threads"), py::arg("out") = py::none(),
        "gram float64 (D, D) (+)= sum_i s_i^2 (x_i - shift)(x_i - shift)^T. See csrc/lda/lda.h. "
        "With out (symmetric, e.g. an earlier result), its upper triangle is accumulated and mirrored.");
  m.def("lda_gram_batched", &lda_gram_batched, py::arg("xs"), py::arg("shifts"), py::arg("row_scale"),
        py::arg("is_bf16"), py::arg("num_threads"),
        "List of Grams, one per model (bitwise equal to separate lda_gram calls).");
  m.def("lda_project", &lda_project, py::arg("x"), py::arg("W"), py::arg("b"), py::arg("is_bf16"),
        py::arg("num_threads"), "out float64 (N, K) = x W^T + b. See csrc/lda/lda.h.");
}

}  // namespace tl
