#!/usr/bin/env bash
# The main job on the bundled default data: set up and build, generate the synthetic data set
# (deterministic), train configs/quickstart.json, evaluate the best model on the test split
# against the generator's Bayes-optimal oracle, and write the 10 best unseen items for each test
# user, and write the run's HTML report (runs/quickstart/report.html).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/attnrec generate --out data/quickstart --seed 7 --overwrite
build/attnrec train --config configs/quickstart.json --run-dir runs/quickstart --overwrite
echo
echo "== evaluate runs/quickstart on data/quickstart/test.tsv (with attention analysis)"
build/attnrec --log-level warn evaluate --checkpoint runs/quickstart \
  --data data/quickstart/test.tsv --oracle data/quickstart/oracle.json \
  --output runs/quickstart/test_metrics.json
oracle_auc=$(grep -A2 '"test": {' data/quickstart/oracle.json | grep '"auc"' | tr -dc '0-9.')
echo "oracle (Bayes-optimal) test AUC: ${oracle_auc}"
echo "run directory: runs/quickstart (metrics: runs/quickstart/test_metrics.json)"
echo
echo "== recommend: the 10 best unseen items for each user of data/quickstart/test.tsv"
build/attnrec recommend --checkpoint runs/quickstart --users data/quickstart/test.tsv --k 10 \
  --output runs/quickstart/recommendations.tsv
head -n 6 runs/quickstart/recommendations.tsv
echo "recommendations: runs/quickstart/recommendations.tsv"
echo
echo "== report: one self-contained page (learning curves, ROC, PR, calibration, attention)"
build/attnrec --log-level warn report runs/quickstart
echo "open runs/quickstart/report.html in a browser; TensorBoard: tensorboard --logdir runs/quickstart/tb"
