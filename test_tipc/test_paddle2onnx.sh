#!/usr/bin/env bash
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"  # started with sh (dash on Debian): rerun under bash
# TIPC paddle2onnx chain: (train ->) export + paddle2onnx -> onnxruntime, driven by a
# paddle2onnx_infer_python.txt config (PaddleClas's test_tipc/test_paddle2onnx.sh).
#
#   bash test_tipc/test_paddle2onnx.sh test_tipc/configs/hashnet_64/paddle2onnx_infer_python.txt lite_train_lite_infer
#
# MODE: lite_train_lite_infer | lite_train_whole_infer: trains the one-process CPU form of the
#   config's train_config (the same command as test_train_inference_python.sh's gpu_list entry -1,
#   so the same model); whole_infer: your trained weights (train_model). Then:
#     export      export_model.py --format onnx: inference_<K>.json/.pdiparams and inference_<K>.onnx
#     reference   Paddle Inference (deploy/inference_python/infer.py) on the images; its codes are the
#                 reference the onnxruntime runs must equal (compare_results --write)
#     onnxruntime deploy/onnxruntime_python/infer.py for every --cpu_threads x --batch_size, each
#                 followed by compare_results against Paddle Inference's codes and, where they exist,
#                 the stored expected codes (test_tipc/results/<model>/<MODE>_gpus_-1_fp32.txt)
# Output: test_tipc/output/<model_name>/paddle2onnx/<MODE>/ (or TIPC_OUTPUT_DIR): one log per step
# and results_paddle2onnx.log with one `Run successfully with command - ...` or `Run failed ...`
# line per step. Exit code: 0 when every step succeeded, else 1. Needs requirements-onnx.txt.
# TIPC_DRY_RUN=1 prints the commands without running them (as test_train_inference_python.sh).
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common_func.sh"
func_tipc_args "$0" "$@"  # FILENAME (absolute), MODE; TIPC_OUTPUT_DIR absolute; cd to the repository root
START_SECONDS=${SECONDS}

function cfg() { func_config_value "${FILENAME}" paddle2onnx_params "$1" "${MODE}"; }
function key() { func_parser_key "$(func_config_line "${FILENAME}" paddle2onnx_params "$1")"; }

model_name=$(cfg model_name)
python=$(cfg python)
train_config=$(cfg train_config)
train_model=$(cfg train_model)
onnx_export=$(cfg 2onnx)
export_weight_key=$(key --pretrained)
save_infer_key=$(key --save-inference-dir)
reference_py=$(cfg reference_inference)
inference_py=$(cfg inference)
cpu_threads_key=$(key --cpu_threads)
cpu_threads_list=$(cfg --cpu_threads)
batch_size_key=$(key --batch_size)
batch_size_list=$(cfg --batch_size)
model_dir_key=$(key --model_dir)
img_path_key=$(key --img_path)
img_path=$(cfg --img_path)
set_benchmark=$(func_set_params "$(key --benchmark)" "$(cfg --benchmark)")
compare_py=$(cfg compare_results)

for required in model_name python train_model onnx_export reference_py inference_py img_path compare_py; do
    if [[ -z ${!required} || ${!required} == "null" ]]; then
        echo "error: ${FILENAME}: no value for ${required} in mode ${MODE}" >&2
        exit 2
    fi
done
if [[ ${train_model} == "train" && ! -f ${train_config} ]]; then
    echo "error: ${FILENAME}: train_config ${train_config} not found" >&2
    exit 2
fi

LOG_PATH=${TIPC_OUTPUT_DIR:-./test_tipc/output/${model_name}/paddle2onnx/${MODE}}
mkdir -p "${LOG_PATH}"
status_log="${LOG_PATH}/results_paddle2onnx.log"
: >"${status_log}"
echo "TIPC paddle2onnx ${model_name} ${MODE}: config ${FILENAME}, logs in ${LOG_PATH}"

if [[ ! -e ${img_path} ]]; then  # the lite images (also those of whole_infer) are generated locally
    bash test_tipc/prepare.sh "${train_config:-${FILENAME}}" lite_train_lite_infer >/dev/null || exit 1
fi

function finish() {
    local steps
    steps=$(grep -c "^Run \|^Dry run " "${status_log}")
    echo "TIPC paddle2onnx ${model_name} ${MODE}: ${steps} steps, ${TIPC_FAILED} failed, $((SECONDS - START_SECONDS)) s; results in ${status_log}"
    [[ ${TIPC_FAILED} -eq 0 && ${steps} -gt 0 ]] || exit 1
    exit 0
}

# ---- the weights: trained here (the one-process CPU form of the train config), or given
if [[ ${train_model} == "train" ]]; then
    function tcfg() { func_config_value "${train_config}" train_params "$1" "${MODE}"; }
    function tset() { func_set_params "$1" "$(tcfg "$1")"; }
    train_model_name=$(tcfg train_model_name)
    save_dir="${LOG_PATH}/norm_train_gpus_-1"
    rm -rf "${save_dir}"
    train_args="--device=cpu --output-dir=${save_dir} $(tset --epoch) $(tset --batch-size) $(tset --seed) $(tset --pretrained)"
    for k in -c --dataset --data-path --list-dir --pretrained-backbone -o; do
        train_args="${train_args} $(tset "${k}")"
    done
    if [[ $(tcfg --dataset) == "lite" && ! -f $(tcfg --data-path)/database.txt ]]; then
        bash test_tipc/prepare.sh "${train_config}" "${MODE}" >/dev/null || exit 1
    fi
    run_step "${LOG_PATH}/train.log" "${python} $(tcfg norm_train) ${train_args}" || finish
    weights="${save_dir}/${train_model_name}"
    expected="./test_tipc/results/${model_name}/${MODE}_gpus_-1_fp32.txt"
else
    weights=${train_model}
    [[ -f ${weights}.pdparams ]] || echo "note: ${weights}.pdparams not found; see: bash test_tipc/prepare.sh ${train_config:-CONFIG} whole_infer"
    expected=""
fi
if [[ -n ${expected} && ! -f ${expected} ]]; then
    status_skip "compare_results: no expected codes ${expected} for this model" "${status_log}" "${model_name}"
    expected=""
fi

# ---- export (Paddle + ONNX), and Paddle Inference's codes as the reference
model_dir="${LOG_PATH}/onnx_model"
run_step "${LOG_PATH}/export.log" "${python} ${onnx_export} $(func_set_params "${export_weight_key}" "${weights}") \
$(func_set_params "${save_infer_key}" "${model_dir}")" || finish
reference_log="${LOG_PATH}/paddle_inference_reference.log"
reference_codes="${LOG_PATH}/paddle_inference_codes.txt"
run_step "${reference_log}" "${python} ${reference_py} $(func_set_params "${model_dir_key}" "${model_dir}") \
$(func_set_params "${img_path_key}" "${img_path}")" || finish
run_step "${LOG_PATH}/paddle_inference_codes.log" "${python} ${compare_py} --write --gt-file=${reference_codes} \
--log-file=${reference_log} --model-dir=${model_dir} --note='Paddle Inference codes of ${model_dir}'" || finish

# ---- onnxruntime over every --cpu_threads x --batch_size, each compared
IFS="|" read -r -a threadss <<<"${cpu_threads_list}"
IFS="|" read -r -a bss <<<"${batch_size_list}"
for threads in "${threadss[@]}"; do
    for bs in "${bss[@]}"; do
        log="${LOG_PATH}/onnxruntime_infer_cpu_threads_${threads}_batchsize_${bs}.log"
        cmd="${python} ${inference_py} $(func_set_params "${cpu_threads_key}" "${threads}") \
$(func_set_params "${batch_size_key}" "${bs}") $(func_set_params "${model_dir_key}" "${model_dir}") \
$(func_set_params "${img_path_key}" "${img_path}") ${set_benchmark}"
        run_step "${log}" "${cmd}" || continue
        run_step "${log%.log}_vs_paddle.log" "${python} ${compare_py} --gt-file=${reference_codes} --log-file=${log} \
--model-dir=${model_dir}"
        if [[ -n ${expected} ]]; then
            run_step "${log%.log}_compare.log" "${python} ${compare_py} --gt-file=${expected} --log-file=${log} \
--model-dir=${model_dir}"
        fi
    done
done
finish
