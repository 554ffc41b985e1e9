#!/usr/bin/env bash
# Training throughput with 1 and 2 processes on this machine (data-parallel over c10d/Gloo on
# 127.0.0.1), and the share of the 2-process step time spent in gradient synchronisation.
#
#   bash scripts/bench_processes.sh [OUT_DIR]        (default /tmp/attnrec-bench-processes)
#
# Model: configs/quickstart.json (embedding 48 -> LSTM 48 -> additive attention -> MLP) on
# generated data (40,000 training samples), one epoch, global batch 256, no validation; for
# each optimizer (adam: dense gradients, one bucket; lazy_adam: the embedding tables' sparse
# gradients as gathered rows) three runs: 1 process x 1 thread, 1 process x 2 threads,
# 2 processes x 1 thread. Prints one table; each run's summary.json stays in OUT_DIR.
# ATTNREC_BIN picks the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${ATTNREC_BIN:-build/attnrec}
out=${1:-/tmp/attnrec-bench-processes}
[[ -x $bin ]] || { echo "error: $bin not found; build first (bash scripts/setup.sh)" >&2; exit 2; }
rm -rf "$out" && mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE
"$bin" --log-level warn generate --out "$out/data" --users 2000 --items 5000 --train 40000 \
  --valid 200 --test 200 --seed 1
sets=(--set "data.train=$out/data/train.tsv" --set data.valid= --set data.test=
      --set train.epochs=1 --set train.device=cpu --set checkpoint.every_epoch=false
      --set train.early_stopping.patience=0)
train() {  # RUN THREADS LOG OPTIMIZER [NAME=VALUE...]
  local run=$1 threads=$2 log=$3 optimizer=$4
  shift 4
  env "$@" "$bin" --log-level warn train --config configs/quickstart.json --run-dir "$out/$run" \
    "${sets[@]}" --set "train.threads=$threads" --set "train.optimizer=$optimizer" \
    > "$out/$log.log" 2>&1
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
for optimizer in adam lazy_adam; do
  train "$optimizer-p1t1" 1 "$optimizer-p1t1" $optimizer
  train "$optimizer-p1t2" 2 "$optimizer-p1t2" $optimizer
  run=$optimizer-p2t1
  common=(MASTER_ADDR=127.0.0.1 MASTER_PORT=$(free_port) WORLD_SIZE=2 LOCAL_WORLD_SIZE=2)
  train $run 1 $run.rank0 $optimizer "${common[@]}" RANK=0 LOCAL_RANK=0 &
  rank0=$!
  train $run 1 $run.rank1 $optimizer "${common[@]}" RANK=1 LOCAL_RANK=1 ||
    { echo "rank 1 failed: see $out/$run.rank1.log" >&2; exit 1; }
  wait $rank0 || { echo "rank 0 failed: see $out/$run.rank0.log" >&2; exit 1; }
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| optimizer | processes x threads | samples/s | vs 1 x 2 | time in gradient sync |")
print("|---|---|---|---|---|")
for optimizer in ("adam", "lazy_adam"):
    base = json.load(open(f"{out}/{optimizer}-p1t2/summary.json"))["train_samples_per_second"]
    for run, label in (("p1t1", "1 x 1"), ("p1t2", "1 x 2"), ("p2t1", "2 x 1")):
        s = json.load(open(f"{out}/{optimizer}-{run}/summary.json"))
        rate = s["train_samples_per_second"]
        d = s.get("distributed")
        share = f"{100 * d['sync_seconds'] / s['train_seconds']:.0f}% of step time" if d else "-"
        print(f"| {optimizer} | {label} | {rate:,.0f} | {rate / base:.2f} | {share} |")
PY
