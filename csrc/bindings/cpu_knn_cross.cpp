// Python binding of csrc/knn/knn_cross.h for _C (sharded leave-one-out k-NN).
#include "bindings/bindings.h"
#include "knn/knn_cross.h"

#include <memory>

namespace tl {

namespace {

// knn_cross(x_block, row_offset, x_all, labels, k, is_bf16, threads, col_offset=0, block_labels=None)
//   x_block rows are global rows row_offset.., x_all rows global rows col_offset..; labels are
//   x_all's (int32 codes) or None. block_labels defaults to labels[row_offset - col_offset + r],
//   which needs the block inside x_all's range (the "block vs whole bank" case).
//   both_sides: also x_all's rows vs x_block's rows (one tile pass for both; disjoint blocks).
//   row_index: int64 global index of each x_block row (scattered rows; row_offset is then unused and
//   block_labels is required with labels); not with both_sides.
py::tuple knn_cross(const py::array& xb, int64_t row_offset, const py::array& xa, const py::object& labels,
                    int64_t k, bool is_bf16, int num_threads, int64_t col_offset, const py::object& block_labels,
                    bool both_sides, const py::object& row_index) {
  const MatrixView q = host_matrix(xb, "x_block", is_bf16);
  const MatrixView c = host_matrix(xa, "x_all", is_bf16);
  if (k < 1) throw std::invalid_argument("k must be >= 1");
  if (q.cols != c.cols)
    throw std::invalid_argument("x_block has " + std::to_string(q.cols) + " features but x_all has " +
                                std::to_string(c.cols));
  if (row_offset < 0 || col_offset < 0) throw std::invalid_argument("row_offset and col_offset must be >= 0");
  const int64_t* qi = nullptr;
  py::array qi_arr;
  if (!row_index.is_none()) {
    if (both_sides) throw std::invalid_argument("row_index cannot be combined with both_sides");
    qi_arr = row_index.cast<py::array>();
    qi = host_vector<int64_t>(qi_arr, q.rows, "row_index");
    for (int64_t r = 0; r < q.rows; ++r)
      if (qi[r] < 0) throw std::invalid_argument("row_index must hold row indices >= 0");
    if (!labels.is_none() && block_labels.is_none())
      throw std::invalid_argument("row_index with labels needs block_labels");
  }
  const int32_t* cl = nullptr;
  const int32_t* ql = nullptr;
  py::array lab_arr, blab_arr;
  if (!labels.is_none()) {
    lab_arr = labels.cast<py::array>();
    cl = host_vector<int32_t>(lab_arr, c.rows, "labels");
    if (!block_labels.is_none()) {
      blab_arr = block_labels.cast<py::array>();
      ql = host_vector<int32_t>(blab_arr, q.rows, "block_labels");
    } else {
      const int64_t s = row_offset - col_offset;
      if (s < 0 || s + q.rows > c.rows)
        throw std::invalid_argument("x_block rows are not inside x_all; pass block_labels");
      ql = cl + s;
    }
  } else if (!block_labels.is_none()) {
    throw std::invalid_argument("block_labels given without labels");
  }
  struct Out {
    py::array_t<int64_t> index;
    py::array_t<float> dist;
    py::array_t<int64_t> found, tie_count, tie_same;
    Out(int64_t n, int64_t k) : index({n, k}), dist({n, k}), found(n), tie_count(n), tie_same(n) {}
    KnnCrossOut view() {
      return {index.mutable_data(), dist.mutable_data(), found.mutable_data(), tie_count.mutable_data(),
              tie_same.mutable_data()};
    }
    py::tuple tuple() const { return py::make_tuple(index, dist, found, tie_count, tie_same); }
  };
  Out fwd(q.rows, k);
  std::unique_ptr<Out> back;
  if (both_sides) back.reset(new Out(c.rows, k));
  const KnnCrossOut fv = fwd.view();
  KnnCrossOut bv{};
  if (back) bv = back->view();
  {
    py::gil_scoped_release release;
    knn_cross_cpu(q, row_offset, c, col_offset, ql, cl, k, fv, back ? &bv : nullptr, num_threads, qi);
  }
  if (back) return py::make_tuple(fwd.tuple(), back->tuple());
  return fwd.tuple();
}

}  // namespace

void bind_knn_cross_cpu(py::module_& m) {
  m.def("knn_cross", &knn_cross, py::arg("x_block"), py::arg("row_offset"), py::arg("x_all"), py::arg("labels"),
        py::arg("k"), py::arg("is_bf16"), py::arg("num_threads"), py::arg("col_offset") = 0,
        py::arg("block_labels") = py::none(), py::arg("both_sides") = false,
        py::arg("row_index") = py::none(),
        "Partial leave-one-out k-NN of a row block against candidate rows of the same bank: (nbr_index int64 "
        "(nb,k) global, -1 padded; nbr_dist float32 (nb,k), inf padded; n_found; tie_count; tie_same). "
        "Distances bitwise equal to knn_loo's. both_sides=True also returns x_all's rows' lists over x_block "
        "from the same tiles: ((block lists), (x_all lists)). row_index (int64, one per x_block row): the global "
        "indices of scattered block rows, self excluded by them (needs block_labels with labels). See csrc/knn/knn_cross.h.");
}

}  // namespace tl
