#!/usr/bin/env bash
# Gradient-bucket size sweep: 2 processes x 1 thread on this machine (c10d/Gloo over 127.0.0.1),
# train.distributed.bucket_mb = 1, 2, 4, 8, 32, two rounds, and the share of step time spent in
# gradient synchronisation.
#
#   bash scripts/bench_buckets.sh [OUT_DIR]        (default /tmp/attnrec-bench-buckets; ~3 min)
#
# Model: configs/quickstart.json with `adam` (dense gradients) on generated data with a
# 100,000-item catalogue (the item table, 4.8M floats = 19 MB, is most of the gradient), 40,000
# training samples, one epoch, global batch 256, no validation. ATTNREC_BIN picks the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${ATTNREC_BIN:-build/attnrec}
out=${1:-/tmp/attnrec-bench-buckets}
[[ -x $bin ]] || { echo "error: $bin not found; build first (bash scripts/setup.sh)" >&2; exit 2; }
rm -rf "$out" && mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE
"$bin" --log-level warn generate --out "$out/data" --users 2000 --items 100000 --train 40000 \
  --valid 200 --test 200 --seed 1
sets=(--set "data.train=$out/data/train.tsv" --set data.valid= --set data.test=
      --set train.epochs=1 --set train.device=cpu --set checkpoint.every_epoch=false
      --set train.early_stopping.patience=0 --set train.threads=1 --set train.tensorboard=false)
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
for round in 1 2; do
  for mb in 1 2 4 8 32; do
    run=r$round-b$mb
    common=(MASTER_ADDR=127.0.0.1 MASTER_PORT=$(free_port) WORLD_SIZE=2 LOCAL_WORLD_SIZE=2)
    for rank in 0 1; do
      env "${common[@]}" RANK=$rank LOCAL_RANK=$rank "$bin" --log-level warn train \
        --config configs/quickstart.json --run-dir "$out/$run" "${sets[@]}" \
        --set train.distributed.bucket_mb=$mb > "$out/$run.rank$rank.log" 2>&1 &
    done
    wait || { echo "a rank failed: see $out/$run.rank*.log" >&2; exit 1; }
  done
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
print("| bucket_mb | buckets | samples/s (round 1, 2) | time in gradient sync | sync per step |")
print("|---|---|---|---|---|")
for mb in (1, 2, 4, 8, 32):
    s = [json.load(open(f"{out}/r{r}-b{mb}/summary.json")) for r in (1, 2)]
    d = [x["distributed"] for x in s]
    rates = ", ".join(f"{x['train_samples_per_second']:,.0f}" for x in s)
    share = "–".join(f"{100 * y['sync_seconds'] / x['train_seconds']:.0f}%" for x, y in zip(s, d))
    per = "–".join(f"{1e3 * y['sync_seconds'] / x['steps']:.1f} ms" for x, y in zip(s, d))
    print(f"| {mb} | {len(d[0].get('bucket_plan', []))} | {rates} | {share} | {per} |")
PY
