// LDA-family kernels on the CPU (contract: lda/lda.h): class sums, Gram / scatter matrices
// (single and batched over models) and the float64 projection.
//
// Gram (the hot path of SFDA, LogME and H-score): G = Z^T Z with z_i = s_i (x_i - shift), a
// GEMM whose reduction runs over the rows. BLIS-style:
//   * the rows are cut into slabs of S x KC rows (S > 1 only for small D); all threads convert one
//     slab to float64 (shift and scale applied) and pack it twice, as MR-wide panels (the A side)
//     and NR-wide panels (the B side), per KC-row sub-slab;
//   * after a barrier the threads share the upper-triangular part of the D x D output, cut into
//     tasks of (T feature rows) x (W feature columns); a task runs the micro-kernel over its
//     micro-tiles (B micro-panel in L1, the T x KC A block in L2);
//   * the micro-kernels accumulate in place into the caller's gram (no D x D scratch); micro-tiles
//     entirely below the diagonal are skipped; the upper triangle is mirrored at the end.
// Every output element is one multiply-add chain over the rows in increasing order, carried across
// slabs through the output, so the result does not depend on the thread count, on which thread
// ran which task, or on KC. lda_gram_batched_cpu runs the same code per model (bitwise equal to
// separate calls).
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <vector>

#include "common/cpu_features.h"
#include "common/parallel.h"
#include "lda/cpu/lda_internal.h"
#include "lda/lda.h"

namespace tl {
namespace lda_detail {
namespace {

// ------------------------------------------------------------------ generic micro-kernel
// Plain C++ compiled with -ffp-contract=off: a rounded multiply then a rounded add per step.
constexpr int GMR = 4;
constexpr int GNR = 8;

void micro_generic(int64_t kc, const double* a, const double* b, double* c, int64_t ldc) {
  double acc[GMR][GNR];
  for (int r = 0; r < GMR; ++r)
    for (int q = 0; q < GNR; ++q) acc[r][q] = c[r * ldc + q];
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < GMR; ++r) {
      const double av = a[r];
      for (int q = 0; q < GNR; ++q) acc[r][q] = acc[r][q] + av * b[q];
    }
    a += GMR;
    b += GNR;
  }
  for (int r = 0; r < GMR; ++r)
    for (int q = 0; q < GNR; ++q) c[r * ldc + q] = acc[r][q];
}

const LdaIsa kGeneric = {"generic", GMR, GNR, false, micro_generic};

const LdaIsa* select_isa() {
  switch (simd_level()) {
    case SimdLevel::avx512: return isa_avx512();
    case SimdLevel::avx2: return isa_avx2();
    default: return isa_generic();
  }
}

// ------------------------------------------------------------------ buffers
struct FreeDeleter {
  void operator()(double* p) const { std::free(p); }
};
using DoubleBuf = std::unique_ptr<double[], FreeDeleter>;

// 64-byte aligned (the micro-kernels use aligned loads of B), zero-filled.
DoubleBuf alloc_doubles(int64_t count, const char* what) {
  const size_t bytes = ((size_t)std::max<int64_t>(count, 8) * sizeof(double) + 63) / 64 * 64;
  double* p = static_cast<double*>(std::aligned_alloc(64, bytes));
  TL_CHECK_RUNTIME(p != nullptr, std::string("lda: out of memory for ") + what);
  std::memset(p, 0, bytes);
  return DoubleBuf(p);
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Row i, columns [j0, j0 + len), as float64 (exact for every input dtype).
void row_to_f64(const MatrixView& x, int64_t i, int64_t j0, int64_t len, double* dst) {
  const char* row = x.row_ptr(i);
  switch (x.dtype) {
    case DType::f64:
      std::memcpy(dst, reinterpret_cast<const double*>(row) + j0, sizeof(double) * len);
      break;
    case DType::f32: {
      const float* s = reinterpret_cast<const float*>(row) + j0;
      for (int64_t j = 0; j < len; ++j) dst[j] = s[j];
      break;
    }
    case DType::f16: {
      const uint16_t* s = reinterpret_cast<const uint16_t*>(row) + j0;
      for (int64_t j = 0; j < len; ++j) dst[j] = half_to_float(s[j]);
      break;
    }
    case DType::bf16: {
      const uint16_t* s = reinterpret_cast<const uint16_t*>(row) + j0;
      for (int64_t j = 0; j < len; ++j) dst[j] = bf16_to_float(s[j]);
      break;
    }
  }
}

// z_j = (x_ij - shift_j) * scale over the whole row, each step rounded in float64.
void centred_row(const MatrixView& x, int64_t i, const double* shift, double scale, double* dst) {
  const int64_t d = x.cols;
  row_to_f64(x, i, 0, d, dst);
  if (shift != nullptr)
    for (int64_t j = 0; j < d; ++j) dst[j] -= shift[j];
  if (scale != 1.0)
    for (int64_t j = 0; j < d; ++j) dst[j] *= scale;
}

// Writes one row (p of kc) into R-wide panels over `width` features (zero padding past d):
// panel q at q * R * kc, element (p, r) at + p * R + r.
void scatter_panels(const double* z, int64_t d, int64_t width, int R, int64_t kc, int64_t p, double* dst) {
  for (int64_t q0 = 0; q0 < width; q0 += R) {
    double* out = dst + q0 * kc + p * R;
    const int64_t valid = std::min<int64_t>(R, d - q0);
    for (int64_t r = 0; r < valid; ++r) out[r] = z[q0 + r];
    for (int64_t r = std::max<int64_t>(valid, 0); r < R; ++r) out[r] = 0.0;
  }
}

constexpr int64_t kMaxMicroTile = 256;  // mr * nr of every ISA (checked before the kernel runs)

// A micro-tile at (row, col) that crosses the d x d edge: run it on a zero-padded copy and write
// back the valid part (the chains of the valid elements are the same as in place).
void edge_micro(const LdaIsa* isa, int64_t kc, const double* a, const double* b, double* c, int64_t d, int64_t row,
                int64_t col) {
  double tile[kMaxMicroTile];
  const int64_t mr = isa->mr, nr = isa->nr;
  const int64_t vr = std::min(mr, d - row), vc = std::min(nr, d - col);
  for (int64_t r = 0; r < mr; ++r)
    for (int64_t q = 0; q < nr; ++q) tile[r * nr + q] = (r < vr && q < vc) ? c[(row + r) * d + col + q] : 0.0;
  isa->micro(kc, a, b, tile, nr);
  for (int64_t r = 0; r < vr; ++r)
    for (int64_t q = 0; q < vc; ++q) c[(row + r) * d + col + q] = tile[r * nr + q];
}

struct GramTask {
  int64_t row0, row1;  // feature rows of the A block (a multiple of MR wide)
  int64_t col0, col1;  // feature columns (a multiple of NR wide), col1 > row0
};

}  // namespace

const LdaIsa* isa_generic() { return &kGeneric; }

}  // namespace lda_detail

using namespace lda_detail;

void lda_class_sums_cpu(const MatrixView& x, const int32_t* labels, int64_t n_classes, const double* shift,
                        const double* row_weight, int64_t* counts, double* sums, int num_threads) {
  const int64_t n = x.rows, d = x.cols;
  TL_CHECK_ARG(d >= 1, "empty feature bank: n_features=0");
  TL_CHECK_ARG(n_classes >= 1, "n_classes must be >= 1");
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= n_classes)
      throw std::invalid_argument("labels must be in [0, n_classes): labels[" + std::to_string(i) +
                                  "] = " + std::to_string(labels[i]) + " with n_classes=" + std::to_string(n_classes));
  }
  for (int64_t i = 0; i < n; ++i) ++counts[labels[i]];
  // Column blocks: each task owns sums[:, j0:j0+CB] and walks every row in order, so each element
  // is one chain over the rows whatever the thread count. One block per thread: long contiguous
  // row segments stream several times faster than short ones.
  const int threads = (int)std::max<int64_t>(
      1, std::min<int64_t>(resolve_threads(num_threads), (int64_t)((double)n * (double)d / (double)(1 << 20))));
  const int64_t CB = std::max<int64_t>(8, round_up((d + threads - 1) / threads, 8));
  const int64_t nblocks = (d + CB - 1) / CB;
  parallel_for(nblocks, threads, 1, [&](int64_t blk, int) {
    const int64_t j0 = blk * CB, len = std::min(CB, d - j0);
    std::vector<double> zbuf(len);
    double* z = zbuf.data();
    for (int64_t i = 0; i < n; ++i) {
      row_to_f64(x, i, j0, len, z);
      if (shift != nullptr)
        for (int64_t j = 0; j < len; ++j) z[j] -= shift[j0 + j];
      double* s = sums + (int64_t)labels[i] * d + j0;
      if (row_weight != nullptr) {
        const double w = row_weight[i];
        for (int64_t j = 0; j < len; ++j) s[j] += z[j] * w;
      } else {
        for (int64_t j = 0; j < len; ++j) s[j] += z[j];
      }
    }
  });
}

void lda_gram_cpu(const MatrixView& x, const double* shift, const double* row_scale, double* gram,
                  int num_threads) {
  const int64_t n = x.rows, d = x.cols;
  TL_CHECK_ARG(d >= 1, "empty feature bank: n_features=0");
  if (n == 0) return;
  const LdaIsa* isa = select_isa();
  const int64_t mr = isa->mr, nr = isa->nr;
  TL_CHECK_RUNTIME(mr * nr <= kMaxMicroTile, "lda_gram: micro-tile larger than the edge buffer");
  const int64_t l = std::lcm(mr, nr);
  // Tile edge: ~192 features (the A block, 192 x KC doubles = 384 KB, stays in a 1 MB L2).
  const int64_t T = std::min(std::max<int64_t>(1, (192 + l / 2) / l) * l, round_up(d, l));
  const int64_t nt = (d + T - 1) / T;
  const int64_t dp = nt * T;
  const int64_t rows_end = round_up(d, mr), cols_end = round_up(d, nr);
  const int64_t W = round_up(48, nr);  // columns per task
  // A slab holds S sub-slabs of KC rows; small d gets several, so that the work between two
  // barriers (~16M multiply-adds) dwarfs their cost, within a 64 MB packing budget.
  const double tile_work = (double)KC * (double)d * (double)d / 2;
  int64_t S = std::max<int64_t>(1, (int64_t)((double)(1 << 24) / tile_work));
  S = std::min<int64_t>({S, 64, std::max<int64_t>(1, (8 << 20) / (2 * KC * dp))});
  const int64_t slab = std::min(S * KC, round_up(n, KC));
  // Threads: one per ~4M multiply-adds of a slab (tiny problems run on one thread: no barrier
  // waits behind a BLAS pool still spinning on the other cores). Never changes the bits.
  const double slab_work = (double)std::min(n, slab) * (double)d * (double)d / 2;
  const int threads = (int)std::max<int64_t>(
      1, std::min<int64_t>(resolve_threads(num_threads), (int64_t)(slab_work / (double)(1 << 22))));

  std::vector<GramTask> tasks;
  for (int64_t I = 0; I < nt; ++I) {
    const int64_t r0 = I * T, r1 = std::min(r0 + T, rows_end);
    for (int64_t c0 = r0 - r0 % nr; c0 < cols_end; c0 += W) tasks.push_back({r0, r1, c0, std::min(c0 + W, cols_end)});
  }

  // Sub-slab k of the packs starts at k * KC * dp; inside it, panel q at q * R * kc_k.
  DoubleBuf apack = alloc_doubles(dp * slab, "the Gram A panels");
  DoubleBuf bpack = alloc_doubles(dp * slab, "the Gram B panels");
  DoubleBuf trows = alloc_doubles((int64_t)threads * d, "row buffers");
  // The micro-kernels accumulate straight into the caller's gram (its upper triangle: chunked
  // passes continue the same chains); micro-tiles that cross the edge go through a padded copy.
  double* C = gram;

  const int64_t ntasks = (int64_t)tasks.size();
  // Nothing in this region throws (all memory is allocated above), so no exception capture.
#pragma omp parallel num_threads(threads)
  {
    double* z = trows.get() + (int64_t)omp_get_thread_num() * d;
    for (int64_t s0 = 0; s0 < n; s0 += slab) {
      const int64_t rows = std::min(slab, n - s0);
#pragma omp for schedule(static)
      for (int64_t p = 0; p < rows; ++p) {
        const int64_t k = p / KC, kc = std::min(KC, rows - k * KC);
        centred_row(x, s0 + p, shift, row_scale ? row_scale[s0 + p] : 1.0, z);
        scatter_panels(z, d, rows_end, (int)mr, kc, p - k * KC, apack.get() + k * KC * dp);
        scatter_panels(z, d, cols_end, (int)nr, kc, p - k * KC, bpack.get() + k * KC * dp);
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t t = 0; t < ntasks; ++t) {
        const GramTask& tk = tasks[t];
        for (int64_t k = 0; k * KC < rows; ++k) {  // sub-slabs in row order: the chain order
          const int64_t kc = std::min(KC, rows - k * KC);
          const double* ab = apack.get() + k * KC * dp;
          const double* bb = bpack.get() + k * KC * dp;
          for (int64_t col = tk.col0; col < tk.col1; col += nr) {
            for (int64_t row = tk.row0; row < tk.row1; row += mr) {
              if (col + nr - 1 < row) break;  // this and every later micro-tile lie below the diagonal
              if (row + mr <= d && col + nr <= d) {
                isa->micro(kc, ab + row * kc, bb + col * kc, C + row * d + col, d);
              } else {
                edge_micro(isa, kc, ab + row * kc, bb + col * kc, C, d, row, col);
              }
            }
          }
        }
      }
    }
  }

  // Mirror the upper triangle (the lower one only held scratch of diagonal micro-tiles).
  parallel_for(d, threads, 64, [&](int64_t a, int) {
    for (int64_t b = 0; b < a; ++b) gram[a * d + b] = gram[b * d + a];
  });
}

void lda_gram_batched_cpu(const MatrixView* xs, int64_t n_models, const double* const* shifts,
                          const double* row_scale, double* const* grams, int num_threads) {
  TL_CHECK_ARG(n_models >= 0, "n_models must be >= 0");
  for (int64_t m = 1; m < n_models; ++m)
    TL_CHECK_ARG(xs[m].rows == xs[0].rows || row_scale == nullptr,
                 "lda_gram_batched: with a shared row_scale every model must have the same number of rows");
  // One model at a time on all threads: each call is the single-model kernel, so the batch is
  // bitwise equal to separate calls (the scatter of every model is a D x D job large enough to
  // keep all threads busy).
  for (int64_t m = 0; m < n_models; ++m)
    lda_gram_cpu(xs[m], shifts ? shifts[m] : nullptr, row_scale, grams[m], num_threads);
}

void lda_project_cpu(const MatrixView& x, const double* w, const double* b, int64_t n_out, double* out,
                     int num_threads) {
  const int64_t n = x.rows, d = x.cols, K = n_out;
  TL_CHECK_ARG(d >= 1, "empty feature bank: n_features=0");
  TL_CHECK_ARG(K >= 1, "n_out must be >= 1");
  if (n == 0) return;
  const LdaIsa* isa = select_isa();
  const int threads = (int)std::max<int64_t>(
      1, std::min<int64_t>(resolve_threads(num_threads), (int64_t)((double)n * d * K / (double)(1 << 22))));
  const int64_t mr = isa->mr, nr = isa->nr;
  const int64_t kp = round_up(K, nr);
  const int64_t MB = mr * 16;  // rows per task
  // W packed once: K block pc (KC columns of x) at pc * kp, NR panel jr at + jr * NR * kc,
  // element (p, q) at + p * NR + q.
  DoubleBuf wpack = alloc_doubles(kp * d, "the packed projection");
  for (int64_t pc = 0; pc < d; pc += KC) {
    const int64_t kc = std::min(KC, d - pc);
    for (int64_t k = 0; k < K; ++k) {
      double* dst = wpack.get() + pc * kp + (k / nr) * nr * kc + (k % nr);
      const double* src = w + k * d + pc;
      for (int64_t p = 0; p < kc; ++p) dst[p * nr] = src[p];
    }
  }
  const int64_t ntasks = (n + MB - 1) / MB;
  std::vector<DoubleBuf> apacks, cbufs, trows;
  for (int t = 0; t < threads; ++t) {
    apacks.push_back(alloc_doubles(MB * d, "projection panels"));
    cbufs.push_back(alloc_doubles(MB * kp, "projection tile"));
    trows.push_back(alloc_doubles(d, "a row buffer"));
  }
  parallel_for(ntasks, threads, 1, [&](int64_t t, int tid) {
    double* A = apacks[tid].get();
    double* C = cbufs[tid].get();
    double* z = trows[tid].get();
    const int64_t i0 = t * MB, rows = std::min(MB, n - i0);
    const int64_t rows_p = round_up(rows, mr);
    // A: K block pc at pc * MB, MR panel ir at + ir * MR * kc, element (p, r) at + p * MR + r.
    for (int64_t r = 0; r < rows_p; ++r) {
      if (r < rows) row_to_f64(x, i0 + r, 0, d, z);
      for (int64_t pc = 0; pc < d; pc += KC) {
        const int64_t kc = std::min(KC, d - pc);
        double* dst = A + pc * MB + (r / mr) * mr * kc + (r % mr);
        if (r < rows) {
          for (int64_t p = 0; p < kc; ++p) dst[p * mr] = z[pc + p];
        } else {
          for (int64_t p = 0; p < kc; ++p) dst[p * mr] = 0.0;
        }
      }
      for (int64_t k = 0; k < kp; ++k) C[r * kp + k] = (b != nullptr && k < K) ? b[k] : 0.0;
    }
    for (int64_t pc = 0; pc < d; pc += KC) {
      const int64_t kc = std::min(KC, d - pc);
      for (int64_t jr = 0; jr < kp; jr += nr)
        for (int64_t ir = 0; ir < rows_p; ir += mr)
          isa->micro(kc, A + pc * MB + ir * kc, wpack.get() + pc * kp + jr * kc, C + ir * kp + jr, kp);
    }
    for (int64_t r = 0; r < rows; ++r) std::memcpy(out + (i0 + r) * K, C + r * kp, sizeof(double) * K);
  });
}

}  // namespace tl
