#!/usr/bin/env bash
# The real-data recipe: preprocess an interaction log (leave-last-out, 1 negative per positive
# for training, 100 frozen uniform negatives per test user), train configs/default.json, and
# evaluate with pointwise, sampled-ranking and full-ranking metrics next to item popularity.
#
#   bash scripts/recipe_real_data.sh /path/to/ml-1m/ratings.dat   # MovieLens-1M you downloaded
#   bash scripts/recipe_real_data.sh --synthetic                  # a generated log (no download)
#
# Environment: OUT (default data/ml-1m, or data/synthetic-log with --synthetic), MIN_RATING
# (unset: every rating is an interaction, as in the SASRec/BERT4Rec protocol; e.g. 4 to keep
# only liked movies), EPOCHS (default: the config's 20, with early stopping).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
  echo "usage: $0 RATINGS_FILE | --synthetic" >&2
  exit 2
fi
scripts/setup.sh
if [ "$1" = "--synthetic" ]; then
  out=${OUT:-data/synthetic-log}
  mkdir -p "$out"
  build/attnrec generate --log "$out/ratings.dat" --seed 11 --overwrite
  input="$out/ratings.dat"
  MIN_RATING=${MIN_RATING-4}
else
  out=${OUT:-data/ml-1m}
  input=$1
  [ -r "$input" ] || { echo "error: $input: cannot read the ratings file" >&2; exit 2; }
fi
rating_args=()
if [ -n "${MIN_RATING:-}" ]; then rating_args=(--min-rating "$MIN_RATING"); fi
epoch_args=()
if [ -n "${EPOCHS:-}" ]; then epoch_args=(--set "train.epochs=$EPOCHS"); fi

build/attnrec preprocess -i "$input" -o "$out/prepared" "${rating_args[@]}" \
  --min-user-interactions 5 --min-item-interactions 5 --split leave_last_out \
  --negatives 1 --sampling uniform --ranking-negatives 100 --seed 42
build/attnrec train --config configs/default.json --run-dir "$out/run" --overwrite \
  --set "data.train=$out/prepared/train.tsv" --set "data.valid=$out/prepared/valid.tsv" \
  --set "data.test=$out/prepared/test.tsv" "${epoch_args[@]}"
echo
echo "== evaluate $out/run on $out/prepared/test.tsv (sampled and full ranking, vs popularity)"
build/attnrec --log-level warn evaluate --checkpoint "$out/run" --data "$out/prepared/test.tsv" \
  --ranking sampled,full --ks 1,5,10,20 --baseline popularity --output "$out/test_metrics.json"
echo "metrics: $out/test_metrics.json"
