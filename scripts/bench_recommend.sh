#!/usr/bin/env bash
# `attnrec recommend` against the same computation in PyTorch (scripts/peers/recommend_topk.py:
# user states in blocks x the item table, seen items masked, torch.topk), for the SASRec config.
#
#   bash scripts/bench_recommend.sh [OUT_DIR]       (default /tmp/attnrec-bench-recommend)
#
# A generated log of USERS users (default 100,000) over ITEMS items (default 50,000), 5 to 30
# events each, prepared by `attnrec preprocess`; configs/sasrec.json trained for STEPS steps
# (default 20: the weights do not change the cost); both sides then give each user of the log
# its K = 10 best unseen items, with THREADS threads (default 2). Prints one table: users/s,
# (user, item) pairs/s and peak RSS of each. The peer runs on the Python of .venv-export
# (scripts/export_venv.sh). ATTNREC_BIN picks the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${ATTNREC_BIN:-build/attnrec}
out=${1:-/tmp/attnrec-bench-recommend}
users=${USERS:-100000} items=${ITEMS:-50000} steps=${STEPS:-20} threads=${THREADS:-2}
[[ -x $bin ]] || { echo "error: $bin not found; build first (bash scripts/setup.sh)" >&2; exit 2; }
python=$(scripts/export_venv.sh)
rm -rf "$out" && mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE
"$bin" --log-level warn generate --log "$out/log.dat" --log-users "$users" --log-items "$items" \
  --min-events 5 --max-events 30 --seed 1
"$bin" --log-level warn preprocess -i "$out/log.dat" -o "$out/prepared" --min-rating 1
"$bin" --log-level warn train --config configs/sasrec.json --run-dir "$out/run" \
  --set "data.train=$out/prepared/train_sequences.tsv" --set "data.valid=$out/prepared/valid.tsv" \
  --set data.test= \
  --set "train.threads=$threads" --stop-after-steps "$steps"
checkpoint=$(ls "$out"/run/checkpoints/*.pt | head -n 1)
/usr/bin/time -f "%M" -o "$out/attnrec.rss" "$bin" recommend --checkpoint "$checkpoint" --all \
  --interactions "$out/prepared/interactions.tsv" --k 10 --output "$out/recs.tsv" \
  --set "train.threads=$threads" 2> "$out/attnrec.log"
"$bin" --log-level warn export --checkpoint "$checkpoint" --output "$out/export"
"$python" scripts/peers/recommend_topk.py "$out/export" "$out/prepared/interactions.tsv" \
  --k 10 --threads "$threads" > "$out/peer.json"
"$python" - "$out" <<'PY'
import json, re, sys
out = sys.argv[1]
log = open(f"{out}/attnrec.log").read()
m = re.search(r"wrote (\d+) items for each of (\d+) users .*\((\d+) users/s, (\d+) \(user, item\) pairs/s\)", log)
rss = int(open(f"{out}/attnrec.rss").read().split()[-1]) / 1024.0
peer = json.load(open(f"{out}/peer.json"))
print(f"users {m.group(2)}, items {peer['items']}, K 10, threads {peer['threads']}")
print("| side | users/s | (user, item) pairs/s | peak RSS (MB) |")
print("|---|---|---|---|")
print(f"| attnrec recommend | {int(m.group(3)):,} | {int(m.group(4)):,} | {rss:,.0f} |")
print(f"| PyTorch {peer['torch']} (torch.topk) | {peer['users_per_second']:,.0f} | {peer['pairs_per_second']:,.0f} | {peer['peak_rss_mb']:,.0f} |")
PY
