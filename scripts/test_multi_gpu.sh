#!/bin/sh
# Evaluate the best weights of scripts/train_multi_gpu.sh at 16/32/48/64 bits, the query and
# database encoding sharded over NPROC processes (the mAP equals a one-process evaluation's), once its
# training of every bit length finished (else one error line, exit 1: never the numbers of an interrupted run).
# Usage: sh scripts/test_multi_gpu.sh [DATASET] [DATA_PATH] [NPROC] [more main_multi_gpu.py flags...]
#   or through the environment: DATASET, DATA_PATH, NPROC, GPUS, IPS, OUTPUT_DIR (weights folder), BITS, PYTHON
#   defaults: lite ./datasets/<DATASET>/ 2 processes (CPU) or every visible GPU, weights in
#   ./output/<DATASET>_multi_gpu (the folder train_multi_gpu.sh writes),
#   BITS="16 32 48 64"; DRY_RUN=1 prints the commands instead of running them.
# CPU-only build: python -m paddle.distributed.launch --nproc_per_node NPROC main_multi_gpu.py --eval ...
# CUDA build:     python -m paddle.distributed.launch --gpus 0,1,... main_multi_gpu.py --eval ...
# Several machines: IPS=ip1,ip2 -> launch --ips ip1,ip2 ... (run on every machine, see train_multi_gpu.sh).
set -eu
cd "$(dirname "$0")/.."
DATASET=${1:-${DATASET:-lite}}
DATA_PATH=${2:-${DATA_PATH:-./datasets/${DATASET}/}}
NPROC=${3:-${NPROC:-}}
if [ $# -ge 3 ]; then shift 3; else shift $#; fi
SCRIPT_KIND=multi_gpu
. scripts/launcher.sh
for BIT in $BITS; do
  check_finished "$BIT" || exit 1
done
pick_launcher
for BIT in $BITS; do
  run "$PYTHON" -m paddle.distributed.launch $LAUNCH --log_dir "${OUTPUT_DIR}/launch_log_eval_${BIT}" main_multi_gpu.py \
    --eval --device "$DEVICE" --dataset "$DATASET" --data-path "$DATA_PATH" --bit "$BIT" \
    --pretrained "${OUTPUT_DIR}/model_best_${BIT}" --output-dir "$OUTPUT_DIR" "$@"
done
