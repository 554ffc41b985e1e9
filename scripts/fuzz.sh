#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser attnrec reads user files with (libFuzzer, Debian's
# clang, -fsanitize=fuzzer,address,undefined). Harnesses: fuzz/fuzz_*.cpp.
#
#   bash scripts/fuzz.sh [SECONDS] [HARNESS...]   (default 60 s each, every harness)
#
# Builds the harnesses in build-fuzz/ (the library instrumented; first build ~15 min on 2
# cores), makes seed corpora from the project's configs and from files generated with the
# normal build (build/attnrec: bash scripts/setup.sh first), runs each harness for SECONDS
# with its corpus kept in build-fuzz/corpus/HARNESS (it grows from run to run), and prints
# harness | executions | coverage | crashes. A crash, leak or timeout input is saved in
# build-fuzz/crashes/HARNESS/; rerun it with `build-fuzz/HARNESS FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build=build-fuzz
bin=${ATTNREC_BIN:-build/attnrec}
[[ -x $bin ]] || { echo "error: $bin not found; build first (bash scripts/setup.sh)" >&2; exit 2; }
command -v clang++ > /dev/null || { echo "error: clang++ not found (apt-get install clang)" >&2; exit 2; }
all=(fuzz_config fuzz_samples fuzz_preprocess fuzz_vocab fuzz_candidates fuzz_checkpoint)
harnesses=("${@:-${all[@]}}")

# The build: the library with coverage, ASan and UBSan (LibTorch itself is not instrumented).
if [[ ! -f $build/build.ninja ]]; then
  CXX=clang++ cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DATTNREC_FUZZ=ON -DATTNREC_SANITIZE=address,undefined -DATTNREC_BUILD_TESTS=OFF > /dev/null
fi
cmake --build $build -j "$(nproc)" --target "${harnesses[@]}"

# Seeds, made once.
seeds=$build/seeds
if [[ ! -d $seeds ]]; then
  tmp=$build/seed-work && rm -rf "$tmp" && mkdir -p "$tmp"
  for h in "${all[@]}"; do mkdir -p "$tmp/$h"; done
  "$bin" --log-level warn generate --out "$tmp/data" --users 30 --items 40 --train 300 \
    --valid 40 --test 40 --seed 3
  # config: every bundled config, one with --set lines.
  for f in configs/*.json; do cp "$f" "$tmp/fuzz_config/$(basename "$f")"; done
  { cat configs/quickstart.json; printf '\n--set\nmodel.embedding.dim=8\ntrain.lr=0.1\n'; } \
    > "$tmp/fuzz_config/with-set"
  # samples: the first lines of generated files under each option byte.
  head -n 30 "$tmp/data/train.tsv" > "$tmp/samples"
  for flag in 00 01 02 04 08 09 10 20 30 41 80 88; do
    { printf "\\x$flag"; cat "$tmp/samples"; } > "$tmp/fuzz_samples/flags-$flag"
  done
  # preprocess: a small log in each format (byte 0 the format, byte 1 the options).
  printf '1::10::5::978300760\n1::11::3::978300761\n2::10::4::978300762\n2::12::5::978300763\n3::11::2::978300764\n' > "$tmp/ml"
  printf '1\t10\t5\t881250949\n1\t11\t3\t881250950\n2\t10\t4\t881250951\n2\t12\t5\t881250952\n' > "$tmp/mltsv"
  printf '1 10 11 12 13\n2 11 12 14\n3 10 14 15 11\n' > "$tmp/seq"
  printf '{"reviewerID": "A1", "asin": "B1", "unixReviewTime": 1, "overall": 5.0}\n{"reviewerID": "A1", "asin": "B2", "unixReviewTime": 2, "overall": 3.0}\n{"reviewerID": "A2", "asin": "B1", "unixReviewTime": 3}\n' > "$tmp/amazon"
  printf '1,10,100,pv,1511544070\n1,11,100,buy,1511544071\n2,10,101,pv,1511544072\n2,12,101,cart,1511544073\n' > "$tmp/taobao"
  printf '1,10,5\n1,11,6\n2,10,7\n2,12,8\n3,11,9\n' > "$tmp/csv0"
  printf 'user,item,ts,r,c\nu1,i1,5,4.5,x\nu1,i2,6,3,y\nu2,i1,7,5,x\nu2,i3,8,1,z\n' > "$tmp/csv1"
  printf 'i1\tu1\tbuy\ni2\tu1\tpv\ni1\tu2\tbuy\ni3\tu2\tpv\n' > "$tmp/csv2"
  i=0
  for f in ml mltsv seq amazon taobao csv0 csv1 csv2 seq; do
    for options in 00 05 4a 83; do
      { printf "\\x$(printf '%02x' $i)\\x$options"; cat "$tmp/$f"; } > "$tmp/fuzz_preprocess/$f-$i-$options"
    done
    i=$((i + 1))
  done
  # vocabularies and categories of a short training run, which also makes the checkpoint.
  "$bin" --log-level warn train --config configs/quickstart.json --run-dir "$tmp/run" \
    --set "data.train=$tmp/data/train.tsv" --set "data.valid=$tmp/data/valid.tsv" \
    --set data.test= --set model.embedding.user=true \
    --set model.embedding.dim=4 --set model.encoder.hidden=4 --set model.attention.hidden=4 \
    --set 'model.head.hidden=[4]' --set train.epochs=1 --set train.threads=1 \
    --set train.tensorboard=false
  { printf '\x00'; cat "$tmp/run/items.vocab"; } > "$tmp/fuzz_vocab/items"
  { printf '\x00'; cat "$tmp/run/users.vocab"; } > "$tmp/fuzz_vocab/users"
  { printf '\x01item\tcategory\n'; awk 'NR > 2 && NR < 12 {print $1 "\tc" NR % 3}' \
      "$tmp/run/items.vocab"; } > "$tmp/fuzz_vocab/categories"
  # candidates: preprocess output of the sequence log (frozen candidates, interactions).
  printf 'a 1 2 3 4 5\nb 2 3 6 7 8\nc 9 1 4 10 11\nd 12 2 5 9 3\ne 1 6 11 4 7\n' > "$tmp/seq-long"
  "$bin" --log-level warn preprocess --input "$tmp/seq-long" --format sequence --out "$tmp/pre" \
    --ranking-negatives 3 > /dev/null
  { printf '\x00'; cat "$tmp/pre/test_candidates.tsv"; } > "$tmp/fuzz_candidates/candidates"
  { printf '\x01'; cat "$tmp/pre/interactions.tsv"; } > "$tmp/fuzz_candidates/log"
  printf '\x02user\titem\nu1\ti1\nu2\ti3\nu9\tzz\n' > "$tmp/fuzz_candidates/lists"
  { printf '\x03'; printf 'user\titem\ttime\nu1\ti1\t1\nu2\t7\t2\n'; } > "$tmp/fuzz_candidates/exclude"
  # checkpoint: as it is (mode 0), and split into meta + payload (mode 1).
  ckpt=$tmp/run/checkpoints/final.pt
  { printf '\x00'; cat "$ckpt"; } > "$tmp/fuzz_checkpoint/raw"
  python3 - "$ckpt" "$tmp/fuzz_checkpoint/split" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
first = data.index(b"\n"); second = data.index(b"\n", first + 1)
meta_bytes = int(data[first + 1:second].split()[0])
body = data[second + 1:]
open(sys.argv[2], "wb").write(b"\x01" + struct.pack("<I", meta_bytes) + body)
PY
  cp -r "$tmp/run" $build/seed-run
  mv "$tmp" "$seeds.partial" && mkdir -p "$seeds" && cp -r "$seeds.partial"/fuzz_* "$seeds"/ && rm -rf "$seeds.partial"
fi

declare -A dict=([fuzz_config]=fuzz/json.dict [fuzz_checkpoint]=fuzz/json.dict)
declare -A max_len=([fuzz_checkpoint]=131072)
results=$build/results.tsv
: > "$results"
for h in "${harnesses[@]}"; do
  corpus=$build/corpus/$h crashes=$build/crashes/$h log=$build/logs/$h.log
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  d=${dict[$h]:-fuzz/tsv.dict}
  echo "fuzzing $h for $seconds s (log: $log)" >&2
  set +e
  # fast_unwind_on_malloc=0: the frame-pointer unwinder stops inside LibTorch (built without
  # frame pointers), so a leak's stack could lack the frame its suppression names.
  ATTNREC_FUZZ_RUN=$build/seed-run ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 \
    LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 "$build/$h" "$corpus" "$seeds/$h" \
    -dict="$d" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len="${max_len[$h]:-16384}" \
    -print_final_stats=1 -artifact_prefix="$crashes/" > "$log" 2>&1
  status=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)
  cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -n 1 | cut -d' ' -f2)
  found=$(find "$crashes" -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\n' "$h" "${execs:-?}" "${cov:-?}" "$found" "$status" >> "$results"
done
echo "| harness | executions | coverage (edges) | crashes, leaks, timeouts saved | exit |"
echo "|---|---|---|---|---|"
while IFS=$'\t' read -r h e c f s; do echo "| $h | $e | $c | $f | $s |"; done < "$results"
