#!/bin/sh
# Data-parallel training of HashNet at 16/32/48/64 bits with the reference seeds (main_multi_gpu.py).
# Usage: sh scripts/train_multi_gpu.sh [DATASET] [DATA_PATH] [NPROC] [more main_multi_gpu.py flags...]
#   or through the environment: DATASET, DATA_PATH, NPROC, GPUS, IPS, OUTPUT_DIR, BITS, PYTHON
#   defaults: lite ./datasets/<DATASET>/ (the lite data is generated on first use), output
#   ./output/<DATASET>_multi_gpu (test_multi_gpu.sh evaluates it),
#   BITS="16 32 48 64"; DRY_RUN=1 prints the commands instead of running them.
#   Paths are relative to the repository root (the script starts there).
# How the processes start (picked here, from what this PaddlePaddle build sees):
#   CPU-only build:        python -m paddle.distributed.launch --nproc_per_node NPROC main_multi_gpu.py --device cpu ...
#                          (gloo; NPROC default 2; each process gets cores / NPROC threads)
#   CUDA build with GPUs:  python -m paddle.distributed.launch --gpus 0,1,... main_multi_gpu.py --device gpu ...
#                          (NCCL; GPUS=0,1 picks the devices, else the first NPROC, NPROC default: every visible GPU)
# Several machines: run the same command on every machine with the same list of machines, e.g.
#   IPS=192.168.0.1,192.168.0.2 GPUS=0,1 sh scripts/train_multi_gpu.sh coco /data/coco
#   -> python -m paddle.distributed.launch --ips 192.168.0.1,192.168.0.2 --gpus 0,1 main_multi_gpu.py ...
# --batch-size is per process and the learning rate scales with the global batch
# (the reference recipe: 2 GPUs x 64). Example on COCO with 2 GPUs:
#   sh scripts/train_multi_gpu.sh coco /data/coco 2 --pretrained-backbone /weights/AlexNet_pretrained.pdparams
set -eu
cd "$(dirname "$0")/.."
DATASET=${1:-${DATASET:-lite}}
DATA_PATH=${2:-${DATA_PATH:-./datasets/${DATASET}/}}
NPROC=${3:-${NPROC:-}}
if [ $# -ge 3 ]; then shift 3; else shift $#; fi
SCRIPT_KIND=multi_gpu
. scripts/launcher.sh
pick_launcher
for BIT in $BITS; do
  SEED=$(reference_seed "$BIT")
  # $LAUNCH is split on purpose: it holds the launcher's flags
  run "$PYTHON" -m paddle.distributed.launch $LAUNCH --log_dir "${OUTPUT_DIR}/launch_log_train_${BIT}" main_multi_gpu.py \
    --device "$DEVICE" --dataset "$DATASET" --data-path "$DATA_PATH" --bit "$BIT" --seed "$SEED" \
    --output-dir "$OUTPUT_DIR" "$@"
done
