#!/usr/bin/env bash
# Install compile time, before and after a build change, side by side in the same run (issue 16):
#   bench/install_time.sh BEFORE_CLONE AFTER_CLONE [VENV]
# Each clone is installed with `pip install --no-deps -e` (pip's isolated build environment, as the README's
# commands do) into a throw-away venv, with TRANSFERLAB_CUDA=ON as in CI: first from scratch, then again with
# no change (a re-install), then after touching one CUDA source. Prints wall-clock and CPU seconds (user+sys of
# pip and every compiler it waited for) per step, and the 1-minute load average before each step.
set -uo pipefail
before=$(realpath "$1"); after=$(realpath "$2"); venv=${3:-$(mktemp -d)/venv}
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
export TRANSFERLAB_CUDA=ON
step() {  # label dir
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  /usr/bin/time -f "%e %U %S" -o /tmp/install_time.$$ "$venv/bin/pip" install -q --no-deps -e "$2" \
    >/tmp/install_log.$$ 2>&1 || { echo "$1: FAILED"; tail -20 /tmp/install_log.$$; return 1; }
  read -r wall user sys < /tmp/install_time.$$
  printf '%-34s %7.1f s wall %7.1f s CPU   (load before %s)\n' "$1" "$wall" "$(echo "$user + $sys" | bc)" "$load"
}
step "before: first install"             "$before"
step "after:  first install"             "$after"
step "after:  re-install, no change"     "$after"
touch "$after"/csrc/knn/cuda/*.cu
step "after:  re-install, .cu touched"   "$after"
step "before: re-install, no change"     "$before"
