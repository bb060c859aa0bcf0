// Fused leave-one-out k-NN on the CPU (contract: knn/knn.h).
//
// Structure (BLIS-style, with the symmetry of the problem):
//   * the rows are cut into blocks of T rows; a task is one block-row I, which packs its A block
//     (T x d, float32, MR-row panels per K block) once and walks the tiles (I, J), J >= I, packing
//     each B block (NR-row panels) and running the micro-kernel over K blocks (KC);
//   * the finished T x T dot-product tile goes through a vectorised scan that turns dots into
//     distances and hands only the pairs that can enter a running top-k to `offer`, which updates
//     both the row i and the row j of the calling thread's private state (each unordered pair is
//     seen exactly once, N^2 d / 2 multiply-adds in all);
//   * at the end the per-thread states are merged row by row with the total order (dist, index),
//     so the output does not depend on the thread count or on which thread ran which block.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include "common/cpu_features.h"
#include "common/parallel.h"
#include "knn/cpu/knn_internal.h"
#include "knn/knn.h"
#include "knn/topk_row.h"

namespace tl {
namespace knn_detail {
namespace {

// ------------------------------------------------------------------ generic micro-kernel
// Plain C++ compiled with -ffp-contract=off: one rounded multiply and one rounded add per step,
// the order the generic twin reproduces. The compiler may vectorise across the NR lanes, which
// does not change any element's chain.
constexpr int GMR = 4;
constexpr int GNR = 8;

void micro_generic(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool first) {
  float acc[GMR][GNR];
  for (int r = 0; r < GMR; ++r)
    for (int q = 0; q < GNR; ++q) acc[r][q] = first ? 0.f : c[r * ldc + q];
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < GMR; ++r) {
      const float av = a[r];
      for (int q = 0; q < GNR; ++q) acc[r][q] = acc[r][q] + av * b[q];
    }
    a += GMR;
    b += GNR;
  }
  for (int r = 0; r < GMR; ++r)
    for (int q = 0; q < GNR; ++q) c[r * ldc + q] = acc[r][q];
}

inline float clamp_dist(float ni, float nj, float dot) {
  const float d = (ni + nj) - (dot + dot);
  return d > 0.f ? d : 0.f;
}

void scan_generic(const ScanArgs& s) {
  for (int64_t r = 0; r < s.rows; ++r) {
    const int64_t i = s.i0 + r;
    const float* crow = s.c + r * s.ldc;
    int64_t c0 = 0;
    if (s.diagonal) c0 = std::max<int64_t>(0, i + 1 - s.j0);
    for (int64_t q = c0; q < s.cols; ++q) {
      const float d = clamp_dist(s.norm_i[r], s.norm_j[q], crow[q]);
      if (d <= s.thr[i] || d <= s.thr[s.j0 + q]) s.fn(s.ctx, i, s.j0 + q, d);
    }
  }
}

float dot_generic(const float* a, const float* b, int64_t d) {
  float acc = 0.f;
  for (int64_t p = 0; p < d; ++p) acc = acc + a[p] * b[p];
  return acc;
}

void to_f32_generic(const void* src, int dtype, int64_t len, float* dst) {
  MatrixView v;
  v.data = src;
  v.dtype = static_cast<DType>(dtype);
  v.rows = 1;
  v.cols = len;
  v.row_stride = len;
  load_row_f32(v, 0, 0, len, dst);
}

const KnnIsa kGeneric = {"generic", GMR, GNR, false, micro_generic, scan_generic, dot_generic, to_f32_generic};

}  // namespace

// ------------------------------------------------------------------ shared with knn_cross_cpu.cpp
// (declared in knn_internal.h; outside the anonymous namespace so the cross kernel packs, converts and
// allocates exactly as knn_loo does: the layout and conversions are part of the bitwise agreement)
const KnnIsa* select_isa() {
  switch (simd_level()) {
    case SimdLevel::avx512: return isa_avx512();
    case SimdLevel::avx2: return isa_avx2();
    default: return isa_generic();
  }
}

// ------------------------------------------------------------------ buffers
void FreeDeleter::operator()(float* p) const { std::free(p); }

FloatBuf alloc_floats(int64_t count) {
  const size_t bytes = ((size_t)std::max<int64_t>(count, 16) * sizeof(float) + 63) / 64 * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  TL_CHECK_RUNTIME(p != nullptr, "knn: out of memory for a packing buffer");
  return FloatBuf(p);
}

// Packs rows [row0, row0 + valid) of x (padded with zero rows up to `rows`, a multiple of R) into
// R-row panels per K block: block at offset pc * rows, panel q at + q * R * kc, element (p, r) at
// + p * R + r. The input dtype is converted to float32 here, one block at a time.
// With `index` non-null, panel row rr is x's row index[row0 + rr] (a gathered block).
void pack_block(const KnnIsa* isa, const MatrixView& x, int64_t row0, int64_t valid, int64_t rows, int R,
                float* dst, float* tmp_rows, const int64_t* index) {
  const int64_t d = x.cols;
  for (int64_t q0 = 0; q0 < rows; q0 += R) {
    // Source pointers of the R rows of this panel (converted to float32 when needed).
    const float* src[64];
    for (int r = 0; r < R; ++r) {
      const int64_t rr = q0 + r;
      if (rr < valid) {
        const int64_t row = index ? index[row0 + rr] : row0 + rr;
        if (x.dtype == DType::f32) {
          src[r] = reinterpret_cast<const float*>(x.row_ptr(row));
        } else {
          isa->to_f32(x.row_ptr(row), static_cast<int>(x.dtype), d, tmp_rows + r * d);
          src[r] = tmp_rows + r * d;
        }
      } else {
        src[r] = nullptr;
      }
    }
    for (int64_t pc = 0; pc < d; pc += KC) {
      const int64_t kc = std::min<int64_t>(KC, d - pc);
      float* out = dst + pc * rows + q0 * kc;
      for (int r = 0; r < R; ++r) {
        if (src[r] == nullptr) {
          for (int64_t p = 0; p < kc; ++p) out[p * R + r] = 0.f;
        } else {
          const float* s = src[r] + pc;
          for (int64_t p = 0; p < kc; ++p) out[p * R + r] = s[p];
        }
      }
    }
  }
}

namespace {

// ------------------------------------------------------------------ running top-k
// Per-thread, per-row state. The list holds the m <= k best candidates seen by this thread,
// sorted by (dist, index); thr is the k-th distance once m == k (+inf before), and cnt / same
// count every candidate this thread saw at exactly thr (listed or not) and those with the row's
// label. Any candidate with dist < thr is in the list, which is what makes the merge exact.
struct ThreadState {
  int64_t n = 0, k = 0;
  std::vector<float> thr;     // n + pad (padding +inf never matters: masked lanes)
  std::vector<float> topd;    // n * k
  std::vector<int64_t> topi;  // n * k
  std::vector<int32_t> m;     // n
  std::vector<int64_t> cnt, same;
  const int32_t* labels = nullptr;

  void init(int64_t n_, int64_t k_, int64_t pad, const int32_t* lab) {
    n = n_, k = k_, labels = lab;
    thr.assign(n + pad, std::numeric_limits<float>::infinity());
    topd.assign(n * k, 0.f);
    topi.assign(n * k, 0);
    m.assign(n, 0);
    cnt.assign(n, 0);
    same.assign(n, 0);
  }

  // The shared running top-k (knn/topk_row.h) on this row's slice of the arrays. thr stays a
  // separate array because the SIMD filter of the micro-kernels reads it contiguously.
  void insert(int64_t i, float d, int64_t j) {
    if (!(d <= thr[i])) return;
    knn_tiles::TopkState s{thr[i], m[i], cnt[i], same[i]};
    knn_tiles::topk_insert(s, &topd[i * k], &topi[i * k], k, d, j, labels, labels ? labels[i] : 0);
    thr[i] = s.thr, m[i] = s.m, cnt[i] = s.cnt, same[i] = s.same;
  }
};

struct OfferCtx {
  ThreadState* st;
};

void offer(void* ctx, int64_t i, int64_t j, float d) {
  ThreadState* st = static_cast<OfferCtx*>(ctx)->st;
  st->insert(i, d, j);
  st->insert(j, d, i);
}

struct Cand {
  float d;
  int64_t j;
};

// Tile edge: a multiple of lcm(MR, NR) near 240 rows (A k-slice T x KC ~ 240 KB in a 512 KB L2).
int64_t tile_rows(const KnnIsa* isa) {
  int64_t l = isa->mr;
  while (l % isa->nr != 0) l += isa->mr;
  const int64_t t = std::max<int64_t>(1, (240 + l / 2) / l) * l;
  return t;
}

// Squared norms with the micro-kernels' chain (the twin computes the same values).
std::vector<float> row_norms(const MatrixView& x, const KnnIsa* isa, int threads) {
  const int64_t n = x.rows, d = x.cols;
  std::vector<float> norms(n);
  const int64_t chunk = 256;
  const int64_t nchunks = (n + chunk - 1) / chunk;
  parallel_for(nchunks, threads, 1, [&](int64_t c, int) {
    std::vector<float> tmp(x.dtype == DType::f32 ? 0 : d);
    for (int64_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) {
      const float* r;
      if (x.dtype == DType::f32) {
        r = reinterpret_cast<const float*>(x.row_ptr(i));
      } else {
        isa->to_f32(x.row_ptr(i), static_cast<int>(x.dtype), d, tmp.data());
        r = tmp.data();
      }
      norms[i] = isa->dot(r, r, d);
    }
  });
  return norms;
}

}  // namespace

const KnnIsa* isa_generic() { return &kGeneric; }

}  // namespace knn_detail

using namespace knn_detail;

void knn_loo_cpu(const MatrixView& x, const int32_t* labels, int64_t k, int64_t* nbr_index,
                 float* nbr_dist, int64_t* tie_count, int64_t* tie_same, int num_threads) {
  const int64_t n = x.rows, d = x.cols;
  TL_CHECK_ARG(n >= 2 && k >= 1 && k <= n - 1, "k must be in [1, n_samples-1]");
  TL_CHECK_ARG(d >= 1, "empty feature bank: n_features=0");
  const KnnIsa* isa = select_isa();
  const int threads = resolve_threads(num_threads);
  const int64_t T = tile_rows(isa);
  const int64_t nt = (n + T - 1) / T;

  const std::vector<float> norms = row_norms(x, isa, threads);
  // Norms padded to a whole tile past n: padded columns are masked, the values only need to be finite.
  std::vector<float> norms_pad(nt * T + T, 0.f);
  std::copy(norms.begin(), norms.end(), norms_pad.begin());

  std::vector<ThreadState> states(threads);
  for (auto& s : states) s.init(n, k, T, labels);

  struct Scratch {
    FloatBuf a, b, c, tmp;
  };
  std::vector<Scratch> scratch(threads);
  const int64_t tmp_rows = (x.dtype == DType::f32) ? 1 : std::max(isa->mr, isa->nr);
  for (auto& s : scratch) {
    s.a = alloc_floats(T * d);
    s.b = alloc_floats(T * d);
    s.c = alloc_floats(T * T);
    s.tmp = alloc_floats(tmp_rows * d);
  }

  // Block-rows in increasing I: the first ones carry the most tiles, so dynamic scheduling
  // balances the triangle.
  parallel_for(nt, threads, 1, [&](int64_t I, int tid) {
    Scratch& sc = scratch[tid];
    OfferCtx ctx{&states[tid]};
    const int64_t i0 = I * T;
    const int64_t na = std::min(T, n - i0);
    pack_block(isa, x, i0, na, T, isa->mr, sc.a.get(), sc.tmp.get());
    for (int64_t J = I; J < nt; ++J) {
      const int64_t j0 = J * T;
      const int64_t nb = std::min(T, n - j0);
      pack_block(isa, x, j0, nb, T, isa->nr, sc.b.get(), sc.tmp.get());
      const bool diag = (J == I);
      const int64_t mpan = (na + isa->mr - 1) / isa->mr;
      const int64_t npan = (nb + isa->nr - 1) / isa->nr;
      for (int64_t pc = 0; pc < d; pc += KC) {
        const int64_t kc = std::min<int64_t>(KC, d - pc);
        const float* ab = sc.a.get() + pc * T;
        const float* bb = sc.b.get() + pc * T;
        for (int64_t jr = 0; jr < npan; ++jr) {
          const float* bp = bb + jr * isa->nr * kc;
          for (int64_t ir = 0; ir < mpan; ++ir) {
            // Diagonal tile: micro-tiles entirely at or below the diagonal are never read.
            if (diag && (jr + 1) * isa->nr - 1 <= ir * isa->mr) continue;
            isa->micro(kc, ab + ir * isa->mr * kc, bp, sc.c.get() + ir * isa->mr * T + jr * isa->nr, T,
                       pc == 0);
          }
        }
      }
      ScanArgs s;
      s.c = sc.c.get();
      s.ldc = T;
      s.rows = na;
      s.cols = nb;
      s.i0 = i0;
      s.j0 = j0;
      s.norm_i = norms_pad.data() + i0;
      s.norm_j = norms_pad.data() + j0;
      s.thr = states[tid].thr.data();
      s.diagonal = diag;
      s.fn = offer;
      s.ctx = &ctx;
      isa->scan(s);
    }
  });

  // Merge: the k best of the union by (dist, index); tie counts from each thread's boundary data.
  const int64_t chunk = 1024;
  parallel_for((n + chunk - 1) / chunk, threads, 1, [&](int64_t c, int) {
    std::vector<Cand> all;
    for (int64_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i) {
      all.clear();
      for (const auto& st : states)
        for (int32_t p = 0; p < st.m[i]; ++p) all.push_back({st.topd[i * k + p], st.topi[i * k + p]});
      std::sort(all.begin(), all.end(),
                [](const Cand& a, const Cand& b) { return a.d < b.d || (a.d == b.d && a.j < b.j); });
      for (int64_t p = 0; p < k; ++p) {
        nbr_dist[i * k + p] = all[p].d;
        nbr_index[i * k + p] = all[p].j;
      }
      const float bd = all[k - 1].d;
      int64_t tc = 0, ts = 0;
      for (const auto& st : states) {
        if (st.m[i] == k && st.thr[i] == bd) {
          tc += st.cnt[i];
          ts += st.same[i];
        } else {
          // This thread's boundary is farther (or it saw fewer than k): all its candidates at bd
          // are in its list.
          for (int32_t p = 0; p < st.m[i]; ++p) {
            if (st.topd[i * k + p] == bd) {
              ++tc;
              if (labels && labels[st.topi[i * k + p]] == labels[i]) ++ts;
            }
          }
        }
      }
      tie_count[i] = tc;
      if (labels) tie_same[i] = ts;
    }
  });
}

float knn_pair_dist_cpu(const MatrixView& x, int64_t i, int64_t j) {
  TL_CHECK_ARG(i >= 0 && i < x.rows && j >= 0 && j < x.rows, "knn_pair_dist: row index out of range");
  const int64_t d = x.cols;
  std::vector<float> a(d), b(d);
  load_row_f32(x, i, 0, d, a.data());
  load_row_f32(x, j, 0, d, b.data());
  const bool fused = select_isa()->fused;
  // Independent scalar re-statement of the micro-kernels' chain (std::fma for the FMA paths).
  auto chain = [&](const float* u, const float* v) {
    float acc = 0.f;
    if (fused) {
      for (int64_t p = 0; p < d; ++p) acc = std::fma(u[p], v[p], acc);
    } else {
      for (int64_t p = 0; p < d; ++p) acc = acc + u[p] * v[p];
    }
    return acc;
  };
  return clamp_dist(chain(a.data(), a.data()), chain(b.data(), b.data()), chain(a.data(), b.data()));
}

void knn_boundary_labels_cpu(const MatrixView& x, const int32_t* labels, const int64_t* rows,
                             const float* boundary, int64_t nrows, std::vector<int64_t>& offsets,
                             std::vector<int32_t>& out_labels, std::vector<int64_t>& out_counts,
                             int num_threads) {
  const int64_t n = x.rows, d = x.cols;
  for (int64_t r = 0; r < nrows; ++r)
    TL_CHECK_ARG(rows[r] >= 0 && rows[r] < n, "knn_boundary_labels: row index out of range");
  const KnnIsa* isa = select_isa();
  const int threads = resolve_threads(num_threads);
  const int64_t T = tile_rows(isa);
  const int64_t nt = (n + T - 1) / T;
  const std::vector<float> norms = row_norms(x, isa, threads);
  std::vector<std::vector<int32_t>> labs(nrows);
  // The same packed micro-kernel tiles as knn_loo_cpu (so the same float32 distances), on the
  // rectangle (requested rows) x (all rows): one task per block of T requested rows.
  const int64_t tmp_rows = (x.dtype == DType::f32) ? 1 : std::max(isa->mr, isa->nr);
  parallel_for((nrows + T - 1) / T, threads, 1, [&](int64_t I, int) {
    FloatBuf a = alloc_floats(T * d), b = alloc_floats(T * d), c = alloc_floats(T * T);
    FloatBuf tmp = alloc_floats(tmp_rows * d);
    const int64_t r0 = I * T, na = std::min(T, nrows - r0);
    pack_block(isa, x, r0, na, T, isa->mr, a.get(), tmp.get(), rows);
    for (int64_t J = 0; J < nt; ++J) {
      const int64_t j0 = J * T, nb = std::min(T, n - j0);
      pack_block(isa, x, j0, nb, T, isa->nr, b.get(), tmp.get());
      for (int64_t pc = 0; pc < d; pc += KC) {
        const int64_t kc = std::min<int64_t>(KC, d - pc);
        for (int64_t jr = 0; jr < (nb + isa->nr - 1) / isa->nr; ++jr)
          for (int64_t ir = 0; ir < (na + isa->mr - 1) / isa->mr; ++ir)
            isa->micro(kc, a.get() + pc * T + ir * isa->mr * kc, b.get() + pc * T + jr * isa->nr * kc,
                       c.get() + ir * isa->mr * T + jr * isa->nr, T, pc == 0);
      }
      for (int64_t r = 0; r < na; ++r) {
        const int64_t i = rows[r0 + r];
        const float bd = boundary[r0 + r];
        for (int64_t q = 0; q < nb; ++q) {
          const int64_t j = j0 + q;
          if (j != i && clamp_dist(norms[i], norms[j], c[r * T + q]) == bd) labs[r0 + r].push_back(labels[j]);
        }
      }
    }
  });
  offsets.assign(nrows + 1, 0);
  out_labels.clear();
  out_counts.clear();
  for (int64_t r = 0; r < nrows; ++r) {
    auto& v = labs[r];
    std::sort(v.begin(), v.end());
    for (size_t p = 0; p < v.size();) {
      size_t q = p;
      while (q < v.size() && v[q] == v[p]) ++q;
      out_labels.push_back(v[p]);
      out_counts.push_back((int64_t)(q - p));
      p = q;
    }
    offsets[r + 1] = (int64_t)out_labels.size();
  }
}

}  // namespace tl
