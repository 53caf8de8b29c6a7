#!/bin/sh
# Evaluate the best weights of scripts/train_single_gpu.sh at 16/32/48/64 bits, once its training of every
# bit length finished (else one error line, exit 1: never the numbers of an interrupted run).
# Usage: sh scripts/test_single_gpu.sh [DATASET] [DATA_PATH] [more main_single_gpu.py flags...]
#   the environment may set DATASET, DATA_PATH, OUTPUT_DIR (weights folder, default ./output/<DATASET>_single_gpu,
#   the one train_single_gpu.sh writes), BITS (default "16 32 48 64"), PYTHON; DRY_RUN=1 prints the commands
#   instead of running them.
set -eu
cd "$(dirname "$0")/.."
DATASET=${1:-${DATASET:-lite}}
DATA_PATH=${2:-${DATA_PATH:-./datasets/${DATASET}/}}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
SCRIPT_KIND=single_gpu
. scripts/launcher.sh
for BIT in $BITS; do
  check_finished "$BIT" || exit 1
done
for BIT in $BITS; do
  run "$PYTHON" main_single_gpu.py --eval --dataset "$DATASET" --data-path "$DATA_PATH" --bit "$BIT" \
    --pretrained "${OUTPUT_DIR}/model_best_${BIT}" --output-dir "$OUTPUT_DIR" "$@"
done
