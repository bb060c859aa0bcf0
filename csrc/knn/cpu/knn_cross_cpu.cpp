// Cross k-NN of a query block against a candidate block of the same bank (contract: knn/knn_cross.h).
//
// Bitwise agreement with knn_loo_cpu comes from using the same pieces: the ISA table of
// knn_internal.h (micro-kernel, norm chain, dtype conversion, vectorised tile scan), the same panel
// packing layout and K blocking, and the same clamp. Packing and buffers are knn_cpu.cpp's own.
//
// Structure (why it differs from knn_loo_cpu's loop):
//   * the query rows are packed once per "super-chunk" (up to kQueryPackFloats floats, shared by all
//     threads, read-only), so a candidate tile is packed once per super-chunk instead of once per
//     query tile;
//   * a task is (candidate tile J, group of query tiles): it packs B_J once and runs every query tile
//     of its group against it. With many candidate tiles a group is the whole super-chunk; with few
//     (small candidate blocks) the query tiles are split into groups so that every thread has work;
//   * each finished tile goes through the ISA's vectorised scan (knn_cpu.cpp's filter), which calls
//     offer_pair only for pairs that can enter a list (d <= the row's or the column's threshold);
//   * every thread keeps private lists for the super-chunk's query rows (and, with back lists, all
//     candidate rows), merged after each super-chunk (back lists: at the end) with the min-merge rule
//     of knn_cross.h (merge_row: exact and order-free), so
//     the output is bitwise the same for any thread count, split or visiting order.
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
using knn_detail::ScanArgs;

// A super-chunk of query rows holds at most 64 MB of packed floats (out_of_core.py's plan counts a
// float32 copy of each query row) and kQueryChunkRows rows: the per-thread forward lists cover one
// super-chunk (merged into the output after it), so their memory is threads * 16384 rows at most,
// not threads * nq (knn_accuracy may pass a million test rows).
constexpr int64_t kQueryPackFloats = int64_t(16) << 20;
constexpr int64_t kQueryChunkRows = 16384;

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

void norms_parallel(const KnnIsa* isa, const MatrixView& x, float* out, int threads) {
  const int64_t chunk = 256, n = x.rows;
  parallel_for((n + chunk - 1) / chunk, threads, 1, [&](int64_t b, int) {
    const int64_t r0 = b * chunk;
    norms_of(isa, x, r0, std::min(chunk, n - r0), out + r0);
  });
}

// Running top-k of one row: the m <= k best candidates sorted by (dist, index); cnt / same count
// every candidate seen at exactly the last listed distance, listed or not (knn_cpu.cpp's
// ThreadState, one row; unlike it, ties are counted before the list is full, which the min-merge
// of partial results needs). Any candidate closer than the last listed one is in the list.
struct RowTopK {
  float* td = nullptr;
  int64_t* ti = nullptr;
  int64_t k = 0, m = 0, cnt = 0, same = 0;
  int32_t label = 0;
  const int32_t* c_labels = nullptr;  // candidate labels, indexed by global index - c_offset
  int64_t c_offset = 0;

  bool same_label(int64_t j) const { return c_labels && c_labels[j - c_offset] == label; }

  // The distance a candidate must not exceed to be offered: the last listed one once full.
  float threshold() const { return m == k ? td[k - 1] : std::numeric_limits<float>::infinity(); }

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

// One thread's lists: forward (one per query row of the current super-chunk) and, optionally, back
// (one per candidate row). thr holds the lists' thresholds in the index space the ISA scan reads:
// super-chunk row r at r, candidate row c at col_base + c (col_base = the super-chunk's rows); without back lists
// the candidate entries are -1, below every distance, so the scan never offers a pair for them.
struct ThreadLists {
  std::vector<float> fd, bd;
  std::vector<int64_t> fi, bi;
  std::vector<RowTopK> fwd, back;
  std::vector<float> thr;
};

struct OfferCtx {
  ThreadLists* st;
  int64_t col_base;       // scan column index = col_base + candidate row
  int64_t row0;           // the super-chunk's first query row (scan row i is query row row0 + i)
  int64_t q_offset, c_offset;
  const int64_t* q_index;  // global index of each query row, or nullptr (q_offset + r)
  bool back;
};

// Called by the ISA scan for the pairs that pass its filter (row i = query row, column j =
// col_base + candidate row). Self is excluded by global index, as knn_loo_cpu does.
void offer_pair(void* vctx, int64_t i, int64_t jv, float d) {
  const OfferCtx& x = *static_cast<const OfferCtx*>(vctx);
  const int64_t j = jv - x.col_base;
  const int64_t gi = x.q_index ? x.q_index[x.row0 + i] : x.q_offset + x.row0 + i;
  const int64_t gj = x.c_offset + j;
  if (gi == gj) return;
  ThreadLists& s = *x.st;
  if (d <= s.thr[i]) {
    s.fwd[i].insert(d, gj);
    s.thr[i] = s.fwd[i].threshold();
  }
  if (x.back && d <= s.thr[jv]) {
    // dist(i, j) == dist(j, i) bitwise (knn_cross.h), so one tile serves both directions.
    s.back[j].insert(d, gi);
    s.thr[jv] = s.back[j].threshold();
  }
}

// Merges per-thread lists of one row (each over a disjoint set of candidates) into `out` row r,
// with knn_cross.h's min-merge rule.
void merge_row(const std::vector<const std::vector<RowTopK>*>& per_thread, int64_t j, int64_t k, int64_t r,
               const KnnCrossOut& out, std::vector<std::pair<float, int64_t>>& all) {
  all.clear();
  for (const auto* st : per_thread)
    for (int64_t p = 0; p < (*st)[j].m; ++p) all.emplace_back((*st)[j].td[p], (*st)[j].ti[p]);
  std::sort(all.begin(), all.end());  // (dist, index): the total order of the contract
  const int64_t found = std::min<int64_t>(k, (int64_t)all.size());
  for (int64_t p = 0; p < k; ++p) {
    out.nbr_dist[r * k + p] = p < found ? all[p].first : std::numeric_limits<float>::infinity();
    out.nbr_index[r * k + p] = p < found ? all[p].second : -1;
  }
  int64_t tc = 0, ts = 0;
  if (found > 0) {
    const float bd = all[found - 1].first;
    for (const auto* st : per_thread) {
      const RowTopK& t = (*st)[j];
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

// Rows [0, rows) of every thread's forward (or back) lists into output rows out_row0 + r.
void merge_all(const std::vector<ThreadLists>& lists, bool back, int64_t rows, int64_t out_row0, int64_t k,
               const KnnCrossOut& out, int threads) {
  std::vector<const std::vector<RowTopK>*> per_thread;
  for (const auto& l : lists) per_thread.push_back(back ? &l.back : &l.fwd);
  const int64_t chunk = 512;
  parallel_for((rows + chunk - 1) / chunk, threads, 1, [&](int64_t ch, int) {
    std::vector<std::pair<float, int64_t>> all;
    for (int64_t r = ch * chunk; r < std::min(rows, (ch + 1) * chunk); ++r)
      merge_row(per_thread, r, k, out_row0 + r, out, all);
  });
}

}  // namespace

void knn_cross_cpu(const MatrixView& q, int64_t q_offset, const MatrixView& c, int64_t c_offset,
                   const int32_t* q_labels, const int32_t* c_labels, int64_t k, const KnnCrossOut& fwd,
                   const KnnCrossOut* back, int num_threads, const int64_t* q_index) {
  TL_CHECK_ARG(k >= 1, "k must be >= 1");
  TL_CHECK_ARG(q.cols == c.cols, "query and candidate blocks must have the same number of features");
  TL_CHECK_ARG(q.cols >= 1, "empty feature bank: n_features=0");
  TL_CHECK_ARG((q_labels == nullptr) == (c_labels == nullptr), "give labels for both blocks or for neither");
  TL_CHECK_ARG(q_index == nullptr || back == nullptr, "back lists need contiguous query rows (no q_index)");
  const int64_t nq = q.rows, nc = c.rows, d = q.cols;
  const bool has_labels = q_labels != nullptr;
  const KnnIsa* isa = knn_detail::select_isa();
  int64_t l = isa->mr;
  while (l % isa->nr != 0) l += isa->mr;
  const int64_t T = std::max<int64_t>(1, (240 + l / 2) / l) * l;  // knn_cpu.cpp's tile edge
  const int threads = resolve_threads(num_threads);
  const int64_t nqt = (nq + T - 1) / T, nct = (nc + T - 1) / T;
  // Query tiles per super-chunk (see kQueryPackFloats); its rows are the scan's row index space.
  const int64_t sq =
      std::max<int64_t>(1, std::min<int64_t>({nqt, kQueryPackFloats / (T * d), kQueryChunkRows / T}));
  const int64_t col_base = sq * T;

  // Norms padded to whole tiles: the scan reads whole tile rows (masked lanes need finite values).
  std::vector<float> qnorm(nqt * T + T, 0.f), cnorm(nct * T + T, 0.f);
  norms_parallel(isa, q, qnorm.data(), threads);
  norms_parallel(isa, c, cnorm.data(), threads);

  // Per-thread lists (see ThreadLists); the forward ones are reset for every super-chunk.
  std::vector<ThreadLists> lists(threads);
  const int64_t fwd_rows = std::min(nq, col_base);
  for (auto& L : lists) {
    L.fd.assign(fwd_rows * k, 0.f);
    L.fi.assign(fwd_rows * k, 0);
    L.fwd.resize(fwd_rows);
    L.thr.assign(col_base + nct * T + T, -1.f);
    if (back != nullptr) {
      L.bd.assign(nc * k, 0.f);
      L.bi.assign(nc * k, 0);
      L.back.resize(nc);
      for (int64_t j = 0; j < nc; ++j) {
        RowTopK& b = L.back[j];
        b.td = L.bd.data() + j * k, b.ti = L.bi.data() + j * k, b.k = k;
        b.label = has_labels ? c_labels[j] : 0;
        b.c_labels = q_labels, b.c_offset = q_offset;  // its candidates are query rows
      }
      std::fill(L.thr.begin() + col_base, L.thr.begin() + col_base + nc, std::numeric_limits<float>::infinity());
    }
  }

  const int64_t tmp_rows = (q.dtype == DType::f32 && c.dtype == DType::f32) ? 1 : std::max(isa->mr, isa->nr);
  struct Scratch {
    FloatBuf b, cc, tmp;
  };
  std::vector<Scratch> scratch(threads);
  for (auto& s : scratch) s.b = alloc_floats(T * d), s.cc = alloc_floats(T * T), s.tmp = alloc_floats(tmp_rows * d);

  FloatBuf apack = alloc_floats(sq * T * d);  // the shared pack of one super-chunk
  for (int64_t I0 = 0; I0 < nqt; I0 += sq) {
    const int64_t ntile = std::min(sq, nqt - I0);
    const int64_t row0 = I0 * T, rows = std::min(nq - row0, ntile * T);
    for (auto& L : lists) {
      for (int64_t r = 0; r < rows; ++r) {
        RowTopK& t = L.fwd[r];
        t = RowTopK{};
        t.td = L.fd.data() + r * k, t.ti = L.fi.data() + r * k, t.k = k;
        t.label = has_labels ? q_labels[row0 + r] : 0;
        t.c_labels = c_labels, t.c_offset = c_offset;
      }
      std::fill(L.thr.begin(), L.thr.begin() + rows, std::numeric_limits<float>::infinity());
    }
    parallel_for(ntile, threads, 1, [&](int64_t t, int tid) {
      const int64_t i0 = (I0 + t) * T;
      pack_block(isa, q, i0, std::min(T, nq - i0), T, isa->mr, apack.get() + t * T * d, scratch[tid].tmp.get());
    });
    // Work split: candidate tiles, and the query tiles in groups when there are too few candidate
    // tiles to give every thread several tasks (the output does not depend on the split).
    const int64_t groups =
        nct == 0 ? 1 : std::min<int64_t>(ntile, std::max<int64_t>(1, (4 * threads + nct - 1) / nct));
    const int64_t per_group = (ntile + groups - 1) / groups;
    parallel_for(nct * groups, threads, 1, [&](int64_t task, int tid) {
      const int64_t J = task / groups, g = task % groups;
      Scratch& sc = scratch[tid];
      const int64_t j0 = J * T, nb = std::min(T, nc - j0);
      const int64_t npan = (nb + isa->nr - 1) / isa->nr;
      pack_block(isa, c, j0, nb, T, isa->nr, sc.b.get(), sc.tmp.get());
      OfferCtx ctx{&lists[tid], col_base, row0, q_offset, c_offset, q_index, back != nullptr};
      for (int64_t t = g * per_group; t < std::min(ntile, (g + 1) * per_group); ++t) {
        const int64_t i0 = (I0 + t) * T, na = std::min(T, nq - i0);
        const int64_t mpan = (na + isa->mr - 1) / isa->mr;
        const float* a = apack.get() + t * T * d;
        for (int64_t pc = 0; pc < d; pc += KC) {
          const int64_t kc = std::min<int64_t>(KC, d - pc);
          for (int64_t jr = 0; jr < npan; ++jr)
            for (int64_t ir = 0; ir < mpan; ++ir)
              isa->micro(kc, a + pc * T + ir * isa->mr * kc, sc.b.get() + pc * T + jr * isa->nr * kc,
                         sc.cc.get() + ir * isa->mr * T + jr * isa->nr, T, pc == 0);
        }
        ScanArgs s;
        s.c = sc.cc.get();
        s.ldc = T;
        s.rows = na;
        s.cols = nb;
        s.i0 = i0 - row0;  // the super-chunk's row index space
        s.j0 = col_base + j0;
        s.norm_i = qnorm.data() + i0;
        s.norm_j = cnorm.data() + j0;
        s.thr = lists[tid].thr.data();
        s.diagonal = false;
        s.fn = offer_pair;
        s.ctx = &ctx;
        isa->scan(s);
      }
    });
    merge_all(lists, false, rows, row0, k, fwd, threads);  // without labels same_label is false: tie_same = 0
  }
  if (back != nullptr) merge_all(lists, true, nc, 0, k, *back, threads);
}

}  // namespace tl
