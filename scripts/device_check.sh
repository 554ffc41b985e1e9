#!/usr/bin/env bash
# The GPU check, prepared for a machine lent by the `device` tool (one GPU, no network, its own
# PyTorch with CUDA, CMake, ninja and nvcc). It builds attnrec against that PyTorch's LibTorch and
# the Debian packages unpacked by scripts/fetch_device_deps.sh, then runs:
#   1. the CUDA-tagged tests and the device/precision/build tests ([cuda], [device], ...);
#   2. `attnrec bench` on the GPU for W1 and T1, fp32 and bf16, and W1 fp32 once more with
#      train.deterministic=false (the cost of deterministic kernels), beside the same W1 and T1
#      models in PyTorch eager on the same GPU (scripts/bench_vs_pytorch.py --peer);
#      then where a W1 fp32 step's time goes: profiler traces of 20 training steps and 20
#      inference batches in both (bench --profile, bench_vs_pytorch.py --profile), summarised by
#      scripts/trace_summary.py (launches, kernels and their time per step);
#   3. a 2-process data-parallel `attnrec train` on the GPU(s) beside one process (same global
#      batch, lazy_adam, no dropout: the same optimisation): NCCL, one GPU per process, where
#      the machine has 2 or more GPUs; else Gloo with both processes on cuda:0 (NCCL refuses
#      two processes on one GPU);
#   4. on a machine of one GPU: NCCL with both processes on that GPU, which NCCL refuses (attnrec
#      should stop both with exit 2 naming the shared GPU); it records how attnrec ends (exit
#      codes, seconds, last lines) or, if both finish, compares them with the 1-process run;
# Each test case runs in a process of its own (a crash in one leaves the others' results), each
# bench and peer run has a deadline of 240 s, and the summary is rewritten after every step, so a
# check stopped at the call's limit still returns what it did ("complete": false). It works in
# --work (default $TMPDIR/attnrec-device-check) and writes three files to --out (default
# $OUT, where the device tool brings files back, at most 8 of them): device_check.json, the
# summary, logs.tgz, every log and run directory without data and checkpoints, and traces.tgz,
# the profiler's traces.
#
#   scripts/device_check.sh [--dry-run] [--deps DIR] [--out DIR] [--work DIR] [--samples N]
#                           [--jobs N] [--device cuda|cpu] [--build DIR] [--tests SPEC]
#
# --dry-run checks the dependency folder and prints the commands without running them (it works
# on any machine). --device cpu --build DIR rehearses the whole check on a machine without a GPU,
# with a build made there (no compiling, no dependency folder): every step runs with train.device
# and the peer on the CPU, step 3 on Gloo, step 4 expects attnrec to refuse NCCL on CPU processes
# (exit 2); a test runs it so that the script the GPU machine runs has run before (--tests SPEC
# narrows step 1's Catch2 selection).
# Meant to finish in under 8 minutes on 16 cores (an H200 machine took 197 s, 141 of them
# building). From this machine:
#   scripts/fetch_device_deps.sh
#   run(command="bash scripts/device_check.sh", carry=[".device-deps"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."

dry_run=no
deps=.device-deps
out="${OUT:-device-check-out}"
work="${TMPDIR:-/tmp}/attnrec-device-check"
samples=200000
jobs="$(nproc)"
device=cuda
build=build-device
prebuilt=no
tests='[cuda],[device]~[scripts],[precision],[build]'  # [scripts] tests run scripts (this one too)
while (($#)); do
  case "$1" in
    --dry-run) dry_run=yes; shift ;;
    --deps) deps="${2:?--deps needs a folder}"; shift 2 ;;
    --out) out="${2:?--out needs a folder}"; shift 2 ;;
    --work) work="${2:?--work needs a folder}"; shift 2 ;;
    --samples) samples="${2:?--samples needs a number}"; shift 2 ;;
    --jobs) jobs="${2:?--jobs needs a number}"; shift 2 ;;
    --device) device="${2:?--device needs cuda or cpu}"; shift 2 ;;
    --build) build="${2:?--build needs a build folder}"; prebuilt=yes; shift 2 ;;
    --tests) tests="${2:?--tests needs a Catch2 test spec}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$samples$jobs" in
  *[!0-9]*) echo "device_check: --samples and --jobs take positive integers" >&2; exit 2 ;;
esac
case "$device" in
  cuda|cpu) ;;
  *) echo "device_check: --device takes cuda (the GPU check) or cpu (its rehearsal)" >&2; exit 2 ;;
esac
if [ "$prebuilt" = yes ] && { [ ! -x "$build/attnrec" ] || [ ! -x "$build/attnrec_tests" ]; }; then
  echo "device_check: --build $build holds no attnrec and attnrec_tests; build them there first" >&2
  exit 2
fi

# The dependency folder must hold what fetch_device_deps.sh unpacks (to build; --build needs none).
check_deps() {
  need=(MANIFEST.tsv usr/include/fmt/format.h usr/include/spdlog/spdlog.h usr/include/CLI/CLI.hpp
        usr/include/nlohmann/json.hpp usr/include/catch2/catch.hpp usr/include/openssl/sha.h
        usr/include/gloo/context.h usr/lib/libCatch2WithMain.a
        usr/lib/x86_64-linux-gnu/libfmt.so.9 usr/lib/x86_64-linux-gnu/libspdlog.so.1.10
        usr/lib/x86_64-linux-gnu/libcrypto.so.3)
  missing=()
  for f in "${need[@]}"; do [ -e "$deps/$f" ] || missing+=("$f"); done
  if ((${#missing[@]})); then
    echo "device_check: $deps lacks ${missing[*]}; run scripts/fetch_device_deps.sh on a machine" \
         "with apt and carry the folder (carry=[\"$deps\"])" >&2
    exit 2
  fi
  deps="$(cd "$deps" && pwd)"
  echo "device_check: dependency folder $deps ok ($(wc -l < "$deps/MANIFEST.tsv") packages)"
}
if [ "$prebuilt" = yes ]; then
  echo "device_check: using the build in $build (no dependency folder needed)"
else
  check_deps
fi

python="${ATTNREC_PYTHON:-python3}"
torch_prefix_cmd="$python -c 'import os, torch; print(os.path.dirname(torch.__file__))'"
bench() {  # workload precision [deterministic [eval batch]] -> one JSON line
  echo "$build/attnrec --log-level warn bench --workload $1 --samples $samples --set train.device=$device --set train.precision=$2 --set train.deterministic=${3:-true}${4:+ --set eval.batch_size=$4} --json"
}
peer() {  # workload precision -> one JSON line
  echo "$python scripts/bench_vs_pytorch.py --peer $1 --samples $samples --threads $jobs --device $device --precision $2"
}
multi_args="train --config configs/quickstart.json --set data.train=$work/multi/data/train.tsv \
--set data.valid=$work/multi/data/valid.tsv --set data.test=$work/multi/data/test.tsv \
--set train.epochs=2 --set train.batch_size=64 --set train.optimizer=lazy_adam \
--set model.embedding.dropout=0 --set model.head.dropout=0 --set train.threads=2"
device0=cuda:0
[ "$device" = cuda ] || device0=cpu
multi_data() {  # -> the generator's command line (the data of step 3)
  echo "$build/attnrec --log-level warn generate --out $work/multi/data --users 300 --items 400 --train 6000 --valid 500 --test 500 --seed 3"
}
multi_one() {  # -> the 1-process run's command line
  echo "$build/attnrec --log-level warn $multi_args --run-dir $work/multi/one --set train.device=$device0"
}
multi_two() {  # backend device [run] -> the command line of one rank (RANK, MASTER_* set by the caller)
  echo "$build/attnrec --log-level warn $multi_args --run-dir $work/multi/${3:-two} --set train.distributed.backend=$1 --set train.device=$2"
}
commands=()
if [ "$prebuilt" = no ]; then
  commands+=("torch_prefix=\$($torch_prefix_cmd)"
    "cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTNREC_BUILD_TESTS=ON -DCMAKE_PREFIX_PATH=\"\$torch_prefix;$deps/usr\""
    "cmake --build $build -j $jobs")
fi
commands+=(
  "$build/attnrec --version"
  "for each NAME of $build/attnrec_tests --list-test-names-only '$tests', one at a time: $build/attnrec_tests NAME > $work/tests/N.log"
  "$(bench W1 fp32)" "$(bench W1 bf16)" "$(bench T1 fp32)" "$(bench T1 bf16)" "$(bench W1 fp32 false)"
  "$(bench W1 fp32 true 4096)"
  "$(peer W1 fp32)" "$(peer W1 bf16)" "$(peer T1 fp32)" "$(peer T1 bf16)"
  "$(bench W1 fp32) --profile $work/profile/attnrec" "$(peer W1 fp32) --profile $work/profile/pytorch"
  "$python scripts/trace_summary.py $work/profile/*/*.json"
  "$(multi_data)" "$(multi_one)"
)
ranks="RANK=0|1 WORLD_SIZE=2 LOCAL_RANK=0|1 MASTER_ADDR=127.0.0.1 MASTER_PORT=<free>"
if [ "$device" = cuda ]; then
  commands+=("$ranks $(multi_two 'nccl (2+ GPUs) | gloo' 'cuda | cuda:0')"
    "(one GPU only) $ranks $(multi_two nccl cuda:0 nccl_one_gpu)")
else
  commands+=("$ranks $(multi_two gloo cpu)"
    "(NCCL on CPU processes: attnrec should refuse, exit 2) $ranks $(multi_two nccl cpu nccl_one_gpu)")
fi
if [ "$dry_run" = yes ]; then
  echo "device_check: --dry-run; on $device this would run:"
  printf '  %s\n' "${commands[@]}"
  echo "  (then write $out/device_check.json, $out/logs.tgz and $out/traces.tgz)"
  exit 0
fi

rm -rf "$work"
mkdir -p "$out" "$work/tests"
start=$SECONDS
log() { echo "device_check [$((SECONDS - start)) s]: $*"; }
# The GPUs, asked once (none for the rehearsal): the summary names the first, step 3 counts them.
gpu_list=""
[ "$device" = cpu ] || gpu_list="$(nvidia-smi -L 2>/dev/null || true)"
gpus="$(grep -c "^GPU" <<< "$gpu_list" || true)"
gpu_name="$(head -1 <<< "$gpu_list" | sed 's/"/\\"/g')"
phase=build version="" tests_rc=0 test_results=() results=() profiles=() multi=null shared=null
# The summary as far as the check got: every step rewrites it (and logs.tgz before it), so a
# check stopped at the call's time limit still brings back what it did: "phase" names the step
# then under way, "complete" is true after the last step. Each file is written aside, then
# renamed, so a kill never leaves one cut off.
archive() {  # name.tgz folder [tar options...] -> $out/name.tgz, written aside, then renamed
  local name="$1" folder="$2"
  shift 2
  tar czf "$out/$name.part" -C "$work" "$@" "$folder" && mv "$out/$name.part" "$out/$name"
}
write_summary() {  # complete (true|false)
  # The logs first: a summary that names a step always comes with that step's logs whole.
  archive logs.tgz . --exclude=./multi/data --exclude='*.pt' --exclude=./profile
  {
    echo "{\"complete\": $1, \"phase\": \"$phase\","
    echo " \"version\": $(printf '%s' "$version" | "$python" -c 'import json, sys; print(json.dumps(sys.stdin.read()))'),"
    echo " \"device\": \"$device\", \"gpu\": \"$gpu_name\","
    echo " \"tests_exit_code\": $tests_rc, \"seconds\": $((SECONDS - start)), \"samples\": $samples,"
    echo " \"tests\": [$(IFS=,; echo "${test_results[*]}")],"
    echo " \"multi_process\": $multi,"
    echo " \"nccl_two_processes_one_gpu\": $shared,"
    echo " \"profiles\": [$(IFS=,; echo "${profiles[*]}")],"
    echo " \"bench\": ["
    (IFS=,; echo "${results[*]}")
    echo "]}"
  } > "$out/device_check.json.part"
  if "$python" -m json.tool "$out/device_check.json.part" > /dev/null; then
    mv "$out/device_check.json.part" "$out/device_check.json"
  else  # a defect of this script: keep the last good summary and this one beside it
    log "the summary is not valid JSON; see $out/device_check.json.part"
  fi
}
as_json() {  # a tool's last output line -> itself if it is JSON, else {"unparsed": line}
  "$python" -c 'import json, sys
try:
    print(json.dumps(json.loads(sys.argv[1])))
except ValueError:
    print(json.dumps({"unparsed": sys.argv[1]}))' "$1"
}
log "device $device; nvidia-smi: ${gpu_name:-none}"
if [ "$prebuilt" = no ]; then
  export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"  # no CUDA code is compiled
  export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  torch_prefix="$(eval "$torch_prefix_cmd")"
  log "PyTorch at $torch_prefix"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTNREC_BUILD_TESTS=ON \
    -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" > "$work/configure.log" 2>&1 ||
    { tail -30 "$work/configure.log"; phase="configure failed"; write_summary false; exit 1; }
  cmake --build "$build" -j "$jobs" > "$work/build.log" 2>&1 ||
    { tail -40 "$work/build.log"; phase="build failed"; write_summary false; exit 1; }
  log "built"
fi
version="$("$build/attnrec" --version)"
echo "$version"
phase=tests
write_summary false
# One process per test case, each with a deadline: a crash or a hang costs that case only.
n=0
while IFS= read -r name; do
  [ -n "$name" ] || continue
  n=$((n + 1))
  t0=$SECONDS
  rc=0
  timeout 180 "$build/attnrec_tests" "${name//,/\\,}" > "$work/tests/$n.log" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || { tests_rc=1; tail -15 "$work/tests/$n.log"; }
  log "test $n exit $rc ($((SECONDS - t0)) s): $name"
  test_results+=("$("$python" -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "exit_code": int(sys.argv[2]), "seconds": int(sys.argv[3])}))' "$name" "$rc" "$((SECONDS - t0))")")
done < <("$build/attnrec_tests" --list-test-names-only "$tests")
phase=bench
write_summary false
# The four workloads with deterministic kernels (the default), then W1 without (their cost), then
# W1 inferring in batches of 4096, the peer's inference batch.
for run in "W1 fp32 true" "W1 bf16 true" "T1 fp32 true" "T1 bf16 true" "W1 fp32 false" \
  "W1 fp32 true 4096"; do
  read -r w p d e <<< "$run"
  if line="$(eval "timeout 240 $(bench "$w" "$p" "$d" "$e")" 2>>"$work/bench.log" | tail -1)"; then
    results+=("{\"tool\": \"attnrec\", \"result\": $(as_json "$line")}")
  else
    results+=("{\"tool\": \"attnrec\", \"workload\": \"$w\", \"precision\": \"$p\", \"deterministic\": $d, \"failed\": true}")
  fi
  log "bench $w $p deterministic=$d${e:+ eval.batch_size=$e}"
done
for run in "W1 fp32" "W1 bf16" "T1 fp32" "T1 bf16"; do
  read -r w p <<< "$run"
  if line="$(eval "timeout 240 $(peer "$w" "$p")" 2>>"$work/bench.log" | tail -1)"; then
    results+=("{\"tool\": \"pytorch\", \"result\": $(as_json "$line")}")
  else
    results+=("{\"tool\": \"pytorch\", \"workload\": \"$w\", \"precision\": \"$p\", \"failed\": true}")
  fi
  log "peer $w $p"
done
phase=profiles
write_summary false
# 2b. Where a W1 fp32 step's time goes, in attnrec and in the peer: traces of 20 training steps
# and 20 inference batches, summarised (launches, kernels and their time per step).
mkdir -p "$work/profile"
eval "timeout 240 $(bench W1 fp32) --profile $work/profile/attnrec" > "$work/profile/attnrec.bench.json" \
  2>> "$work/bench.log" || true
eval "timeout 240 $(peer W1 fp32) --profile $work/profile/pytorch" > "$work/profile/pytorch.bench.json" \
  2>> "$work/bench.log" || true
for trace in "$work"/profile/*/*.json; do
  [ -e "$trace" ] || continue
  if line="$("$python" scripts/trace_summary.py "$trace" 2>> "$work/bench.log")"; then
    profiles+=("$(as_json "$line")")
  fi
done
log "profiles: ${#profiles[@]} traces summarised"
archive traces.tgz profile
phase=multi_process
write_summary false
# 3. Two processes beside one: NCCL with a GPU each where there are two, else Gloo on cuda:0.
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
launch_two() {  # backend device0 device1 run -> waits for both ranks; returns 0 if both exit 0
  local port pids=() ok=0 r
  port="$(free_port)"
  for r in 0 1; do
    local dev="$2"; [ "$r" = 1 ] && dev="$3"
    RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      timeout "${launch_timeout:-300}" bash -c "$(multi_two "$1" "$dev" "$4")" > "$work/multi.$4.rank$r.log" 2>&1 &
    pids+=($!)
  done
  codes=()
  for pid in "${pids[@]}"; do wait "$pid" && codes+=(0) || { codes+=($?); ok=1; }; done
  return $ok
}
compare_runs() {  # backend run -> one JSON object comparing runs "one" and RUN
  "$python" - "$work/multi" "$1" "$gpus" "$2" <<'PY'
import json, sys
root, backend, gpus, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def losses(run):
    rows = [json.loads(l) for l in open(f"{root}/{run}/metrics.jsonl")]
    return [r["train_loss"] for r in rows if "train_loss" in r]
one, two = losses("one"), losses(run)
worst = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(one, two)) if one else None
s1 = json.load(open(f"{root}/one/summary.json"))
s2 = json.load(open(f"{root}/{run}/summary.json"))
print(json.dumps({"backend": backend, "gpus": gpus, "processes": 2,
                  "max_relative_train_loss_difference": worst,
                  "same_number_of_epochs": len(one) == len(two),
                  "test_auc": [s1["test"]["auc"], s2["test"]["auc"]],
                  "samples_per_second": [s1["train_samples_per_second"],
                                         s2["train_samples_per_second"]],
                  "distributed": s2.get("distributed"),
                  "ok": worst is not None and worst < 1e-3 and len(one) == len(two)}))
PY
}
if [ "$gpus" -ge 2 ]; then backend=nccl; devices=(cuda cuda); else backend=gloo; devices=("$device0" "$device0"); fi
multi="{\"failed\": true, \"backend\": \"$backend\"}"
one_ok=no
if eval "$(multi_data)" > "$work/multi.log" 2>&1 && eval "$(multi_one)" >> "$work/multi.log" 2>&1; then
  one_ok=yes
  if launch_two "$backend" "${devices[0]}" "${devices[1]}" two; then
    multi="$(compare_runs "$backend" two)" ||
      multi="{\"failed\": true, \"backend\": \"$backend\", \"compare\": \"failed\"}"
  else
    multi="{\"failed\": true, \"backend\": \"$backend\", \"exit_codes\": [${codes[0]}, ${codes[1]}]}"
  fi
fi
log "2 processes ($backend): $multi"
phase=nccl_two_processes_one_gpu
write_summary false
# 4. One GPU: NCCL with both processes on it. NCCL may refuse (two ranks on one GPU); record how.
# The rehearsal on CPU processes records attnrec's refusal of NCCL there instead.
if { [ "$gpus" -eq 1 ] || [ "$device" = cpu ]; } && [ "$one_ok" = yes ]; then
  t4=$SECONDS
  if launch_timeout=90 launch_two nccl "$device0" "$device0" nccl_one_gpu; then
    shared="$(compare_runs nccl nccl_one_gpu)" || shared="{\"compare\": \"failed\"}"
  else
    shared="$("$python" - "$work" "$device0" "$((SECONDS - t4))" "${codes[@]}" <<'PY'
import json, sys
out, device, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
codes = [int(c) for c in sys.argv[4:]]
tails = [open(f"{out}/multi.nccl_one_gpu.rank{r}.log", errors="replace").read().splitlines()[-4:]
         for r in (0, 1)]
print(json.dumps({"backend": "nccl", "both_on": device, "exit_codes": codes,
                  "seconds": seconds, "last_lines": tails}))
PY
)"
  fi
  log "NCCL, 2 processes on $device0: $shared"
fi
phase=done
write_summary true
log "wrote $out/device_check.json, $out/logs.tgz and $out/traces.tgz"
cat "$out/device_check.json"
exit "$tests_rc"
