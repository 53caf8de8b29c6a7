#!/usr/bin/env bash
# Evaluate the best weights of scripts/train_single_gpu.sh at 16/32/48/64 bits.
# Usage: scripts/test_single_gpu.sh [DATASET] [DATA_PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-${DATASET:-lite}}
DATA_PATH=${2:-${DATA_PATH:-./datasets/${DATASET}/}}
for BIT in 16 32 48 64; do
  python main_single_gpu.py --eval --dataset "$DATASET" --data-path "$DATA_PATH" --bit "$BIT" \
    --pretrained "./output/${DATASET}/model_best_${BIT}" --output-dir "./output/${DATASET}" "${@:3}"
done
