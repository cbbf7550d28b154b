#!/usr/bin/env bash
# The embedded default (the pixel preset), end to end on a 2-core CPU, then the models
# in fp16 into assets/checkpoints/ (hub layout, controllers share the flagship's LAM by path).
#
#   bash train/recipes/pixel.sh                                   # runs in ./runs/pixel
#   INIT=assets/checkpoints/pixel-noisy FLAGSHIP_STEPS=3000 bash train/recipes/pixel.sh
#                                            # continue the shipped flagship for 3000 more steps
#   FLAGSHIP=runs/flagship/run1/final bash train/recipes/pixel.sh # reuse a flagship run
#   EXTRA="train.steps=2 data.val_clips=4" RUN=/tmp/x ASSETS=/tmp/x/assets bash train/recipes/pixel.sh
#                                                                 # a dry run of every stage
#
# Stages (each prints its wall time; a job whose final/ exists is skipped, one with checkpoints
# resumes, so re-running after an interruption continues):
#   1. the flagship (pixel preset, noisy latents; train/configs/pixel_lam.yaml), from scratch or
#      warm-started from $INIT (--init-from: the record in lam/config.json adds up steps and clips)
#   2. the deterministic world model (no latent: the low end of the capacity axis, for leakage and
#      cycle) and the action-conditioned baselines on reach and drive, two at a time
#   3. adapter controllers for reach and drive on the flagship
#   4. export in fp16: everything into $RUN/export, the $SHIP subset into assets/checkpoints/
#   5. example clips (assets/clips), the report over $RUN/export with the real clips of $CLIPS,
#      the manifest
# Measured on this 2-core box (fp32; no native bf16 here): a flagship step of 16 clips takes
# 1.1 s alone on 2 threads, ~1.8 s on one thread beside another one-thread job.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
RUN="${RUN:-$ROOT/runs/pixel}"
ASSETS="${ASSETS:-$ROOT/assets/checkpoints}"
EXTRA="${EXTRA:-}"                       # overrides appended to every job (dry runs)
INIT="${INIT:-}"                         # warm-start the flagship from this folder
FLAGSHIP="${FLAGSHIP:-}"                 # or take an existing flagship's final/ as it is
FLAGSHIP_STEPS="${FLAGSHIP_STEPS:-3000}"
SEED="${SEED:-1}"                        # a new seed per continued run: no clip replayed
CLIPS="${CLIPS:-}"                       # held-out real videos for the report (a folder of video files)
EXPORT="${EXPORT:-pixel-noisy pixel-deterministic action-reach action-drive controller-reach \
controller-drive}"
SHIP="${SHIP:-pixel-noisy controller-reach controller-drive}"

source "$ROOT/train/recipes/common.sh"   # exports, $RUN/logs, cd $ROOT; say, stage, run_job

flagship() {
  if [[ -n "$FLAGSHIP" ]]; then say "flagship: $FLAGSHIP (given)"; return 0; fi
  local init=()
  [[ -n "$INIT" ]] && init=(--init-from "$INIT" train.reg_warmup_start=0 train.reg_warmup_fraction=0)
  run_job flagship lam pixel_lam "train.steps=$FLAGSHIP_STEPS" "train.seed=$SEED" train.threads=2 \
    "${init[@]}"
  FLAGSHIP="$RUN/flagship/final"
}

baselines() {  # two at a time, one thread each
  run_job deterministic lam pixel_lam lam.kind=deterministic train.steps=600 train.threads=1 &
  local a=$!
  run_job action_reach lam pixel_action_reach && run_job action_drive lam pixel_action_drive
  wait "$a"
}

controllers() {
  run_job controller_reach controller pixel_controller_reach "lam_path=$FLAGSHIP" &
  local a=$!
  run_job controller_drive controller pixel_controller_drive "lam_path=$FLAGSHIP"
  wait "$a"
}

export_assets() {
  local out="$RUN/export" name src previous=()
  mkdir -p "$out"
  local metrics="${FLAGSHIP%/final}/metrics.jsonl"
  [[ -n "$INIT" && -f "$INIT/metrics.jsonl" ]] && previous=(--previous-metrics "$INIT/metrics.jsonl")
  "$PY" train/export.py "$FLAGSHIP" "$out/pixel-noisy" --metrics "$metrics" "${previous[@]}"
  for name in $EXPORT; do
    case $name in
      pixel-noisy) continue ;;
      pixel-deterministic) src=deterministic ;;
      *) src=${name//-/_} ;;
    esac
    local share=()
    [[ $name == controller-* ]] && share=(--share lam=../pixel-noisy/lam)
    "$PY" train/export.py "$RUN/$src/final" "$out/$name" --metrics "$RUN/$src/metrics.jsonl" \
      "${share[@]}"
  done
  rm -rf "$ASSETS" && mkdir -p "$ASSETS"
  for name in $SHIP; do cp -r "$out/$name" "$ASSETS/"; done
  say "assets: $(du -sh "$ASSETS" | cut -f1) in $ASSETS ($SHIP); all models in $out"
}

clips_and_report() {
  example_clips
  local part patterns pids=()
  for part in wild worlds; do  # two processes, one core each, then one merged report
    [[ $part == wild ]] && patterns=('pixel-*') || patterns=('action-*' 'controller-*')
    OMP_NUM_THREADS=1 "$PY" -m lam_core.eval.report --checkpoints "$RUN/export" \
      --out "$RUN/report-$part" --only "${patterns[@]}" --episodes "${EPISODES:-8}" \
      --pairs "${PAIRS:-16}" ${CLIPS:+--clips "$CLIPS"} > "$RUN/logs/report-$part.log" 2>&1 &
    pids+=($!)
  done
  for part in "${pids[@]}"; do
    wait "$part" || { say "FAILED report (see $RUN/logs/report-*.log)"; return 1; }
  done
  "$PY" -m lam_core.eval.report --merge "$RUN/report-wild/report.json" \
    "$RUN/report-worlds/report.json" --out "$RUN/report" > "$RUN/logs/report.log" 2>&1 \
    || { say "FAILED report merge (see $RUN/logs/report.log)"; return 1; }
  say "report: $RUN/report (tables in $RUN/logs/report.log)"
  write_manifest
}

say "pixel default: run folder $RUN, assets $ASSETS, $(nproc) cores"
stage "1/5 flagship" flagship
stage "2/5 deterministic and action baselines" baselines
stage "3/5 controllers" controllers
stage "4/5 export to assets (fp16)" export_assets
stage "5/5 example clips, report, manifest" clips_and_report
say "pixel default finished in $(( $(date +%s) - BEGIN )) s"
