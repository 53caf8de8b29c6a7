#!/bin/sh
# Train HashNet at 16/32/48/64 bits with the reference seeds on one device.
# Usage: sh scripts/train_single_gpu.sh [DATASET] [DATA_PATH] [more main_single_gpu.py flags...]
#   defaults: lite ./datasets/lite/ (generated on first use); the environment may set DATASET,
#   DATA_PATH, OUTPUT_DIR (default ./output/<DATASET>_single_gpu, the folder test_single_gpu.sh evaluates),
#   BITS (default "16 32 48 64"), PYTHON; DRY_RUN=1 prints the commands instead of running them.
set -eu
cd "$(dirname "$0")/.."
DATASET=${1:-${DATASET:-lite}}
DATA_PATH=${2:-${DATA_PATH:-./datasets/${DATASET}/}}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
SCRIPT_KIND=single_gpu
. scripts/launcher.sh
for BIT in $BITS; do
  SEED=$(reference_seed "$BIT")
  run "$PYTHON" main_single_gpu.py --dataset "$DATASET" --data-path "$DATA_PATH" --bit "$BIT" --seed "$SEED" \
    --output-dir "$OUTPUT_DIR" "$@"
done
