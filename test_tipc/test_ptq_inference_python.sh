#!/usr/bin/env bash
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"  # started with sh (dash on Debian): rerun under bash
# TIPC low-precision chains: train -> export -> (PTQ | QAT) -> Paddle Inference in int8 / bf16 -> compare_results.
#
#   bash test_tipc/test_ptq_inference_python.sh test_tipc/configs/hashnet_16/train_ptq_infer_python.txt lite_train_lite_infer
#   bash test_tipc/test_ptq_inference_python.sh test_tipc/configs/hashnet_16/train_pact_infer_python.txt lite_train_lite_infer
#
# MODE: lite_train_lite_infer | lite_train_whole_infer | whole_infer | whole_train_whole_infer. One CPU
# process trains (norm_train; whole_infer: the train_model weights instead), export_model.py writes the
# fp32 export, then by the config:
#   trainer:pact_train   pact_train (quantize.py --method qat) fine-tunes the weights and writes the int8 model
#   quant_export         (not null) post-training quantisation (quantize.py --method ptq) writes the int8 model
# and deploy/inference_python/infer.py runs every --precision x --cpu_threads x --batch_size (oneDNN on:
# int8 and bf16 run through oneDNN only): int8 on the int8 model, fp32/bf16 on the fp32 export. bf16 runs
# only where /proc/cpuinfo has avx512_bf16 or amx_bf16 (else `Skipped - ...`). Each run is compared
# (compare_results, with the config's Hamming budget) with the fp32 codes stored for the model under
# test_tipc/results/<model_name>/<MODE>_gpus_-1_fp32.txt (the train_infer_python chain's model).
#
# auto_cast bf16 (train_amp_infer_python.txt) trains with -o train.amp=bf16 (the convolutions in bf16
# through oneDNN; CPUs with avx512_bf16/amx_bf16 only) and compares with that model's stored codes.
#
# Output: as test_train_inference_python.sh (results_python.log: one Run successfully/failed line per
# step). Environment: TIPC_OUTPUT_DIR=DIR writes the logs and models there.
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common_func.sh"
func_tipc_args "$0" "$@"  # FILENAME (absolute), MODE; TIPC_OUTPUT_DIR absolute; cd to the repository root
START_SECONDS=${SECONDS}

function cfg() { func_config_value "${FILENAME}" "$1" "$2" "${MODE}"; }
function cfg_set() { func_set_params "$2" "$(cfg "$1" "$2")"; }
function key_of() { func_parser_key "$(func_config_line "${FILENAME}" "$1" "$2")"; }

model_name=$(cfg train_params model_name)
python=$(cfg train_params python)
auto_cast=$(cfg train_params auto_cast)  # null (fp32) | bf16 (CPU: bf16 convolutions) -> -o train.amp=...
[[ ${auto_cast} == "null" ]] && auto_cast=""
train_args="--device=cpu $(cfg_set train_params --epoch) $(cfg_set train_params --batch-size) $(cfg_set train_params --seed)"
[[ -n ${auto_cast} ]] && train_args="${train_args} -o train.amp=${auto_cast}"
for key in -c --dataset --data-path --list-dir --pretrained-backbone -o; do
    train_args="${train_args} $(cfg_set train_params "${key}")"
done
save_model_key=$(key_of train_params --output-dir)
data_path=$(cfg train_params --data-path)
dataset=$(cfg train_params --dataset)
train_model_name=$(cfg train_params train_model_name)
trainer=$(cfg train_params trainer)
norm_train=$(cfg train_params norm_train)
pact_train=$(cfg train_params pact_train)
save_infer_key=$(key_of infer_params --save-inference-dir)
export_weight_key=$(key_of infer_params --pretrained)
norm_export=$(cfg infer_params norm_export)
quant_export=$(cfg infer_params quant_export)
train_model=$(cfg infer_params train_model)
inference_py=$(cfg infer_params inference)
cpu_threads_key=$(key_of infer_params --cpu_threads)
cpu_threads_list=$(cfg infer_params --cpu_threads)
batch_size_key=$(key_of infer_params --batch_size)
batch_size_list=$(cfg infer_params --batch_size)
precision_key=$(key_of infer_params --precision)
precision_list=$(cfg infer_params --precision)
model_dir_key=$(key_of infer_params --model_dir)
img_path_key=$(key_of infer_params --img_path)
img_path=$(cfg infer_params --img_path)
set_benchmark=$(cfg_set infer_params --benchmark)
compare_py=$(cfg infer_params compare_results)

for required in model_name python norm_train norm_export inference_py img_path precision_list; do
    if [[ -z ${!required} || ${!required} == "null" ]]; then
        echo "error: ${FILENAME}: no value for ${required} in mode ${MODE}" >&2
        exit 2
    fi
done
if [[ ${trainer} == "pact_train" && ( -z ${pact_train} || ${pact_train} == "null" ) ]]; then
    echo "error: ${FILENAME}: trainer is pact_train but pact_train is null" >&2
    exit 2
fi

LOG_PATH=${TIPC_OUTPUT_DIR:-./test_tipc/output/${model_name}/${MODE}}
mkdir -p "${LOG_PATH}"
status_log="${LOG_PATH}/results_python.log"
: >"${status_log}"
echo "TIPC ${model_name} ${MODE}: config ${FILENAME}, logs in ${LOG_PATH}"
if [[ ${MODE} != whole_* && ${dataset} == "lite" && ! -f ${data_path%/}/database.txt ]] \
    || [[ ${MODE} == whole_* && ! -e ${img_path} ]]; then
    bash test_tipc/prepare.sh "${FILENAME}" lite_train_lite_infer >/dev/null || exit 1
fi


if [[ ${auto_cast} == "bf16" && ${MODE} != "whole_infer" ]] && ! grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo 2>/dev/null; then
    status_skip "training with auto_cast bf16: this CPU has neither avx512_bf16 nor amx_bf16" "${status_log}" "${model_name}"
    echo "TIPC ${model_name} ${MODE}: nothing ran (auto_cast bf16 needs a bf16 CPU)"
    exit 1
fi
save_dir="${LOG_PATH}/${trainer}_gpus_-1"
fp32_dir="${save_dir}/inference"
int8_dir="${save_dir}/inference_int8"
rm -rf "${save_dir}"
mkdir -p "${save_dir}"
if [[ ${MODE} == "whole_infer" ]]; then
    weights=${train_model}
else
    weights="${save_dir}/${train_model_name}"
    run_step "${LOG_PATH}/train.log" "${python} ${norm_train} ${train_args} $(func_set_params "${save_model_key}" "${save_dir}")" \
        || { echo "TIPC ${model_name} ${MODE}: training failed"; exit 1; }
fi
weights_set=$(func_set_params "${export_weight_key}" "${weights}")
run_step "${LOG_PATH}/export.log" "${python} ${norm_export} ${weights_set} $(func_set_params "${save_infer_key}" "${fp32_dir}")"
quant_cmd=""
if [[ ${trainer} == "pact_train" ]]; then
    quant_cmd=${pact_train}
elif [[ -n ${quant_export} && ${quant_export} != "null" ]]; then
    quant_cmd=${quant_export}
fi
if [[ -n ${quant_cmd} ]]; then
    run_step "${LOG_PATH}/quant.log" "${python} ${quant_cmd} ${weights_set} $(func_set_params "${save_infer_key}" "${int8_dir}")"
fi

# the fp32 codes of the model this chain trains: the train_infer_python chain's (test_tipc/results/),
# or, for a bf16-trained model (auto_cast bf16), its own (..._amp_bf16_fp32.txt)
expected="./test_tipc/results/${model_name}/${MODE}_gpus_-1${auto_cast:+_amp_${auto_cast}}_fp32.txt"
IFS="|" read -r -a precisions <<<"${precision_list}"
IFS="|" read -r -a threadss <<<"${cpu_threads_list}"
IFS="|" read -r -a bss <<<"${batch_size_list}"
for precision in "${precisions[@]}"; do
    model_dir=${fp32_dir}
    [[ ${precision} == "int8" ]] && model_dir=${int8_dir}
    if [[ ${precision} == "bf16" ]] && ! grep -qwE "avx512_bf16|amx_bf16" /proc/cpuinfo 2>/dev/null; then
        status_skip "inference --precision bf16: this CPU has neither avx512_bf16 nor amx_bf16" "${status_log}" "${model_name}"
        continue
    fi
    budget=$(cfg infer_params "compare_${precision}")
    [[ ${budget} == "null" ]] && budget=""  # fp32: exact
    for threads in "${threadss[@]}"; do
        for bs in "${bss[@]}"; do
            log="${LOG_PATH}/python_infer_cpu_precision_${precision}_threads_${threads}_batchsize_${bs}.log"
            cmd="${python} ${inference_py} --use_gpu=False --use_mkldnn=True $(func_set_params "${precision_key}" "${precision}") \
$(func_set_params "${cpu_threads_key}" "${threads}") $(func_set_params "${batch_size_key}" "${bs}") \
$(func_set_params "${model_dir_key}" "${model_dir}") $(func_set_params "${img_path_key}" "${img_path}") ${set_benchmark}"
            run_step "${log}" "${cmd}" || continue
            if [[ -z ${compare_py} || ${compare_py} == "null" ]]; then
                continue
            elif [[ ! -f ${expected} ]]; then
                status_skip "compare_results: no expected codes ${expected} for this model" "${status_log}" "${model_name}"
                continue
            fi
            run_step "${log%.log}_compare.log" "${python} ${compare_py} --gt-file=${expected} --log-file=${log} \
--model-dir=${fp32_dir} ${budget}"
        done
    done
done

steps=$(grep -c "^Run " "${status_log}")
echo "TIPC ${model_name} ${MODE}: ${steps} steps, ${TIPC_FAILED} failed, $((SECONDS - START_SECONDS)) s; results in ${status_log}"
[[ ${TIPC_FAILED} -eq 0 && ${steps} -gt 0 ]] || exit 1
exit 0
