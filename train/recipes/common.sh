#!/usr/bin/env bash
# Helpers shared by the recipes (sourced, not run): say, stage, run_job. They expect ROOT, PY, RUN
# and EXTRA to be set (and exported) by the recipe, and BEGIN for stage's running total.

say() { echo "[$(date +%H:%M:%S)] $*"; }
export -f say

# run_job NAME SCRIPT CONFIG [ARGS...]: one training (train/SCRIPT.py with train/configs/CONFIG.yaml)
# into $RUN/NAME, log in $RUN/logs/NAME.log; skipped when $RUN/NAME/final exists, resumed when it
# has checkpoints (so re-running a recipe after an interruption continues)
run_job() {
  local name=$1 script=$2 config=$3 t0 extra=()
  shift 3
  t0=$(date +%s)
  if [[ -f "$RUN/$name/final/config.json" ]]; then say "skip $name (final/ exists)"; return 0; fi
  [[ -f "$RUN/$name/checkpoints/last" ]] && extra+=(--resume latest)
  say "start $name"
  if "$PY" "train/$script.py" --config "train/configs/$config.yaml" "train.output_dir=$RUN/$name" \
      "${extra[@]}" "$@" $EXTRA > "$RUN/logs/$name.log" 2>&1; then
    say "done $name in $(( $(date +%s) - t0 )) s: $(grep -o '"val_[a-z_0-9]*": [0-9.e-]*' \
      "$RUN/$name/metrics.jsonl" | tail -2 | tr '\n' ' ')"
  else
    say "FAILED $name (see $RUN/logs/$name.log)"; return 1
  fi
}
export -f run_job

# stage TITLE COMMAND [ARGS...]: run one stage and print its wall time and the total so far
stage() {
  local t0; t0=$(date +%s); say "=== stage $1"; shift
  "$@"
  say "=== stage done in $(( $(date +%s) - t0 )) s (total $(( $(date +%s) - ${BEGIN:-t0} )) s)"
}
