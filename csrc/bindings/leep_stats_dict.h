// transferlab bindings: leep_row_stats' ProbRowStats as the dict Python reads (_leep_stats.py),
// shared by the _C and _cuda wrappers so both report the same keys.
#pragma once

#include "bindings/bindings.h"
#include "leep/leep.h"

namespace tl {

inline py::dict prob_row_stats_dict(const ProbRowStats& s) {
  py::dict d;
  d["nonfinite_rows"] = s.nonfinite_rows;
  d["first_nonfinite_row"] = s.first_nonfinite_row;
  d["negative_rows"] = s.negative_rows;
  d["first_negative_row"] = s.first_negative_row;
  d["bad_sum_rows"] = s.bad_sum_rows;
  d["first_bad_sum_row"] = s.first_bad_sum_row;
  d["min_row_sum"] = s.min_row_sum;
  d["max_row_sum"] = s.max_row_sum;
  return d;
}

}  // namespace tl
