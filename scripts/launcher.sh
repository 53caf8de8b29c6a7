# Sourced by train_multi_gpu.sh and test_multi_gpu.sh: the data set, paths and how to start the
# processes. Sets DATASET DATA_PATH OUTPUT_DIR NPROC DEVICE and the LAUNCH array from the
# arguments [DATASET] [DATA_PATH] [NPROC] or the environment (DATASET, DATA_PATH, NPROC, GPUS, IPS, OUTPUT_DIR).
DATASET=${1:-${DATASET:-lite}}
DATA_PATH=${2:-${DATA_PATH:-./datasets/${DATASET}/}}
OUTPUT_DIR=${OUTPUT_DIR:-./output/${DATASET}}
CUDA_COUNT=$(python -c "import paddle; print(paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0)" 2>/dev/null | tail -n 1 || true)
if [[ ${CUDA_COUNT:-0} =~ ^[1-9][0-9]*$ ]]; then
  NPROC=${3:-${NPROC:-${CUDA_COUNT}}}
  GPUS=${GPUS:-$(seq -s, 0 $((NPROC - 1)))}
  LAUNCH=(--gpus "${GPUS}")
  DEVICE=gpu
else
  NPROC=${3:-${NPROC:-2}}
  LAUNCH=(--nproc_per_node "${NPROC}")
  DEVICE=cpu
fi
if [[ -n ${IPS:-} ]]; then
  LAUNCH=(--ips "${IPS}" "${LAUNCH[@]}")
fi
