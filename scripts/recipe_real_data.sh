#!/usr/bin/env bash
# The real-data recipe, side by side with item popularity and a PyTorch SASRec peer trained in
# the same run: preprocess an interaction log (5-core, leave-last-out, one frozen uniform
# negative per validation/test positive, 100 frozen ranking negatives per test user), train
# configs/default.json (negatives drawn by the trainer from train_positives.tsv), evaluate on
# the test split (AUC, sampled and full ranking), train and score the peer on the same files,
# and print one table.
#
#   bash scripts/recipe_real_data.sh ml-100k/u.data movielens_tsv   # MovieLens-100K
#   bash scripts/recipe_real_data.sh ml-1m/ratings.dat movielens    # MovieLens-1M
#   bash scripts/recipe_real_data.sh --synthetic                    # a generated log
#   KCORE=0 DEDUP=none CONFIGS=configs/sasrec.json CAP=900 RECBOLE=1 \
#     bash scripts/recipe_real_data.sh Yelp.txt sequence          # ICLRec's Yelp (see docs/data.md)
#
# Environment: CONFIGS (space-separated attnrec configs, each trained and scored on the same
# files; default configs/default.json), OUT (default data/<input's directory name>), MIN_RATING (unset: every rating is
# an interaction, the SASRec/BERT4Rec protocol), EPOCHS (attnrec; default the config's),
# PEER_EPOCHS (default 400), NO_PEER=1 (skip the peers), SET (extra --set overrides for
# attnrec, space-separated), KCORE (default 5: the k-core of users and items; 0 keeps every
# event, for logs filtered already), DEDUP (preprocess --dedup, default first), CAP (seconds:
# the same training wall-time cap for every model; attnrec is interrupted with SIGINT, which
# keeps its best checkpoint, the peers stop at their --time-budget), THREADS (default 2, every
# model), PEER_ARGS (extra arguments of scripts/peers/sasrec.py; default the paper's BCE with
# one negative, model selection on validation full-ranking NDCG@10), RECBOLE=1 (also train
# RecBole's SASRec with CE, in the virtual environment of scripts/peers/recbole_venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 RATINGS_FILE [FORMAT] | --synthetic" >&2
  exit 2
fi
bash scripts/setup.sh > /dev/null
if [ "$1" = "--synthetic" ]; then
  out=${OUT:-data/synthetic-log}
  mkdir -p "$out"
  build/attnrec --log-level warn generate --log "$out/ratings.dat" --seed 11 --overwrite
  input="$out/ratings.dat"
  format=movielens
  MIN_RATING=${MIN_RATING-4}
else
  input=$1
  format=${2:-auto}
  [ -r "$input" ] || { echo "error: $input: cannot read the ratings file" >&2; exit 2; }
  out=${OUT:-data/$(basename "$(dirname "$(realpath "$input")")")}
fi
prep="$out/prepared"
rating_args=()
if [ -n "${MIN_RATING:-}" ]; then rating_args=(--min-rating "$MIN_RATING"); fi
format_args=()
if [ "$format" != "auto" ]; then format_args=(--format "$format"); fi
set_args=(--set "data.valid=$prep/valid.tsv" --set "data.test=$prep/test.tsv"
          --set "train.threads=${THREADS:-2}")
cap_cmd=()
if [ -n "${CAP:-}" ]; then cap_cmd=(timeout -s INT -k 120 "$CAP"); fi
if [ -n "${EPOCHS:-}" ]; then set_args+=(--set "train.epochs=$EPOCHS"); fi
for s in ${SET:-}; do set_args+=(--set "$s"); done

echo "== preprocess $input (sha256 $(sha256sum "$input" | cut -c1-16)...)"
rm -rf "$prep"
build/attnrec --log-level warn preprocess -i "$input" "${format_args[@]}" -o "$prep" \
  "${rating_args[@]}" --min-user-interactions "${KCORE:-5}" --min-item-interactions "${KCORE:-5}" \
  --dedup "${DEDUP:-first}" \
  --split leave_last_out --negatives 1 --sampling uniform --ranking-negatives 100 --seed 42
results=()
for config in ${CONFIGS:-configs/default.json}; do
  name=$(basename "$config" .json)
  # The training file the config names (train_positives.tsv, train_sequences.tsv, ...), taken
  # from this run's prepared directory.
  train_file=$(build/attnrec config --dump --config "$config" |
    /usr/bin/python3 -c 'import json, os, sys; print(os.path.basename(json.load(sys.stdin)["data"]["train"]))')
  echo "== train attnrec ($config on $train_file)"
  start=$(date +%s)
  # A capped run ends by SIGINT (exit 130): its best checkpoint is what is evaluated.
  "${cap_cmd[@]}" build/attnrec --log-level warn train --config "$config" \
    --run-dir "$out/run-$name" --overwrite --set "data.train=$prep/$train_file" \
    "${set_args[@]}" > /dev/null || { rc=$?; [ $rc -eq 130 ] || [ $rc -eq 124 ]; }
  seconds=$(( $(date +%s) - start ))
  build/attnrec --log-level warn evaluate --checkpoint "$out/run-$name" --data "$prep/test.tsv" \
    --ranking sampled,full --ks 10 --baseline popularity \
    --output "$out/test_metrics-$name.json" > /dev/null
  results+=("$config=$out/test_metrics-$name.json=$seconds")
done
peer_json=""
recbole_json=""
budget_args=()
if [ -n "${CAP:-}" ]; then budget_args=(--time-budget "$CAP"); fi
if [ -z "${NO_PEER:-}" ]; then
  if /usr/bin/python3 -c "import torch" 2> /dev/null; then
    echo "== train the SASRec peer (scripts/peers/sasrec.py ${PEER_ARGS:-})"
    start=$(date +%s)
    # shellcheck disable=SC2086
    /usr/bin/python3 scripts/peers/sasrec.py "$prep" --epochs "${PEER_EPOCHS:-400}" \
      --threads "${THREADS:-2}" --select ndcg --eval-every 1 "${budget_args[@]}" ${PEER_ARGS:-} \
      --json "$out/sasrec_metrics.json" > /dev/null 2> "$out/sasrec.log"
    peer_json="$out/sasrec_metrics.json=$(( $(date +%s) - start ))"
  else
    echo "== SASRec peer skipped: /usr/bin/python3 has no torch (apt-get install python3-torch)"
  fi
  if [ -n "${RECBOLE:-}" ]; then
    python=$(bash scripts/peers/recbole_venv.sh | tail -1)
    echo "== train RecBole's SASRec (scripts/peers/recbole_sasrec.py, CE loss)"
    start=$(date +%s)
    "$python" scripts/peers/recbole_sasrec.py "$prep" --epochs "${PEER_EPOCHS:-400}" \
      --threads "${THREADS:-2}" "${budget_args[@]}" --work "$out/recbole" \
      --json "$out/recbole_metrics.json" > /dev/null 2> "$out/recbole.log"
    recbole_json="$out/recbole_metrics.json=$(( $(date +%s) - start ))"
  fi
fi
/usr/bin/python3 - "$peer_json" "$recbole_json" "$prep/stats.json" "${results[@]}" <<'PY'
import json, sys
runs = [arg.split("=") for arg in sys.argv[4:]]
stats = json.load(open(sys.argv[3]))
kept = stats["kept"]
print(f"\n{kept['users']} users, {kept['items']} items, {kept['interactions']} interactions "
      f"({kept['interactions'] / kept['users']:.1f} per user); test: leave-last-out, "
      "1 uniform negative per positive; full ranking over every unseen item")
rows = []
def fmt(v):
    return f"{v:.4f}" if isinstance(v, (int, float)) else "-"
aucs = {}
for config, path, seconds in runs:
    m = json.load(open(path))
    r = m["ranking"]
    rows.append((f"attnrec ({config})", m["auc"], r["full"]["hr@10"], r["full"]["ndcg@10"],
                 r["sampled"]["hr@10"], f"{seconds} s"))
    aucs[config] = m["auc"]
b = m["baseline_popularity"]
rows.append(("item popularity", b["auc"], b["ranking"]["full"]["hr@10"],
             b["ranking"]["full"]["ndcg@10"], b["ranking"]["sampled"]["hr@10"], "-"))
peers = {}
for arg, label in ((sys.argv[1], "SASRec peer (PyTorch)"), (sys.argv[2], "SASRec (RecBole, CE)")):
    if arg:
        path, seconds = arg.rsplit("=", 1)
        p = json.load(open(path))
        peers[label] = p
        rows.append((label, p.get("test_auc"), p["full_hr@10"], p["full_ndcg@10"], None,
                     f"{seconds} s"))
print(f"{'model':<40}{'AUC':>8}{'full HR@10':>12}{'full NDCG@10':>14}{'sampled HR@10':>15}"
      f"{'train':>9}")
for name, auc, hr, ndcg, shr, secs in rows:
    print(f"{name:<40}{fmt(auc):>8}{fmt(hr):>12}{fmt(ndcg):>14}{fmt(shr):>15}{secs:>9}")
print()
for config, auc in aucs.items():
    print(f"{config} - popularity: {auc - b['auc']:+.4f} AUC")
    for label, p in peers.items():
        if p.get("test_auc") is not None:
            print(f"{config} - {label}: {auc - p['test_auc']:+.4f} AUC")
PY
echo "metrics: $out/test_metrics-*.json ${peer_json%=*} ${recbole_json%=*}"
