// Cross k-NN of a query block against a candidate block of the same bank (contract: knn/knn_cross.h).
//
// Bitwise agreement with knn_loo_cpu comes from using the same pieces: the ISA table of
// knn_internal.h (micro-kernel, norm chain, dtype conversion), the same panel packing layout and
// K blocking, and the same clamp. Packing and buffers are knn_cpu.cpp's own (knn_internal.h). Each
// task owns a block of query rows and its own top-k lists, so no cross-thread merge is needed and the result does not depend on the thread count.
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "common/cpu_features.h"
#include "common/parallel.h"
#include "knn/cpu/knn_internal.h"
#include "knn/topk_row.h"
#include "knn/knn_cross.h"

namespace tl {
namespace {

using knn_detail::KC;
using knn_detail::alloc_floats;
using knn_detail::FloatBuf;
using knn_detail::KnnIsa;
using knn_detail::pack_block;

// |x_i|^2 with the micro-kernels' chain (knn_cpu.cpp's row_norms).
void norms_of(const KnnIsa* isa, const MatrixView& x, int64_t row0, int64_t count, float* out) {
  std::vector<float> tmp(x.dtype == DType::f32 ? 0 : x.cols);
  for (int64_t i = 0; i < count; ++i) {
    const float* r;
    if (x.dtype == DType::f32) {
      r = reinterpret_cast<const float*>(x.row_ptr(row0 + i));
    } else {
      isa->to_f32(x.row_ptr(row0 + i), static_cast<int>(x.dtype), x.cols, tmp.data());
      r = tmp.data();
    }
    out[i] = isa->dot(r, r, x.cols);
  }
}

inline float clamp_dist(float ni, float nj, float dot) {
  const float d = (ni + nj) - (dot + dot);
  return d > 0.f ? d : 0.f;
}

// Running top-k of one query row: the m <= k best candidates sorted by (dist, index); cnt / same
// count every candidate seen at exactly the last listed distance, listed or not (knn_cpu.cpp's
// ThreadState, one row). Any candidate closer than the last listed one is in the list.
struct RowTopK {
  float* td = nullptr;
  int64_t* ti = nullptr;
  int64_t k = 0, m = 0, cnt = 0, same = 0;
  int32_t label = 0;
  const int32_t* c_labels = nullptr;  // candidate labels, indexed by global index - c_offset
  int64_t c_offset = 0;

  bool same_label(int64_t j) const { return c_labels && c_labels[j - c_offset] == label; }

  void insert(float d, int64_t j) {
    const bool full = (m == k);
    const float old_last = m ? td[m - 1] : -1.f;  // distances are >= 0
    if (full) {
      if (d > old_last) return;
      if (d == old_last) {
        ++cnt;
        if (same_label(j)) ++same;
        if (j > ti[k - 1]) return;  // tied at the boundary, later by index: counted only
      }
    }
    knn_tiles::sorted_insert(td, ti, full ? k - 1 : m, d, j);
    if (!full) {
      ++m;
      if (m == 1 || d > old_last) {
        cnt = 1;  // a new, farther last element: the only one seen at that distance
        same = same_label(j) ? 1 : 0;
      } else if (d == old_last) {
        ++cnt;
        if (same_label(j)) ++same;
      }
      return;
    }
    if (td[k - 1] != old_last) {
      // The boundary moved inward: every candidate at the new boundary is listed.
      cnt = same = 0;
      for (int64_t q = 0; q < k; ++q) {
        if (td[q] != td[k - 1]) continue;
        ++cnt;
        if (same_label(ti[q])) ++same;
      }
    }
  }
};

// Merges per-thread lists of one row (each over a disjoint set of candidates) into `out` row r,
// with knn_cross.h's min-merge rule.
void merge_row(const std::vector<std::vector<RowTopK>>& per_thread, int64_t j, int64_t k, int64_t r,
               const KnnCrossOut& out, std::vector<std::pair<float, int64_t>>& all) {
  all.clear();
  for (const auto& st : per_thread)
    for (int64_t p = 0; p < st[j].m; ++p) all.emplace_back(st[j].td[p], st[j].ti[p]);
  std::sort(all.begin(), all.end());  // (dist, index): the total order of the contract
  const int64_t found = std::min<int64_t>(k, (int64_t)all.size());
  for (int64_t p = 0; p < k; ++p) {
    out.nbr_dist[r * k + p] = p < found ? all[p].first : std::numeric_limits<float>::infinity();
    out.nbr_index[r * k + p] = p < found ? all[p].second : -1;
  }
  int64_t tc = 0, ts = 0;
  if (found > 0) {
    const float bd = all[found - 1].first;
    for (const auto& st : per_thread) {
      const RowTopK& t = st[j];
      if (t.m > 0 && t.td[t.m - 1] == bd) {
        tc += t.cnt;  // this thread counted every candidate it saw at bd, listed or not
        ts += t.same;
      } else {
        for (int64_t p = 0; p < t.m; ++p) {  // its list holds every candidate it saw at bd
          if (t.td[p] != bd) continue;
          ++tc;
          if (t.same_label(t.ti[p])) ++ts;
        }
      }
    }
  }
  out.n_found[r] = found;
  out.tie_count[r] = tc;
  out.tie_same[r] = ts;
}

}  // namespace

void knn_cross_cpu(const MatrixView& q, int64_t q_offset, const MatrixView& c, int64_t c_offset,
                   const int32_t* q_labels, const int32_t* c_labels, int64_t k, const KnnCrossOut& fwd,
                   const KnnCrossOut* back, int num_threads) {
  TL_CHECK_ARG(k >= 1, "k must be >= 1");
  TL_CHECK_ARG(q.cols == c.cols, "query and candidate blocks must have the same number of features");
  TL_CHECK_ARG(q.cols >= 1, "empty feature bank: n_features=0");
  TL_CHECK_ARG((q_labels == nullptr) == (c_labels == nullptr), "give labels for both blocks or for neither");
  const int64_t nq = q.rows, nc = c.rows, d = q.cols;
  const bool has_labels = q_labels != nullptr;
  const KnnIsa* isa = knn_detail::select_isa();
  int64_t l = isa->mr;
  while (l % isa->nr != 0) l += isa->mr;
  const int64_t T = std::max<int64_t>(1, (240 + l / 2) / l) * l;  // knn_cpu.cpp's tile edge
  const int threads = resolve_threads(num_threads);

  std::vector<float> cnorm(nc);
  const int64_t nchunk = 256;
  parallel_for((nc + nchunk - 1) / nchunk, threads, 1, [&](int64_t b, int) {
    const int64_t r0 = b * nchunk;
    norms_of(isa, c, r0, std::min(nchunk, nc - r0), cnorm.data() + r0);
  });

  // Backward lists (candidate rows vs query rows): every thread sees some query blocks, so each
  // keeps private lists for all candidate rows, merged at the end (exact, order-free).
  std::vector<std::vector<float>> bd_store;
  std::vector<std::vector<int64_t>> bi_store;
  std::vector<std::vector<RowTopK>> back_tk;
  if (back != nullptr) {
    bd_store.assign(threads, std::vector<float>(nc * k));
    bi_store.assign(threads, std::vector<int64_t>(nc * k));
    back_tk.assign(threads, std::vector<RowTopK>(nc));
    for (int t = 0; t < threads; ++t) {
      for (int64_t j = 0; j < nc; ++j) {
        RowTopK& b = back_tk[t][j];
        b.td = bd_store[t].data() + j * k;
        b.ti = bi_store[t].data() + j * k;
        b.k = k;
        b.label = has_labels ? c_labels[j] : 0;
        b.c_labels = q_labels;  // its candidates are query rows
        b.c_offset = q_offset;
      }
    }
  }

  const int64_t tmp_rows = (q.dtype == DType::f32 && c.dtype == DType::f32) ? 1 : std::max(isa->mr, isa->nr);
  parallel_for((nq + T - 1) / T, threads, 1, [&](int64_t I, int tid) {
    const int64_t i0 = I * T, na = std::min(T, nq - i0);
    FloatBuf a = alloc_floats(T * d), b = alloc_floats(T * d), cc = alloc_floats(T * T);
    FloatBuf tmp = alloc_floats(tmp_rows * d);
    std::vector<float> qnorm(na);
    norms_of(isa, q, i0, na, qnorm.data());
    std::vector<RowTopK> tk(na);
    for (int64_t r = 0; r < na; ++r) {
      tk[r].td = fwd.nbr_dist + (i0 + r) * k;
      tk[r].ti = fwd.nbr_index + (i0 + r) * k;
      tk[r].k = k;
      tk[r].label = has_labels ? q_labels[i0 + r] : 0;
      tk[r].c_labels = c_labels;
      tk[r].c_offset = c_offset;
    }
    RowTopK* btk = back != nullptr ? back_tk[tid].data() : nullptr;
    pack_block(isa, q, i0, na, T, isa->mr, a.get(), tmp.get());
    const int64_t mpan = (na + isa->mr - 1) / isa->mr;
    for (int64_t j0 = 0; j0 < nc; j0 += T) {
      const int64_t nb = std::min(T, nc - j0);
      pack_block(isa, c, j0, nb, T, isa->nr, b.get(), tmp.get());
      const int64_t npan = (nb + isa->nr - 1) / isa->nr;
      for (int64_t pc = 0; pc < d; pc += KC) {
        const int64_t kc = std::min<int64_t>(KC, d - pc);
        for (int64_t jr = 0; jr < npan; ++jr)
          for (int64_t ir = 0; ir < mpan; ++ir)
            isa->micro(kc, a.get() + pc * T + ir * isa->mr * kc, b.get() + pc * T + jr * isa->nr * kc,
                       cc.get() + ir * isa->mr * T + jr * isa->nr, T, pc == 0);
      }
      for (int64_t r = 0; r < na; ++r) {
        const int64_t gi = q_offset + i0 + r;
        RowTopK& t = tk[r];
        const float* crow = cc.get() + r * T;
        for (int64_t col = 0; col < nb; ++col) {
          const int64_t gj = c_offset + j0 + col;
          if (gj == gi) continue;  // self, by index
          const float dist = clamp_dist(qnorm[r], cnorm[j0 + col], crow[col]);
          if (!(t.m == k && dist > t.td[k - 1])) t.insert(dist, gj);
          if (btk != nullptr) {
            // dist(i, j) == dist(j, i) bitwise (knn_cross.h), so one tile serves both directions.
            RowTopK& u = btk[j0 + col];
            if (!(u.m == k && dist > u.td[k - 1])) u.insert(dist, gi);
          }
        }
      }
    }
    for (int64_t r = 0; r < na; ++r) {
      RowTopK& t = tk[r];
      for (int64_t p = t.m; p < k; ++p) {
        t.td[p] = std::numeric_limits<float>::infinity();
        t.ti[p] = -1;
      }
      fwd.n_found[i0 + r] = t.m;
      fwd.tie_count[i0 + r] = t.cnt;
      fwd.tie_same[i0 + r] = has_labels ? t.same : 0;
    }
  });

  if (back != nullptr) {
    const int64_t chunk = 512;
    parallel_for((nc + chunk - 1) / chunk, threads, 1, [&](int64_t ch, int) {
      std::vector<std::pair<float, int64_t>> all;
      for (int64_t j = ch * chunk; j < std::min(nc, (ch + 1) * chunk); ++j) merge_row(back_tk, j, k, j, *back, all);
    });
  }
}

}  // namespace tl
