#!/usr/bin/env bash
# Throughput of `attnrec bench` (W1) alone and next to one CPU-bound competing process, under
# attnrec's thread policy (OpenMP threads wait passively; see src/cli/main.cpp) and under
# libgomp's default spin-waiting. Alternating rounds; medians; ratios against "alone".
#
#   bash scripts/bench_contention.sh [SAMPLES=20000] [ROUNDS=3]
#
# Needs a built build/attnrec. "OMP_WAIT_POLICY=" (set but empty) keeps libgomp's default and
# skips attnrec's re-execution with PASSIVE, which is how the default is measured here (libgomp
# warns about the empty value on stderr, which is discarded).
set -euo pipefail
cd "$(dirname "$0")/.."
samples=${1:-20000}
rounds=${2:-3}
bin=build/attnrec
[[ -x $bin ]] || { echo "error: $bin not found; build first (bash scripts/setup.sh)" >&2; exit 2; }

run() {  # run NAME THREADS [ENV...]: one bench, prints "NAME train infer"
  local name=$1 threads=$2; shift 2
  env "$@" "$bin" --log-level warn bench --workload W1 --samples "$samples" --set "train.threads=$threads" 2>/dev/null \
    --json |
    tail -n 1 | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); \
print('$name', round(d['train_samples_per_s']), round(d['infer_samples_per_s']))"
}

competitor=""
stop_competitor() { [[ -n $competitor ]] && kill "$competitor" 2>/dev/null || true; competitor=""; }
trap stop_competitor EXIT

results=$(mktemp)
for ((r = 1; r <= rounds; ++r)); do
  run alone_passive 0 >>"$results"
  run alone_spin 0 OMP_WAIT_POLICY= >>"$results"
  sh -c 'while :; do :; done' &
  competitor=$!
  sleep 0.5
  run competing_passive 0 >>"$results"
  run competing_spin 0 OMP_WAIT_POLICY= >>"$results"
  run competing_passive_1_thread 1 >>"$results"
  stop_competitor
done
/usr/bin/python3 - "$results" "$samples" "$rounds" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, train, infer = line.split()
    rows.setdefault(name, []).append((float(train), float(infer)))
med = {k: (statistics.median(t for t, _ in v), statistics.median(i for _, i in v))
       for k, v in rows.items()}
print(f"W1, {sys.argv[2]} samples, {sys.argv[3]} alternating rounds, medians; "
      "one competing CPU-bound process on a 2-core machine")
print(f"{'scenario':<28}{'train/s':>10}{'vs alone':>10}{'infer/s':>10}{'vs alone':>10}")
for k in ["alone_passive", "alone_spin", "competing_passive", "competing_spin",
          "competing_passive_1_thread"]:
    if k not in med: continue
    base = med["alone_spin" if k.endswith("spin") else "alone_passive"]
    t, i = med[k]
    print(f"{k:<28}{t:>10.0f}{t / base[0]:>10.2f}{i:>10.0f}{i / base[1]:>10.2f}")
PY
rm -f "$results"
