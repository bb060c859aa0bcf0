// LEEP's passes over P on the CPU (contract: leep/leep.h; row primitives: leep_internal.h).
//
//   row stats  parallel over row chunks; per-chunk partial stats merged in chunk order.
//   joint      a task owns (a group of classes) x (a range of columns) and walks the rows of its
//              classes in row order, adding the owned part of row i straight into J[y_i, range].
//              Each J element is therefore the same left-to-right chain of adds whatever the
//              thread count or the split (plan_joint), and a later call on the next rows continues
//              that chain: chunked == one-shot, bitwise. Tasks never share an output element, so
//              no locks and no per-thread copies of J.
//   eep        per row, a fixed-lane float64 dot product with the row of cond for y_i.
// Half types are converted to float32 and logits to float64 probabilities one piece (<= kTile
// columns) at a time: softmax(L) is never materialised, exp(L[i, z] - lse_i) is recomputed by each
// pass with the same float64 operations (the ISA's exp, bitwise equal on every ISA), so joint and
// eep see identical probabilities.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common/cpu_features.h"
#include "common/parallel.h"
#include "leep/cpu/leep_internal.h"
#include "leep/leep.h"

namespace tl {
namespace leep_detail {

double reduce_lanes(const double* l) {
  return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

namespace {

// ------------------------------------------------------------------ generic primitives
// Plain C++ under -ffp-contract=off: the same per-lane chains as the AVX2 file.
void accum_f32_g(const float* src, int64_t len, double* dst) {
  for (int64_t j = 0; j < len; ++j) dst[j] = dst[j] + (double)src[j];
}
void accum_f64_g(const double* src, int64_t len, double* dst) {
  for (int64_t j = 0; j < len; ++j) dst[j] = dst[j] + src[j];
}
void dot_f32_g(const float* p, const double* w, int64_t len, double* lanes) {
  for (int64_t j = 0; j < len; ++j) lanes[j % kLanes] = lanes[j % kLanes] + (double)p[j] * w[j];
}
void dot_f64_g(const double* p, const double* w, int64_t len, double* lanes) {
  for (int64_t j = 0; j < len; ++j) lanes[j % kLanes] = lanes[j % kLanes] + p[j] * w[j];
}
template <class T>
void scan_g(const T* p, int64_t len, double* lanes, int* bad) {
  int b = 0;
  for (int64_t j = 0; j < len; ++j) {
    const double x = (double)p[j];
    if (!std::isfinite(x)) b |= 1;
    if (x < 0.0) b |= 2;
    lanes[j % kLanes] = lanes[j % kLanes] + x;
  }
  *bad |= b;
}
void scan_f32_g(const float* p, int64_t len, double* lanes, int* bad) { scan_g(p, len, lanes, bad); }
void scan_f64_g(const double* p, int64_t len, double* lanes, int* bad) { scan_g(p, len, lanes, bad); }
// exp(x) by the sequence of leep_internal.h; exp4 in the AVX2 file performs the same operations.
double exp_one(double x) {
  const bool keep = x >= kExpFlush;
  x = x < kExpMax ? x : kExpMax;
  x = keep ? x : 0.0;
  const double t = x * kLog2e + kRoundMagic;
  const double kd = t - kRoundMagic;
  const double r = (x - kd * kLn2Hi) - kd * kLn2Lo;
  double p = kExpCoef[13];
  for (int c = 12; c >= 0; --c) p = p * r + kExpCoef[c];
  int64_t tb, mb;
  std::memcpy(&tb, &t, sizeof tb);
  std::memcpy(&mb, &kRoundMagic, sizeof mb);
  const uint64_t sb = (uint64_t)(tb - mb + 1023) << 52;  // 2^k, k = tb - mb in [-1021, 1023]
  double scale;
  std::memcpy(&scale, &sb, sizeof scale);
  return keep ? p * scale : 0.0;
}
void exp_f32_g(const float* x, double shift, int64_t len, double* out) {
  for (int64_t j = 0; j < len; ++j) out[j] = exp_one((double)x[j] - shift);
}
void exp_f64_g(const double* x, double shift, int64_t len, double* out) {
  for (int64_t j = 0; j < len; ++j) out[j] = exp_one(x[j] - shift);
}
void half_to_f32_g(const uint16_t* src, bool bf16, int64_t len, float* dst) {
  for (int64_t j = 0; j < len; ++j) dst[j] = bf16 ? bf16_to_float(src[j]) : half_to_float(src[j]);
}

const LeepIsa kGeneric = {"generic",  accum_f32_g, accum_f64_g, dot_f32_g,    dot_f64_g,
                          scan_f32_g, scan_f64_g,  exp_f32_g,   exp_f64_g,    half_to_f32_g};

const LeepIsa* select_isa() {
  switch (simd_level()) {
    case SimdLevel::avx512: return isa_avx512();
    case SimdLevel::avx2: return isa_avx2();
    default: return &kGeneric;
  }
}

// ------------------------------------------------------------------ row pieces
// Row i, columns [z0, z0 + len), len <= kTile, as float32 (f) or float64 (d): a pointer into P
// when no conversion is needed, else the converted values in the caller's buffers. With
// from_logits the values are the probabilities exp(L - lse) (float64).
struct Piece {
  const float* f = nullptr;
  const double* d = nullptr;
};

struct Buffers {
  std::vector<float> f;
  std::vector<double> d;
  Buffers() : f(kTile), d(kTile) {}
};

Piece load_piece(const LeepIsa* isa, const MatrixView& v, int64_t i, int64_t z0, int64_t len, Buffers& buf) {
  const char* row = v.row_ptr(i);
  Piece p;
  switch (v.dtype) {
    case DType::f32: p.f = reinterpret_cast<const float*>(row) + z0; break;
    case DType::f64: p.d = reinterpret_cast<const double*>(row) + z0; break;
    default:
      isa->half_to_f32(reinterpret_cast<const uint16_t*>(row) + z0, v.dtype == DType::bf16, len, buf.f.data());
      p.f = buf.f.data();
  }
  return p;
}

Piece load_probs(const LeepIsa* isa, const MatrixView& v, int64_t i, int64_t z0, int64_t len, bool from_logits,
                 const double* row_lse, Buffers& buf) {
  Piece p = load_piece(isa, v, i, z0, len, buf);
  if (!from_logits) return p;
  double* out = buf.d.data();
  if (p.f) isa->exp_f32(p.f, row_lse[i], len, out);
  else isa->exp_f64(p.d, row_lse[i], len, out);
  return Piece{nullptr, out};
}

// Pieces of a whole row: f32/f64 probability rows need no conversion, so they go in one call.
int64_t piece_len(const MatrixView& v, bool from_logits) {
  const bool direct = !from_logits && (v.dtype == DType::f32 || v.dtype == DType::f64);
  return direct ? std::max<int64_t>(v.cols, 1) : kTile;
}

void check_common(const MatrixView& p, const char* fn) {
  TL_CHECK_ARG(p.rows >= 0 && p.cols >= 1, std::string(fn) + ": source_probs must have at least one column");
  TL_CHECK_ARG(p.data != nullptr || p.rows == 0, std::string(fn) + ": source_probs has no data");
}

void check_labels(const int32_t* labels, int64_t n, int64_t n_classes, const char* fn) {
  TL_CHECK_ARG(n_classes >= 1, std::string(fn) + ": n_classes must be >= 1");
  TL_CHECK_ARG(labels != nullptr || n == 0, std::string(fn) + ": labels are required");
  for (int64_t i = 0; i < n; ++i) {
    if (labels[i] < 0 || labels[i] >= n_classes)
      throw std::invalid_argument(std::string(fn) + ": labels[" + std::to_string(i) + "] = " +
                                  std::to_string(labels[i]) + " is outside [0, n_classes=" +
                                  std::to_string(n_classes) + ")");
  }
}

// Maximum of a finite run (exact in any order; lanes let the compiler vectorise it).
template <class T>
double lane_max(const T* p, int64_t len) {
  double m[kLanes];
  for (int64_t l = 0; l < kLanes; ++l) m[l] = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < len; ++j) {
    const double x = (double)p[j];
    m[j % kLanes] = x > m[j % kLanes] ? x : m[j % kLanes];
  }
  double r = m[0];
  for (int64_t l = 1; l < kLanes; ++l) r = m[l] > r ? m[l] : r;
  return r;
}

// Per-row statistics; the probability row sum in *sum (lane order), with logits lse in *lse.
void row_stats_one(const LeepIsa* isa, const MatrixView& v, int64_t i, bool from_logits, Buffers& buf, int* bad,
                   double* sum, double* lse) {
  const int64_t z = v.cols, step = piece_len(v, false);
  double lanes[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t z0 = 0; z0 < z; z0 += step) {
    const int64_t len = std::min(step, z - z0);
    const Piece p = load_piece(isa, v, i, z0, len, buf);
    if (p.f) isa->scan_f32(p.f, len, lanes, bad);
    else isa->scan_f64(p.d, len, lanes, bad);
    if (from_logits) mx = std::max(mx, p.f ? lane_max(p.f, len) : lane_max(p.d, len));
  }
  *sum = reduce_lanes(lanes);
  if (!from_logits) return;
  if (*bad & 1) {
    *lse = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  // log sum exp(L - max) + max: every term <= 1 and one term == 1, so no overflow and no log(0);
  // lse >= max, so the later exp(L - lse) never see a positive argument.
  double sl[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  int unused = 0;
  for (int64_t z0 = 0; z0 < z; z0 += kTile) {
    const int64_t len = std::min(kTile, z - z0);
    const Piece p = load_piece(isa, v, i, z0, len, buf);
    if (p.f) isa->exp_f32(p.f, mx, len, buf.d.data());
    else isa->exp_f64(p.d, mx, len, buf.d.data());
    isa->scan_f64(buf.d.data(), len, sl, &unused);
  }
  *lse = mx + std::log(reduce_lanes(sl));
}

void merge(ProbRowStats& into, const ProbRowStats& s, bool& have_sum) {
  auto add = [](int64_t& count, int64_t& first, int64_t c, int64_t f) {
    if (c && first < 0) first = f;
    count += c;
  };
  add(into.nonfinite_rows, into.first_nonfinite_row, s.nonfinite_rows, s.first_nonfinite_row);
  add(into.negative_rows, into.first_negative_row, s.negative_rows, s.first_negative_row);
  add(into.bad_sum_rows, into.first_bad_sum_row, s.bad_sum_rows, s.first_bad_sum_row);
  if (!std::isnan(s.min_row_sum)) {
    into.min_row_sum = have_sum ? std::min(into.min_row_sum, s.min_row_sum) : s.min_row_sum;
    into.max_row_sum = have_sum ? std::max(into.max_row_sum, s.max_row_sum) : s.max_row_sum;
    have_sum = true;
  }
}

constexpr int64_t kRowChunk = 256;

// Work split of leep_joint: G groups of whole classes (balanced by row count, largest class first
// to the lightest group) times R column ranges. A task (g, r) walks the rows of group g in row
// order over the columns of range r. Classes come first because a task then reads whole rows
// (contiguous, prefetcher-friendly); column ranges (>= kMinCols columns) are added only when a
// group is too large a share of the rows (few classes, or one dominant class). None of this
// changes what is added to a J element or in what order.
struct JointPlan {
  int64_t groups = 1, ranges = 1;
  std::vector<int64_t> offsets{0, 0};  // rows of group g: rows[offsets[g] .. offsets[g + 1])
  std::vector<int64_t> rows;           // empty: one group holding every row (row k is row k)
};

JointPlan plan_joint(const int32_t* labels, int64_t n, int64_t n_classes, int64_t z, int threads) {
  constexpr int64_t kMinCols = 64;
  JointPlan plan;
  plan.offsets = {0, n};
  if (threads <= 1 || n == 0) return plan;
  std::vector<int64_t> count(n_classes, 0);
  for (int64_t i = 0; i < n; ++i) ++count[labels[i]];
  const int64_t groups = std::min<int64_t>(n_classes, 4 * (int64_t)threads);
  std::vector<int64_t> order(n_classes), load(groups, 0);
  std::vector<int32_t> group_of(n_classes, 0);
  for (int64_t c = 0; c < n_classes; ++c) order[c] = c;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return count[a] > count[b]; });
  for (const int64_t c : order) {
    const int64_t g = std::min_element(load.begin(), load.end()) - load.begin();
    group_of[c] = (int32_t)g;
    load[g] += count[c];
  }
  const int64_t heaviest = *std::max_element(load.begin(), load.end());
  // Aim for no task above ~1/(2 * threads) of the rows.
  const int64_t want = (2 * threads * heaviest + n - 1) / n;
  plan.groups = groups;
  plan.ranges = std::max<int64_t>(1, std::min<int64_t>(want, z / kMinCols));
  plan.offsets.assign(groups + 1, 0);
  for (int64_t g = 0; g < groups; ++g) plan.offsets[g + 1] = plan.offsets[g] + load[g];
  plan.rows.resize(n);
  std::vector<int64_t> next(plan.offsets.begin(), plan.offsets.end() - 1);
  for (int64_t i = 0; i < n; ++i) plan.rows[next[group_of[labels[i]]]++] = i;
  return plan;
}

}  // namespace
}  // namespace leep_detail

using namespace leep_detail;

void leep_row_stats_cpu(const MatrixView& p, bool from_logits, double sum_tolerance, ProbRowStats* stats,
                        double* row_lse, int num_threads) {
  check_common(p, "leep_row_stats");
  TL_CHECK_ARG(stats != nullptr, "leep_row_stats: stats is required");
  TL_CHECK_ARG(!from_logits || row_lse != nullptr || p.rows == 0,
               "leep_row_stats: row_lse is required with from_logits");
  TL_CHECK_ARG(sum_tolerance >= 0.0, "leep_row_stats: sum_tolerance must be >= 0");
  const LeepIsa* isa = select_isa();
  const int64_t n = p.rows, nchunks = (n + kRowChunk - 1) / kRowChunk;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<ProbRowStats> part(nchunks);
  parallel_for(nchunks, num_threads, 1, [&](int64_t c, int) {
    Buffers buf;
    ProbRowStats& s = part[c];
    s.min_row_sum = nan;  // NaN = no finite row in this chunk
    s.max_row_sum = nan;
    auto note = [](int64_t& count, int64_t& first, int64_t i) {
      if (count++ == 0) first = i;
    };
    for (int64_t i = c * kRowChunk; i < std::min(n, (c + 1) * kRowChunk); ++i) {
      int bad = 0;
      double sum = 0.0, lse = 0.0;
      row_stats_one(isa, p, i, from_logits, buf, &bad, &sum, &lse);
      if (from_logits) row_lse[i] = lse;
      if (bad & 1) {
        note(s.nonfinite_rows, s.first_nonfinite_row, i);
        continue;
      }
      s.min_row_sum = std::isnan(s.min_row_sum) ? sum : std::min(s.min_row_sum, sum);
      s.max_row_sum = std::isnan(s.max_row_sum) ? sum : std::max(s.max_row_sum, sum);
      if (from_logits) continue;  // any real logit is valid
      if (bad & 2) note(s.negative_rows, s.first_negative_row, i);
      if (!(std::fabs(sum - 1.0) <= sum_tolerance)) note(s.bad_sum_rows, s.first_bad_sum_row, i);
    }
  });
  ProbRowStats out;
  bool have_sum = false;
  for (const auto& s : part) merge(out, s, have_sum);
  if (!have_sum) out.min_row_sum = out.max_row_sum = nan;
  *stats = out;
}

void leep_joint_cpu(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                    const double* row_lse, double* joint, int num_threads) {
  check_common(p, "leep_joint");
  check_labels(labels, p.rows, n_classes, "leep_joint");
  TL_CHECK_ARG(joint != nullptr, "leep_joint: joint is required");
  TL_CHECK_ARG(!from_logits || row_lse != nullptr || p.rows == 0, "leep_joint: row_lse is required with from_logits");
  const LeepIsa* isa = select_isa();
  const int64_t n = p.rows, z = p.cols;
  const int threads = threads_for_work(num_threads, (double)n * (double)z);
  const JointPlan plan = plan_joint(labels, n, n_classes, z, threads);
  const int64_t ranges = plan.ranges;
  auto bound = [&](int64_t r) { return r == ranges ? z : (r * z / ranges) / kLanes * kLanes; };
  parallel_for(plan.groups * ranges, threads, 1, [&](int64_t t, int) {
    Buffers buf;
    const int64_t g = t / ranges, r = t % ranges;
    const int64_t zb = bound(r), ze = bound(r + 1);
    for (int64_t k = plan.offsets[g]; k < plan.offsets[g + 1]; ++k) {  // the group's rows, in row order
      const int64_t i = plan.rows.empty() ? k : plan.rows[k];
      double* dst = joint + (int64_t)labels[i] * z;
      for (int64_t z0 = zb; z0 < ze; z0 += kTile) {
        const int64_t len = std::min(kTile, ze - z0);
        const Piece pc = load_probs(isa, p, i, z0, len, from_logits, row_lse, buf);
        if (pc.f) isa->accum_f32(pc.f, len, dst + z0);
        else isa->accum_f64(pc.d, len, dst + z0);
      }
    }
  });
}

void leep_eep_cpu(const MatrixView& p, const int32_t* labels, int64_t n_classes, bool from_logits,
                  const double* row_lse, const double* cond, double* eep, int num_threads) {
  check_common(p, "leep_eep");
  check_labels(labels, p.rows, n_classes, "leep_eep");
  TL_CHECK_ARG(cond != nullptr && eep != nullptr, "leep_eep: cond and eep are required");
  TL_CHECK_ARG(!from_logits || row_lse != nullptr || p.rows == 0, "leep_eep: row_lse is required with from_logits");
  const LeepIsa* isa = select_isa();
  const int64_t n = p.rows, z = p.cols, step = piece_len(p, from_logits);
  const int64_t nchunks = (n + kRowChunk - 1) / kRowChunk;
  parallel_for(nchunks, num_threads, 1, [&](int64_t c, int) {
    Buffers buf;
    for (int64_t i = c * kRowChunk; i < std::min(n, (c + 1) * kRowChunk); ++i) {
      const double* w = cond + (int64_t)labels[i] * z;
      double lanes[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t z0 = 0; z0 < z; z0 += step) {
        const int64_t len = std::min(step, z - z0);
        const Piece pc = load_probs(isa, p, i, z0, len, from_logits, row_lse, buf);
        if (pc.f) isa->dot_f32(pc.f, w + z0, len, lanes);
        else isa->dot_f64(pc.d, w + z0, len, lanes);
      }
      eep[i] = reduce_lanes(lanes);
    }
  });
}

}  // namespace tl
