#!/usr/bin/env bash
# Sets up and builds attnrec, generates the bundled synthetic data set (deterministic), and
# runs the main job on it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/attnrec generate --out data/quickstart --seed 7
