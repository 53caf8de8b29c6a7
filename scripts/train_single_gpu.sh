#!/usr/bin/env bash
# Train HashNet at 16/32/48/64 bits with the reference seeds on one device.
# Usage: scripts/train_single_gpu.sh [DATASET] [DATA_PATH]   (defaults: lite ./datasets/lite/)
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-${DATASET:-lite}}
DATA_PATH=${2:-${DATA_PATH:-./datasets/${DATASET}/}}
declare -A SEEDS=([16]=0 [32]=2000 [48]=200 [64]=2000)
for BIT in 16 32 48 64; do
  python main_single_gpu.py --dataset "$DATASET" --data-path "$DATA_PATH" --bit "$BIT" --seed "${SEEDS[$BIT]}" \
    --output-dir "./output/${DATASET}" "${@:3}"
done
