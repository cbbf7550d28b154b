#!/usr/bin/env bash
# The small preset's models (a learned encoder, the paper's feature head; docs/DESIGN.md#presets),
# end to end on a 2-core CPU (docs/DESIGN.md#training; paper §4, §7, App. A), then the final
# models in fp16 into assets/checkpoints/ (hub layout, components shared by path).
#
#   bash train/recipes/embedded.sh                      # runs in ./runs/embedded
#   RUN=/work/runs/embedded bash train/recipes/embedded.sh > embedded.log 2>&1 &
#   EXTRA="train.steps=2 data.train_clips=32 data.val_clips=8" RUN=/tmp/x ASSETS=/tmp/x/assets \
#     bash train/recipes/embedded.sh                    # a few-minute dry run of every stage
#
# Stages (each prints its wall time; a stage whose final/ exists is skipped, one with checkpoints
# resumes, so re-running after an interruption continues):
#   1. autoencoder: small encoder + decoder, 2 synchronised CPU processes × 1 core (DDP, gloo)
#   2. feature caches: the frozen encoder runs once over MiniWild (4096 clips) and the reach and
#      drive worlds (1024 clips each)
#   3. ten world models, two at a time on one core each: sparse / noisy / discrete at low and high
#      capacity, none (unconstrained), deterministic, and the action-conditioned baselines on
#      reach and drive
#   4. adapter controllers for reach and drive on the high-capacity sparse LAM
#   5. export in fp16: every model in $EXPORT into $RUN/export, the $SHIP subset into
#      assets/checkpoints/ (controllers share ../sparse-high/lam, so ship sparse-high with them)
#   6. example clips (assets/clips), the report over $RUN/export ($RUN/report/{wild,worlds}, two
#      processes), the manifest
# Measured with the IDM over unmerged tokens (lam.idm_token_merge: 1; 2 shared cores, fp32 — this
# CPU has no native bf16, where bf16 is ~4× slower):
# a small-preset LAM step does ~15 clips/s on 2 threads when the machine is idle, ~8–10 clips/s on
# one thread, and two one-thread runs side by side ~10–16 clips/s together when other work shares
# the cores (two threads then collapse to ~4 clips/s); the autoencoder is about as costly per clip.
# Budget: 8k clips for the autoencoder, 600 steps × 24 clips for each MiniWild world model (the
# regularizer's weight ramps up over the first half: train.reg_warmup_fraction), 300 for the
# action baselines, 240 × 32 for the controllers. The small preset's IDM works on 2×2-merged tokens
# like its world model (lam.idm_token_merge: 2), which makes a LAM step 2.3× cheaper
# (python benchmarks/run.py: the IDM row of bench_training) and paid for the 600 steps.
# Measured on 2026-11-26 (2 cores, fp32):
#   autoencoder 26 min, caches 4 min (first run; later runs reused both);
#   the 8 MiniWild world models 52.5 min (12–15 min per pair, deterministic 9.5 min), the action
#     baselines 4 min each (measured in the previous run, reused by this one);
#   controllers 6 min, export 1 min. Stages 1–5 from scratch: ~98 min.
#   The report (stage 6: two processes, 4 planning episodes, 12 pairs, the 8 real clips of
#   held-out real videos as $CLIPS) took 20.5 min, with a third training sharing the cores (the
#   reach / drive part 9 min).
# Re-running a training gives bit-identical weights (same sha256, checked on lam_sparse_high,
# interrupted and resumed once).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
RUN="${RUN:-$ROOT/runs/embedded}"
ASSETS="${ASSETS:-$ROOT/assets/checkpoints}"
PORT="${PORT:-29517}"
EXTRA="${EXTRA:-}"  # overrides appended to every job (dry runs)
# what stage 5 exports (all into $RUN/export) and ships (into assets/checkpoints, ≤ 40 MB)
EXPORT="${EXPORT:-sparse-low sparse-high noisy-low noisy-high discrete-low discrete-high none \
deterministic action-reach action-drive controller-reach controller-drive}"
SHIP="${SHIP:-sparse-high noisy-high discrete-high deterministic action-reach controller-reach \
controller-drive}"
export SHIP

source "$ROOT/train/recipes/common.sh"   # exports, $RUN/logs, cd $ROOT; say, stage, run_job

# --------------------------------------------------------------------------- one job
# embedded_job NAME SCRIPT CONFIG CACHE: one training through accelerate, one process on one
# core, its features from the cache $RUN/cache/CACHE, the autoencoder's encoder and decoder (a
# world model) or the sparse-high LAM (a controller)
embedded_job() {
  local name=$1 script=$2 config=$3 cache=$4 extra=()
  if [[ $script == controller ]]; then
    extra+=("lam_path=$RUN/lam_sparse_high/final")
  else
    extra+=("encoder_path=$RUN/autoencoder/final/encoder" "decoder_path=$RUN/autoencoder/final/decoder")
  fi
  LAUNCH="$PY -m accelerate.commands.launch --num_processes 1 --cpu --num_machines 1 \
--num_cpu_threads_per_process 1 --mixed_precision no --dynamo_backend no" \
    run_job "$name" "$script" "$config" "data.cache_dir=$RUN/cache/$cache" "${extra[@]}"
}
export -f embedded_job

# run_queue JOB...: "NAME SCRIPT CONFIG CACHE" lines, two at a time
run_queue() { printf '%s\n' "$@" | xargs -P 2 -L 1 bash -c 'embedded_job "$@"' _; }

# --------------------------------------------------------------------------- 1. autoencoder
autoencoder() {
  if [[ -d "$RUN/autoencoder/final/decoder" ]]; then say "skip autoencoder"; return 0; fi
  local resume=()
  [[ -f "$RUN/autoencoder/checkpoints/last" ]] && resume=(--resume latest)
  ACCELERATE_USE_CPU=1 "$PY" -m accelerate.commands.launch --multi_gpu --num_processes 2 \
    --num_machines 1 --num_cpu_threads_per_process 1 --mixed_precision no --dynamo_backend no \
    --main_process_port "$PORT" \
    train/decoder.py --config train/configs/small_autoencoder.yaml \
    "train.output_dir=$RUN/autoencoder" "${resume[@]}" $EXTRA > "$RUN/logs/autoencoder.log" 2>&1 \
    || { say "FAILED autoencoder (see $RUN/logs/autoencoder.log)"; return 1; }
  grep -o '"val_l1": [0-9.e-]*' "$RUN/autoencoder/metrics.jsonl" | tail -1
}

# --------------------------------------------------------------------------- 2. caches
cache_job() {  # cache_job NAME CONFIG
  say "cache $1"
  "$PY" train/cache.py --config "train/configs/$2.yaml" "data.cache_dir=$RUN/cache/$1" \
    "encoder_path=$RUN/autoencoder/final/encoder" "decoder_path=$RUN/autoencoder/final/decoder" \
    train.threads=1 $EXTRA > "$RUN/logs/cache_$1.log" 2>&1 \
    || { say "FAILED cache $1 (see $RUN/logs/cache_$1.log)"; return 1; }
  tail -1 "$RUN/logs/cache_$1.log"
}
caches() {
  cache_job miniwild small_lam_sparse_high & local a=$!
  cache_job reach small_action_reach && cache_job drive small_action_drive
  wait "$a"
}

# --------------------------------------------------------------------------- 3. world models
world_models() {
  run_queue \
    "lam_sparse_high lam small_lam_sparse_high miniwild" \
    "lam_sparse_low lam small_lam_sparse_low miniwild" \
    "lam_noisy_high lam small_lam_noisy_high miniwild" \
    "lam_noisy_low lam small_lam_noisy_low miniwild" \
    "lam_discrete_high lam small_lam_discrete_high miniwild" \
    "lam_discrete_low lam small_lam_discrete_low miniwild" \
    "lam_none lam small_lam_none miniwild" \
    "lam_deterministic lam small_lam_deterministic miniwild" \
    "action_reach lam small_action_reach reach" \
    "action_drive lam small_action_drive drive"
}

# --------------------------------------------------------------------------- 4. controllers
controllers() {
  run_queue "controller_reach controller small_controller_reach reach" \
    "controller_drive controller small_controller_drive drive"
}

# --------------------------------------------------------------------------- 5. export (fp16)
# Every model goes to $RUN/export (the report reads them all); the subset in $SHIP is copied into
# assets/checkpoints/ to stay within the 40 MB budget of the repository (each small-preset world
# model is ~6.5 MB in fp16; all thirteen folders are ~68 MB).
export_assets() {
  local share=(--share encoder=../autoencoder/encoder --share decoder=../autoencoder/decoder)
  local out="$RUN/export"
  mkdir -p "$out"
  "$PY" train/export.py "$RUN/autoencoder/final" "$out/autoencoder"
  local name run
  for name in $EXPORT; do
    case $name in
      controller-*) run=controller_${name#controller-}
        "$PY" train/export.py "$RUN/$run/final" "$out/$name" "${share[@]}" \
          --share lam=../sparse-high/lam ;;
      action-*) "$PY" train/export.py "$RUN/${name//-/_}/final" "$out/$name" "${share[@]}" ;;
      *) "$PY" train/export.py "$RUN/lam_${name//-/_}/final" "$out/$name" "${share[@]}" ;;
    esac
  done
  rm -rf "$ASSETS" && mkdir -p "$ASSETS"
  for name in autoencoder $SHIP; do cp -r "$out/$name" "$ASSETS/"; done
  say "assets: $(du -sh "$ASSETS" | cut -f1) in $ASSETS ($SHIP); all models in $out"
}

# --------------------------------------------------------------------------- 6. clips, report
# The report in two processes (one core each): the in-the-wild models, and the reach / drive
# models whose planning episodes dominate the cost. $CLIPS adds a real-video column.
report_part() {  # report_part NAME PATTERN...
  local name=$1; shift
  OMP_NUM_THREADS=1 "$PY" -m lam_core.eval.report --checkpoints "$RUN/export" \
    --out "$RUN/report/$name" --only "$@" --episodes "${EPISODES:-4}" --pairs "${PAIRS:-12}" \
    ${CLIPS:+--clips "$CLIPS"} > "$RUN/logs/report_$name.log" 2>&1 \
    || { say "FAILED report $name (see $RUN/logs/report_$name.log)"; return 1; }
  say "report $name: $RUN/report/$name (tables in $RUN/logs/report_$name.log)"
}
clips_and_report() {
  example_clips
  report_part wild 'sparse-*' 'noisy-*' 'discrete-*' none deterministic & local a=$!
  report_part worlds 'action-*' 'controller-*' || { wait "$a"; return 1; }
  wait "$a"
  write_manifest
}

say "embedded default: run folder $RUN, assets $ASSETS, $(nproc) cores"
stage "1/6 autoencoder" autoencoder
stage "2/6 feature caches" caches
stage "3/6 world models (2 at a time)" world_models
stage "4/6 controllers" controllers
stage "5/6 export to assets (fp16)" export_assets
stage "6/6 example clips, report, manifest" clips_and_report
say "embedded default finished in $(( $(date +%s) - BEGIN )) s"
