#!/bin/sh
# Shared by the train/test scripts in this folder (read with `.`, not run). POSIX sh: the scripts
# run under dash (Debian's /bin/sh), bash or any other POSIX shell.
#
# The caller sets DATASET, DATA_PATH, NPROC (from its arguments or the environment) and SCRIPT_KIND
# (single_gpu | multi_gpu: the train and test scripts of one kind share a folder, the two kinds never do);
# this file adds, from the environment:
#   OUTPUT_DIR  weights folder (default ./output/<DATASET>_<SCRIPT_KIND>, e.g. ./output/lite_single_gpu)
#   BITS        code lengths to run (default "16 32 48 64")
#   GPUS        GPU ids for paddle.distributed.launch --gpus (default: the first NPROC)
#   IPS         several machines: paddle.distributed.launch --ips IPS
#   PYTHON      the interpreter (default python)
#   DRY_RUN=1   print the commands instead of running them
OUTPUT_DIR=${OUTPUT_DIR:-./output/${DATASET:-lite}_${SCRIPT_KIND:-single_gpu}}
BITS=${BITS:-16 32 48 64}
PYTHON=${PYTHON:-python}

# the seed of the reference recipe for each bit length (16: 0, 32: 2000, 48: 200, 64: 2000)
reference_seed() {
  case $1 in
    16) echo 0 ;;
    32) echo 2000 ;;
    48) echo 200 ;;
    64) echo 2000 ;;
    *) echo "error: BITS: no reference seed for $1 bits (use 16, 32, 48 or 64)" >&2; return 1 ;;
  esac
}

# run a command, or with DRY_RUN=1 only print it; either way it is echoed first
run() {
  printf '+'
  printf ' %s' "$@"
  printf '\n'
  if [ "${DRY_RUN:-0}" = 1 ]; then
    return 0
  fi
  "$@"
}

# The test scripts evaluate only what their train script finished: a training run writes
# <OUTPUT_DIR>/finished_<K>.txt when it ends, and a later run removes it when it saves weights there.
# Otherwise one error line (what is there, and what to do) and return 1; DRY_RUN=1 checks nothing.
check_finished() {
  if [ "${DRY_RUN:-0}" = 1 ] || [ -f "$OUTPUT_DIR/finished_$1.txt" ]; then
    return 0
  fi
  if [ -f "$OUTPUT_DIR/model_last_$1.pdparams" ] || [ -f "$OUTPUT_DIR/model_best_$1.pdparams" ] ||
    [ -f "$OUTPUT_DIR/model_best_$1.safetensors" ]; then
    echo "error: $OUTPUT_DIR: the $1-bit training there did not finish (no finished_$1.txt, which a run writes when it ends); go on with BITS=$1 sh scripts/train_$SCRIPT_KIND.sh <same arguments> --resume $OUTPUT_DIR/model_last_$1, or evaluate those weights anyway: python main_single_gpu.py --eval --bit $1 --pretrained $OUTPUT_DIR/model_best_$1 --dataset $DATASET --data-path $DATA_PATH" >&2
  else
    echo "error: $OUTPUT_DIR: no $1-bit model; train it first with sh scripts/train_$SCRIPT_KIND.sh (same DATASET, DATA_PATH and OUTPUT_DIR)" >&2
  fi
  return 1
}

is_count() {
  case $1 in
    '' | *[!0-9]* | 0*) return 1 ;;
  esac
  return 0
}

# How paddle.distributed.launch starts the processes, from what this PaddlePaddle build sees:
# sets DEVICE (cpu|gpu), NPROC and LAUNCH (the launcher's flags, split on spaces when used).
pick_launcher() {
  CUDA_COUNT=$("$PYTHON" -c "import paddle; print(paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0)" 2>/dev/null | tail -n 1)
  if is_count "${CUDA_COUNT:-0}"; then
    NPROC=${NPROC:-$CUDA_COUNT}
    DEVICE=gpu
  else
    NPROC=${NPROC:-2}
    DEVICE=cpu
  fi
  if [ "$DEVICE" = cpu ] && [ -n "${GPUS:-}" ]; then
    # paddle's own launcher would stop with "ValueError: substring not found" on --gpus here
    echo "error: GPUS=$GPUS: this PaddlePaddle build is CPU-only or sees no GPU (install paddlepaddle-gpu for your CUDA version, https://www.paddlepaddle.org.cn/install; or unset GPUS to run NPROC CPU processes)" >&2
    return 2
  fi
  if ! is_count "$NPROC"; then
    echo "error: NPROC must be a positive number of processes, got '$NPROC'" >&2
    return 2
  fi
  if [ "$DEVICE" = gpu ]; then
    if [ -z "${GPUS:-}" ]; then
      GPUS=0
      i=1
      while [ "$i" -lt "$NPROC" ]; do
        GPUS="$GPUS,$i"
        i=$((i + 1))
      done
    fi
    LAUNCH="--gpus $GPUS"
  else
    LAUNCH="--nproc_per_node $NPROC"
  fi
  if [ -n "${IPS:-}" ]; then
    LAUNCH="--ips $IPS $LAUNCH"
  fi
}
