#!/usr/bin/env bash
# Sourced by the recipes once they have set ROOT, PY, RUN and EXTRA: exports them (with
# HF_HUB_OFFLINE=1 and a TMPDIR under the run folder), makes $RUN/logs, moves to $ROOT, starts the
# clock, and defines say, stage and run_job.

export ROOT PY RUN EXTRA HF_HUB_OFFLINE=1 TMPDIR="${TMPDIR:-$RUN/tmp}"
mkdir -p "$RUN/logs" "$TMPDIR"
cd "$ROOT"
BEGIN=$(date +%s)

say() { echo "[$(date +%H:%M:%S)] $*"; }
export -f say

# run_job NAME SCRIPT CONFIG [ARGS...]: one training (train/SCRIPT.py with train/configs/CONFIG.yaml)
# into $RUN/NAME, log in $RUN/logs/NAME.log; skipped when $RUN/NAME/final exists, resumed when it
# has checkpoints (so re-running a recipe after an interruption continues). $LAUNCH, when set,
# is the command that runs the script (e.g. "$PY -m accelerate.commands.launch --cpu ..."),
# else "$PY".
run_job() {
  local name=$1 script=$2 config=$3 t0 extra=() launch=("$PY")
  shift 3
  [[ -n "${LAUNCH:-}" ]] && read -r -a launch <<< "$LAUNCH"
  t0=$(date +%s)
  if [[ -f "$RUN/$name/final/config.json" ]]; then say "skip $name (final/ exists)"; return 0; fi
  [[ -f "$RUN/$name/checkpoints/last" ]] && extra+=(--resume latest)
  say "start $name"
  if "${launch[@]}" "train/$script.py" --config "train/configs/$config.yaml" "train.output_dir=$RUN/$name" \
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

# example_clips: the shipped example clips, written next to $ASSETS (assets/clips by default; a
# dry run with ASSETS elsewhere leaves the repository's clips alone)
example_clips() { "$PY" train/recipes/example_clips.py --out "$(dirname "$ASSETS")/clips"; }

# write_manifest: assets/manifest.json, only when $ASSETS is the repository's assets/checkpoints
write_manifest() {
  if [[ "$(realpath -m "$ASSETS")" == "$(realpath -m "$ROOT/assets/checkpoints")" ]]; then
    "$PY" train/recipes/manifest.py
  else
    say "manifest: not written (ASSETS=$ASSETS is not the repository's assets/checkpoints)"
  fi
}
