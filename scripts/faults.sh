#!/usr/bin/env bash
# Fault campaign on demand (issue 34; not part of the default suite): interrupts, starves and
# damages real training runs of the real binary and checks that every fault ends in a clear
# error or an exact resume, never a crash, a hang, a corrupted checkpoint or a silent change.
#
#   bash scripts/faults.sh [--trials N] [--work DIR] [--keep] [SCENARIO...]
#
# Scenarios (default: all): sigkill sigterm sigint fsize tmpfs unwritable truncate bitflip
# vocab data two-trainers eval-during-train. --work DIR: a new or empty folder for the runs
# (default: a temporary one), removed at the end unless --keep. --trials N (default 20) is the
# number of trials of the random scenarios (truncate always cuts at each 1/16 of the file;
# vocab and data try each kind of edit). tmpfs and unwritable mount a small tmpfs (root);
# where mounting is not permitted they are skipped with a message. ATTNREC_BIN names the
# binary (default build/attnrec). Prints: scenario | trials | clear errors | corrupted
# checkpoints | resumes that matched the uninterrupted run | failures, and exits 1 when any
# trial failed (each failure is described above the table).
set -uo pipefail
set -m  # background jobs in their own process groups: SIGINT is not ignored in them
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
all=(sigkill sigterm sigint fsize tmpfs unwritable truncate bitflip vocab data two-trainers
  eval-during-train)
trials=20
work=""
keep=0
scenarios=()
while (($#)); do
  case $1 in
    --trials)
      [[ ${2:-} =~ ^[1-9][0-9]{0,3}$ ]] || { echo "error: --trials: expected 1 to 9999, got '${2:-}'" >&2; exit 2; }
      trials=$2 && shift 2 ;;
    --work)
      [[ -n ${2:-} ]] || { echo "error: --work: expected a directory" >&2; exit 2; }
      work=$2 && shift 2 ;;
    --keep) keep=1 && shift ;;
    -h | --help) usage && exit 0 ;;
    -*) echo "error: unknown option '$1' (see --help)" >&2 && exit 2 ;;
    *)
      [[ " ${all[*]} " == *" $1 "* ]] || { echo "error: unknown scenario '$1' (one of: ${all[*]})" >&2; exit 2; }
      scenarios+=("$1") && shift ;;
  esac
done
((${#scenarios[@]})) || scenarios=("${all[@]}")

bin=${ATTNREC_BIN:-build/attnrec}
[[ $bin == /* ]] || bin=$root/$bin
[[ -x $bin ]] || { echo "error: $bin not found; build first (bash scripts/setup.sh)" >&2; exit 2; }
if [[ -z $work ]]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/attnrec-faults.XXXXXX")
else
  # It is removed at the end (unless --keep): only a new or empty folder is accepted.
  if [[ -e $work && -n $(ls -A "$work" 2> /dev/null) ]]; then
    echo "error: --work: $work is not empty (give a new or empty folder)" >&2 && exit 2
  fi
  mkdir -p "$work" && work=$(cd "$work" && pwd) || { echo "error: --work: cannot create $work" >&2; exit 2; }
fi
mounts=()
cleanup() {
  for m in "${mounts[@]}"; do umount "$m" 2> /dev/null; done
  ((keep)) || rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 2

A() { "$bin" --log-level warn "$@"; }  # never in the background: signals must reach the binary
failures=()
fail() { failures+=("$scenario trial $trial: $*") && echo "FAIL $scenario trial $trial: $*" >&2; }
random_fraction() { echo "0.$(printf '%04d' $((RANDOM % 9000 + 500)))"; }  # 0.05 to 0.95

# --- the workload: a small model trained for 2 epochs, a checkpoint every 2 steps ----------
A generate --out data --users 40 --items 60 --categories 6 --train 3000 --valid 200 \
  --test 200 --seed 5 > /dev/null || exit 1
cat > c.json << EOF
{"data": {"train": "$work/data/train.tsv", "valid": "$work/data/valid.tsv",
          "test": "$work/data/test.tsv"},
 "model": {"embedding": {"dim": 8}, "encoder": {"hidden": 8},
           "head": {"hidden": [8], "dropout": 0.2}},
 "train": {"epochs": 2, "batch_size": 32, "threads": 1, "device": "cpu",
           "validate_every_steps": 20},
 "checkpoint": {"every_steps": 2, "keep_last": 2}}
EOF
field() { grep -o "\"$2\": [^,]*" <<< "$1" | head -1 | sed 's/.*: //; s/"//g'; }
fingerprint() {  # weights, Adam state and step of a final checkpoint
  local j
  j=$(A inspect --json "$1" 2> /dev/null) || { echo "unreadable"; return; }
  echo "$(field "$j" weights_sha256) $(field "$j" optimizer_sha256) $(field "$j" global_step)"
}
started=$(date +%s.%N)
A train --config c.json --run-dir straight > /dev/null 2>&1 || { echo "error: the uninterrupted run failed" >&2; exit 1; }
seconds=$(awk "BEGIN { print $(date +%s.%N) - $started }")
expected=$(fingerprint straight/checkpoints/final.pt)
echo "workload: the uninterrupted run took ${seconds} s; final $expected" >&2
# A run stopped at step 10 (checkpoints at steps 8 and 10), copied for the damage scenarios.
A train --config c.json --run-dir stopped --stop-after-steps 10 > /dev/null 2>&1 || exit 1

# --- per-trial checks -------------------------------------------------------------------
declare -A n_trials n_clear n_corrupt n_matched
bump() {  # bump COUNTER
  local -n c=n_$1
  c[$scenario]=$((${c[$scenario]:-0} + 1))
}
# Every checkpoint file must pass inspect (format, sizes, checksum, header fields).
check_checkpoints() {
  local f
  for f in "$1"/checkpoints/*.pt; do
    [[ -e $f ]] || continue
    A inspect "$f" > /dev/null 2>&1 || { bump corrupt; fail "corrupted checkpoint $f"; }
  done
}
# A clear error: the expected exit code, an "error: " line, no internal error (a failure is
# recorded otherwise; the caller counts the clear ones).
clear_error() {  # clear_error RC EXPECTED ERRFILE
  if [[ $1 -ne $2 ]]; then
    fail "exit $1, expected $2: $(head -c 300 "$3")"
    return 1
  fi
  if ! grep -q '^error: ' "$3" || grep -q 'internal error' "$3"; then
    fail "exit $1 without a clear message: $(head -c 300 "$3")"
    return 1
  fi
}
# Finishes RUN (resume from its latest checkpoint, or a new start when it has none) and
# compares the final model with the uninterrupted run's.
finish_and_compare() {  # finish_and_compare RUN [RESUME_TARGET]
  local rc
  if [[ -n ${2:-} ]]; then
    A train --resume "$2" > /dev/null 2> err.txt
  elif [[ -e $1/checkpoints/latest ]]; then
    A train --resume "$1" > /dev/null 2> err.txt
  else
    A train --config c.json --run-dir "$1" --overwrite > /dev/null 2> err.txt
  fi
  rc=$?
  if [[ $rc -ne 0 ]]; then
    fail "the resume failed (exit $rc): $(head -c 300 err.txt)"
  elif [[ $(fingerprint "$1/checkpoints/final.pt") == "$expected" ]]; then
    bump matched
  else
    fail "the resumed run differs from the uninterrupted one"
  fi
}
tree_hash() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
fresh_copy() { rm -rf "$2" && cp -a "$1" "$2"; }
can_mount() {
  mkdir -p probe && mount -t tmpfs -o size=64k tmpfs probe 2> /dev/null && umount probe
}
mount_tmpfs() {  # mount_tmpfs DIR SIZE
  mkdir -p "$1" && mount -t tmpfs -o "size=$2" tmpfs "$1" && mounts+=("$work/$1")
}
unmount() {  # unmount DIR: the tmpfs mount_tmpfs made, and its entry in the cleanup list
  local m kept=()
  umount "$1" && rmdir "$1" || return 1
  for m in "${mounts[@]}"; do [[ $m == "$work/$1" ]] || kept+=("$m"); done
  mounts=("${kept[@]}")
}

# --- scenarios ----------------------------------------------------------------------------
# A background job of a shell without job control (nohup, CI) inherits SIGINT ignored, so a
# SIGINT before the trainer installs its handler would be lost; as at a terminal, the trainer
# starts with the default action (coreutils' env --default-signal, where it exists).
default_signals=()
env --default-signal=INT true 2> /dev/null && default_signals=(env --default-signal=INT)
# A signal at a random moment of a training run: SIGKILL leaves the latest complete checkpoint;
# SIGTERM and SIGINT finish the step, checkpoint and exit 143 / 130. Then resume.
signal_trial() {  # signal_trial SIGNAL EXPECTED_RC
  local run=run-$scenario-$trial delay pid rc
  delay=$(awk "BEGIN { print $(random_fraction) * $seconds }")
  "${default_signals[@]}" "$bin" --log-level warn train --config c.json --run-dir "$run" \
    > /dev/null 2> err.txt &
  pid=$!
  sleep "$delay"
  kill "-$1" "$pid" 2> /dev/null
  wait "$pid"
  rc=$?
  # SIGTERM / SIGINT: exit 143 / 130, saying how to resume once training has begun (a
  # signal during start-up ends the process by the default action, with the same code).
  if [[ $1 != KILL ]]; then
    if [[ $rc -eq 0 ]]; then
      echo "  ($scenario trial $trial: the run had finished before the signal)" >&2
    elif [[ $rc -ne $2 ]]; then
      fail "exit $rc, expected $2: $(head -c 300 err.txt)"
    elif [[ -e $run/checkpoints/latest ]] && ! grep -q 'resume with' err.txt; then
      fail "exit $rc without saying how to resume: $(head -c 300 err.txt)"
    else
      bump clear
    fi
  fi
  check_checkpoints "$run"
  finish_and_compare "$run"
  rm -rf "$run"
}
scenario_sigkill() { for ((trial = 1; trial <= trials; ++trial)); do bump trials && signal_trial KILL 137; done; }
scenario_sigterm() { for ((trial = 1; trial <= trials; ++trial)); do bump trials && signal_trial TERM 143; done; }
scenario_sigint() { for ((trial = 1; trial <= trials; ++trial)); do bump trials && signal_trial INT 130; done; }

# A file size limit (RLIMIT_FSIZE, like a full disk) below a checkpoint's size, on a fresh
# run or a resume: exit 1 naming the file; no checkpoint damaged; then finished without it.
scenario_fsize() {
  local size run limit rc
  size=$(($(stat -c %s stopped/checkpoints/step-000000010.pt) / 1024))
  for ((trial = 1; trial <= trials; ++trial)); do
    bump trials
    run=run-fsize-$trial
    limit=$((RANDOM % size + 1))
    if ((trial % 2)); then
      fresh_copy stopped "$run"
      bash -c "trap '' XFSZ; ulimit -f $limit; exec '$bin' --log-level warn train --resume '$run'" > /dev/null 2> err.txt
    else
      bash -c "trap '' XFSZ; ulimit -f $limit; exec '$bin' --log-level warn train --config c.json --run-dir '$run'" > /dev/null 2> err.txt
    fi
    rc=$?
    clear_error "$rc" 1 err.txt && bump clear
    check_checkpoints "$run"
    finish_and_compare "$run"
    rm -rf "$run"
  done
}

# A small tmpfs that fills up during training (No space left on device): exit 1; then the
# file system grows and the run is resumed in place.
scenario_tmpfs() {
  can_mount || { echo "  tmpfs: skipped (mounting a tmpfs is not permitted here)" >&2; return; }
  local size rc
  for ((trial = 1; trial <= trials; ++trial)); do
    bump trials
    size=$((RANDOM % 120 + 8))k
    mount_tmpfs disk "$size" || { fail "mount failed"; continue; }
    A train --config c.json --run-dir disk/run > /dev/null 2> err.txt
    rc=$?
    if clear_error "$rc" 1 err.txt; then
      if grep -q 'No space left on device' err.txt; then
        bump clear
      else
        fail "the message does not say the disk is full: $(head -c 300 err.txt)"
      fi
    fi
    check_checkpoints disk/run
    mount -o remount,size=64m disk
    finish_and_compare disk/run
    unmount disk
  done
}

# A read-only file system: a new run cannot create its directory; a resume of a run on it
# fails before changing anything; once writable again the resume finishes exactly.
scenario_unwritable() {
  can_mount || { echo "  unwritable: skipped (mounting a tmpfs is not permitted here)" >&2; return; }
  local rc before
  for ((trial = 1; trial <= trials; ++trial)); do
    bump trials
    mount_tmpfs ro 64m || { fail "mount failed"; continue; }
    cp -a stopped ro/run
    mount -o remount,ro ro
    before=$(tree_hash ro/run)
    if ((trial % 2)); then
      A train --config c.json --run-dir ro/new > /dev/null 2> err.txt
    else
      A train --resume ro/run > /dev/null 2> err.txt
    fi
    rc=$?
    clear_error "$rc" 1 err.txt && bump clear
    [[ $(tree_hash ro/run) == "$before" ]] || fail "the run directory changed"
    check_checkpoints ro/run
    mount -o remount,rw ro
    finish_and_compare ro/run
    unmount ro
  done
}

# A damaged latest checkpoint: inspect, evaluate and resume all refuse it (exit 2) without
# changing the run; resuming from the previous checkpoint still finishes exactly.
damaged_trial() {  # damaged_trial DAMAGE_COMMAND...
  local run=run-$scenario-$trial target before rc ok=1
  fresh_copy stopped "$run"
  target=$run/checkpoints/step-000000010.pt
  "$@" "$target"
  before=$(tree_hash "$run")
  A inspect "$target" > /dev/null 2> err.txt
  rc=$?
  [[ $rc -eq 2 ]] && grep -q "^error: .*$target" err.txt || { ok=0; fail "inspect: exit $rc: $(head -c 300 err.txt)"; }
  A evaluate --checkpoint "$target" --data data/test.tsv > /dev/null 2> err.txt
  rc=$?
  [[ $rc -eq 2 ]] && grep -q '^error: ' err.txt || { ok=0; fail "evaluate: exit $rc: $(head -c 300 err.txt)"; }
  A train --resume "$run" > /dev/null 2> err.txt
  rc=$?
  [[ $rc -eq 2 ]] && grep -q '^error: ' err.txt || { ok=0; fail "resume: exit $rc: $(head -c 300 err.txt)"; }
  [[ $(tree_hash "$run") == "$before" ]] || { ok=0; fail "the run directory changed"; }
  ((ok)) && bump clear
  rm -f "$target"
  finish_and_compare "$run" "$run/checkpoints/step-000000008.pt"
  rm -rf "$run"
}
cut_at() { truncate -s "$(($(stat -c %s "$2") * $1 / 16))" "$2"; }
flip_bit() {
  local size offset byte
  size=$(stat -c %s "$1")
  offset=$(((RANDOM * 32768 + RANDOM) % size))
  byte=$(od -An -tu1 -j "$offset" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((byte ^ (1 << (RANDOM % 8)))))" |
    dd of="$1" bs=1 seek="$offset" conv=notrunc status=none
}
scenario_truncate() { for ((trial = 0; trial < 16; ++trial)); do bump trials && damaged_trial cut_at "$trial"; done; }
scenario_bitflip() { for ((trial = 1; trial <= trials; ++trial)); do bump trials && damaged_trial flip_bit; done; }

# A vocabulary file of the run edited after training: evaluate and resume refuse (exit 2).
scenario_vocab() {
  local run kind rc before
  trial=0
  for kind in delete append swap count; do
    ((++trial)) && bump trials
    run=run-vocab-$trial
    fresh_copy stopped "$run"
    case $kind in
      delete) sed -i '5d' "$run/items.vocab" ;;
      append) printf 'new-item\t1\n' >> "$run/items.vocab" ;;
      swap) sed -i '4{h;d};5{G}' "$run/items.vocab" ;;
      count) sed -i '4s/\t[0-9]*$/\t1/' "$run/items.vocab" ;;
    esac
    before=$(tree_hash "$run")
    A evaluate --checkpoint "$run" --data data/test.tsv > /dev/null 2> err.txt
    rc=$?
    A train --resume "$run" > /dev/null 2> err2.txt
    if clear_error $? 2 err2.txt && clear_error "$rc" 2 err.txt; then
      bump clear
    fi
    [[ $(tree_hash "$run") == "$before" ]] || fail "the run directory changed ($kind)"
    rm -rf "$run"
  done
}

# The training file changed between a run and its resume: refused (exit 2), nothing changed;
# restored, the resume finishes exactly.
scenario_data() {
  local run kind rc before
  trial=0
  cp data/train.tsv train.orig
  for kind in flip-label swap-lines delete-line append-line; do
    ((++trial)) && bump trials
    run=run-data-$trial
    fresh_copy stopped "$run"
    case $kind in
      flip-label) sed -i '2s/^1/0/;t;2s/^0/1/' data/train.tsv ;;
      swap-lines) sed -i '2{h;d};3{G}' data/train.tsv ;;
      delete-line) sed -i '7d' data/train.tsv ;;
      append-line) sed -n '2p' data/train.tsv >> data/train.tsv ;;
    esac
    cmp -s data/train.tsv train.orig && fail "the edit $kind changed nothing"
    before=$(tree_hash "$run")
    A train --resume "$run" > /dev/null 2> err.txt
    rc=$?
    clear_error "$rc" 2 err.txt && bump clear
    [[ $(tree_hash "$run") == "$before" ]] || fail "the run directory changed ($kind)"
    cp train.orig data/train.tsv
    finish_and_compare "$run"
    rm -rf "$run"
  done
}

# Two trainers started on the same new run directory at once (with and without --overwrite):
# exactly one trains, the other is refused (exit 2); the run equals the uninterrupted one.
scenario_two-trainers() {
  local run rc1 rc2 p1 p2 extra
  for ((trial = 1; trial <= trials; ++trial)); do
    bump trials
    run=run-two-$trial
    extra=()
    ((trial % 2)) && extra=(--overwrite)
    "$bin" --log-level warn train --config c.json --run-dir "$run" "${extra[@]}" > /dev/null 2> err1.txt &
    p1=$!
    sleep "0.$(printf '%03d' $((RANDOM % 300)))"
    "$bin" --log-level warn train --config c.json --run-dir "$run" "${extra[@]}" > /dev/null 2> err2.txt &
    p2=$!
    wait "$p1"
    rc1=$?
    wait "$p2"
    rc2=$?
    if [[ $rc1 -eq 0 && $rc2 -ne 0 ]]; then
      clear_error "$rc2" 2 err2.txt && bump clear
    elif [[ $rc2 -eq 0 && $rc1 -ne 0 ]]; then
      clear_error "$rc1" 2 err1.txt && bump clear
    else
      fail "exits $rc1 and $rc2: $(head -c 200 err1.txt) / $(head -c 200 err2.txt)"
    fi
    check_checkpoints "$run"
    if [[ $(fingerprint "$run/checkpoints/final.pt") == "$expected" ]]; then
      bump matched
    else
      fail "the run differs from the uninterrupted one"
    fi
    rm -rf "$run"
  done
}

# Evaluations of a run (its best checkpoint, and the file `latest` names) while its trainer
# writes checkpoints: each gives metrics or a clear exit 2 (no checkpoint yet, or one pruned
# meanwhile); the trainer is not disturbed.
scenario_eval-during-train() {
  local run=run-eval pid rc latest
  sed 's/"epochs": 2/"epochs": 8/' c.json > c8.json
  "$bin" --log-level warn train --config c8.json --run-dir "$run" > /dev/null 2> train-err.txt &
  pid=$!
  trial=0
  while kill -0 "$pid" 2> /dev/null && ((trial < trials * 5)); do
    ((++trial)) && bump trials
    if ((trial % 2)); then
      A evaluate --checkpoint "$run" --data data/test.tsv > /dev/null 2> err.txt
    else
      latest=$(cat "$run/checkpoints/latest" 2> /dev/null)
      A evaluate --checkpoint "$run/checkpoints/${latest:-none}" --data data/test.tsv > /dev/null 2> err.txt
    fi
    rc=$?
    if [[ $rc -ne 0 ]]; then clear_error "$rc" 2 err.txt && bump clear; fi
  done
  wait "$pid" || fail "the trainer failed: $(head -c 300 train-err.txt)"
  check_checkpoints "$run"
  rm -rf "$run"
}

for scenario in "${scenarios[@]}"; do
  echo "scenario $scenario ..." >&2
  t0=$(date +%s)
  trial=0
  "scenario_$scenario"
  echo "  $scenario: $(($(date +%s) - t0)) s" >&2
done

# --- the table ----------------------------------------------------------------------------
failed_in() {
  local f n=0
  for f in "${failures[@]}"; do [[ $f == "$1 trial"* ]] && ((++n)); done
  echo "$n"
}
printf '\n| %-18s | %6s | %12s | %21s | %29s | %8s |\n' scenario trials "clear errors" \
  "corrupted checkpoints" "resumes that matched the run" failures
printf '|%s|%s|%s|%s|%s|%s|\n' "--------------------" "--------" "--------------" \
  "-----------------------" "-------------------------------" "----------"
for scenario in "${scenarios[@]}"; do
  t=${n_trials[$scenario]:-0}
  if ((t == 0)); then
    printf '| %-18s | %6s | %12s | %21s | %29s | %8s |\n' "$scenario" skipped - - - -
    continue
  fi
  case $scenario in sigkill) c=- ;; *) c=${n_clear[$scenario]:-0} ;; esac
  case $scenario in vocab | eval-during-train) m=- ;; *) m=${n_matched[$scenario]:-0} ;; esac
  printf '| %-18s | %6d | %12s | %21d | %29s | %8d |\n' "$scenario" "$t" "$c" \
    "${n_corrupt[$scenario]:-0}" "$m" "$(failed_in "$scenario")"
done
if ((${#failures[@]})); then
  echo "${#failures[@]} failure(s):" >&2
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "no failures"
