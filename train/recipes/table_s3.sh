#!/usr/bin/env bash
# Table S3 at the embedded scale (paper App. D): the same LAM trained on in-the-wild video alone
# (train/configs/pixel_lam_wild.yaml) and mixed with the frames of the action worlds, never their
# actions (pixel_lam_mixed.yaml: a quarter reach, a quarter drive), then for each an adapter
# controller on reach and on drive, then the report's planning section over the four controllers:
# its "Table S3" groups them by LAM with the share of world clips each LAM saw.
#
#   bash train/recipes/table_s3.sh                     # from scratch, into ./runs/table_s3
#   INIT=assets/checkpoints/pixel-noisy STEPS=1500 LR="train.lr_muon=0.006 train.lr_adamw=0.0003" \
#     bash train/recipes/table_s3.sh                   # both arms continue the shipped flagship
#   EXTRA="train.steps=2 data.val_clips=4 train.eval_every=0" RUN=/tmp/s3 EPISODES=1 \
#     DRIVE_EPISODES=1 bash train/recipes/table_s3.sh  # a dry run of every stage
#
# Stages (a job whose final/ exists is skipped, one with checkpoints resumes):
#   1. the two LAMs side by side, one thread each (from scratch: 2000 steps of 16 clips each,
#      ~37 min alone on 2 threads; warm-started with INIT, the KL at full weight from step 0)
#   2. four controllers, two at a time (~6 min each)
#   3. the report over the controllers (two processes, one per LAM, merged): controller error,
#      reach (EPISODES, default 16) and drive (DRIVE_EPISODES, default 64) planning
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
RUN="${RUN:-$ROOT/runs/table_s3}"
EXTRA="${EXTRA:-}"     # overrides appended to every job (dry runs)
INIT="${INIT:-}"       # warm-start both LAMs from this pipeline folder
STEPS="${STEPS:-2000}"
SEED="${SEED:-4}"
LR="${LR:-}"           # e.g. "train.lr_muon=0.006 train.lr_adamw=0.0003" for a continuation
source "$ROOT/train/recipes/common.sh"   # exports, $RUN/logs, cd $ROOT; say, stage, run_job

lams() {
  local init=() arm pids=()
  [[ -n "$INIT" ]] && init=(--init-from "$INIT" train.reg_warmup_start=0 train.reg_warmup_fraction=0)
  for arm in wild mixed; do
    # shellcheck disable=SC2086  # LR holds several overrides
    run_job "$arm" lam "pixel_lam_$arm" "train.steps=$STEPS" "train.seed=$SEED" train.threads=1 \
      "${init[@]}" $LR &
    pids+=($!)
  done
  for arm in "${pids[@]}"; do wait "$arm"; done
}

controllers() {
  local world arm pids
  for world in reach drive; do
    pids=()
    for arm in wild mixed; do
      run_job "${arm}_controller_$world" controller "pixel_controller_$world" \
        "lam_path=$RUN/$arm/final" &
      pids+=($!)
    done
    for arm in "${pids[@]}"; do wait "$arm"; done
  done
}

report() {
  local arm pids=() parts=()
  for arm in wild mixed; do
    OMP_NUM_THREADS=1 "$PY" -m lam_core.eval.report --checkpoints "$RUN" \
      --out "$RUN/report-$arm" --only "${arm}_controller_*" --episodes "${EPISODES:-16}" \
      --drive-episodes "${DRIVE_EPISODES:-64}" > "$RUN/logs/report-$arm.log" 2>&1 &
    pids+=($!)
    parts+=("$RUN/report-$arm/report.json")
  done
  for arm in "${pids[@]}"; do
    wait "$arm" || { say "FAILED report (see $RUN/logs/report-*.log)"; return 1; }
  done
  "$PY" -m lam_core.eval.report --merge "${parts[@]}" --out "$RUN/report" \
    > "$RUN/logs/report.log" 2>&1 || { say "FAILED merge (see $RUN/logs/report.log)"; return 1; }
  say "report: $RUN/report; Table S3:"
  sed -n '/^Table S3/,/^$/p' "$RUN/logs/report.log"
}

say "Table S3: run folder $RUN${INIT:+, both LAMs warm-started from $INIT}, $(nproc) cores"
stage "1/3 LAMs: in-the-wild alone, mixed with the worlds' frames" lams
stage "2/3 controllers (reach, drive) on each" controllers
stage "3/3 report: controllers and planning" report
say "Table S3 finished in $(( $(date +%s) - BEGIN )) s"
