#!/usr/bin/env bash
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"  # started with sh (dash on Debian): rerun under bash
# TIPC: train -> eval -> export -> Paddle Inference, driven by a train_infer_python.txt config.
#
#   bash test_tipc/test_train_inference_python.sh test_tipc/configs/hashnet_16/train_infer_python.txt lite_train_lite_infer
#
# MODE: lite_train_lite_infer | lite_train_whole_infer | whole_infer | whole_train_whole_infer
#   (see test_tipc/README.md). For every gpu_list entry of the config:
#     -1        one CPU process                  python main_single_gpu.py --device=cpu ...
#     cpuN      N CPU processes (gloo)           python -m paddle.distributed.launch --nproc_per_node N main_multi_gpu.py --device=cpu ...
#     0         one GPU                          CUDA_VISIBLE_DEVICES=0 python main_single_gpu.py --device=gpu ...
#     0,1       several GPUs (NCCL)              python -m paddle.distributed.launch --gpus 0,1 main_multi_gpu.py --device=gpu ...
#     IPS;0,1   several machines                 python -m paddle.distributed.launch --ips IPS --gpus 0,1 main_multi_gpu.py ...
#   it trains, evaluates (main_single_gpu.py --eval), exports (export_model.py) and runs
#   deploy/inference_python/infer.py over every --use_gpu/--use_mkldnn/--cpu_threads/--batch_size
#   combination, each followed by test_tipc/compare_results.py against the model's expected codes
#   (test_tipc/results/, where they exist). GPU entries (and --use_gpu True) run only when this PaddlePaddle build has CUDA
#   and sees enough devices; otherwise they are reported as `Skipped - ...`, not as failures.
#
# Output: test_tipc/output/<model_name>/<MODE>/ : one log per step and per inference combination,
# and results_python.log with one `Run successfully with command - ...` or
# `Run failed with command - ...` line per step. Exit code: 0 when every step succeeded, else 1.
#
# Environment:
#   TIPC_GPU_LIST="-1|cpu2"  use these gpu_list entries instead of the config's
#   TIPC_SKIP_MULTI=1        skip the multi-process entries (cpuN, 0,1, IPS;0,1)
#   TIPC_OUTPUT_DIR=DIR      write the logs and weights there instead of test_tipc/output/<model>/<MODE>
#   TIPC_DRY_RUN=1           print every step's command (and list it as `Dry run - ...` in results_python.log)
#                            without running it, as on a machine with 8 CUDA devices: the GPU and
#                            multi-machine entries' commands are checked by tests/test_tipc_fleet_amp.py
#   TIPC_WRITE_RESULTS=1     write the expected codes (test_tipc/results/) from this run's first inference
#                            run instead of comparing with them (every later run is compared)
set -u

source "$(dirname "${BASH_SOURCE[0]}")/common_func.sh"
func_tipc_args "$0" "$@"  # FILENAME (absolute), MODE; TIPC_OUTPUT_DIR absolute; cd to the repository root
START_SECONDS=${SECONDS}

function cfg() { func_config_value "${FILENAME}" "$1" "$2" "${MODE}"; }
function cfg_set() { func_set_params "$2" "$(cfg "$1" "$2")"; }

# ---- train_params
model_name=$(cfg train_params model_name)
python=$(cfg train_params python)
gpu_list=${TIPC_GPU_LIST:-$(cfg train_params gpu_list)}
device_list=$(cfg train_params --device)
auto_cast=$(cfg train_params auto_cast)  # null (fp32) | fp16: mixed-precision training, -o train.amp=fp16
set_autocast=""
[[ -n ${auto_cast} && ${auto_cast} != "null" ]] && set_autocast="-o train.amp=${auto_cast}"
set_epoch=$(cfg_set train_params --epoch)
save_model_key=$(func_parser_key "$(func_config_line "${FILENAME}" train_params --output-dir)")
set_batchsize=$(cfg_set train_params --batch-size)
set_pretrain=$(cfg_set train_params --pretrained)
train_model_name=$(cfg train_params train_model_name)
set_seed=$(cfg_set train_params --seed)
data_params=""
for key in -c --dataset --data-path --list-dir --pretrained-backbone -o; do
    data_params="${data_params} $(cfg_set train_params "${key}")"
done
data_path=$(cfg train_params --data-path)
dataset=$(cfg train_params --dataset)
trainer=$(cfg train_params trainer)
norm_train=$(cfg train_params norm_train)
multi_train=$(cfg train_params multi_train)
# ---- eval_params
eval_py=$(cfg eval_params eval)
# ---- infer_params
save_infer_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --save-inference-dir)")
export_weight_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --pretrained)")
norm_export=$(cfg infer_params norm_export)
train_model=$(cfg infer_params train_model)
infer_export=$(cfg infer_params infer_export)
inference_py=$(cfg infer_params inference)
use_gpu_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --use_gpu)")
use_gpu_list=$(cfg infer_params --use_gpu)
use_mkldnn_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --use_mkldnn)")
use_mkldnn_list=$(cfg infer_params --use_mkldnn)
cpu_threads_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --cpu_threads)")
cpu_threads_list=$(cfg infer_params --cpu_threads)
batch_size_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --batch_size)")
batch_size_list=$(cfg infer_params --batch_size)
model_dir_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --model_dir)")
img_path_key=$(func_parser_key "$(func_config_line "${FILENAME}" infer_params --img_path)")
img_path=$(cfg infer_params --img_path)
set_benchmark=$(cfg_set infer_params --benchmark)
compare_py=$(cfg infer_params compare_results)

for required in model_name python gpu_list norm_train eval_py norm_export inference_py img_path; do
    if [[ -z ${!required} || ${!required} == "null" ]]; then
        echo "error: ${FILENAME}: no value for ${required} in mode ${MODE}" >&2
        exit 2
    fi
done

LOG_PATH=${TIPC_OUTPUT_DIR:-./test_tipc/output/${model_name}/${MODE}}
mkdir -p "${LOG_PATH}"
status_log="${LOG_PATH}/results_python.log"
: >"${status_log}"
CUDA_COUNT=$(func_cuda_device_count "${python}")
[[ ${CUDA_COUNT} =~ ^[0-9]+$ ]] || CUDA_COUNT=0
if [[ ${TIPC_DRY_RUN:-0} == 1 ]]; then  # print the commands of every entry, as on a machine with 8 GPUs
    CUDA_COUNT=8
fi
echo "TIPC ${model_name} ${MODE}: config ${FILENAME}, logs in ${LOG_PATH}, CUDA devices: ${CUDA_COUNT}"

# The lite data set is generated locally (prepare.sh); do it here when it is missing.
if [[ ${MODE} != whole_* && ${dataset} == "lite" && ! -f ${data_path%/}/database.txt ]]; then
    bash test_tipc/prepare.sh "${FILENAME}" "${MODE}" || exit 1
fi
if [[ ${MODE} == whole_* && ! -e ${img_path} ]]; then
    bash test_tipc/prepare.sh "${FILENAME}" lite_train_lite_infer >/dev/null || exit 1
fi

# The expected codes of a trained model: test_tipc/results/<model>/<MODE>_gpus_<TAG>_<precision>.txt
# (test_tipc/README.md). Prints the path when the config has a compare_results command and the file
# exists (or TIPC_WRITE_RESULTS=1 is to write it); else records why nothing is compared.
function func_expected_codes() {  # func_expected_codes TAG PRECISION
    local gt="./test_tipc/results/${model_name}/${MODE}_gpus_${1:-none}_$2.txt"
    if [[ -z ${compare_py} || ${compare_py} == "null" ]]; then
        return 1
    elif [[ ! -f ${gt} && ${TIPC_WRITE_RESULTS:-0} != 1 ]]; then
        status_skip "compare_results: no expected codes ${gt} for this model" "${status_log}" "${model_name}" >&2
        return 1
    fi
    echo "${gt}"
}

# compare_results as a step of its own after an inference run; with TIPC_WRITE_RESULTS=1 the first
# run of each expected file writes it (the later runs are compared with it).
function func_compare() {  # func_compare INFER_LOG EXPECTED MODEL_DIR
    local log=$1 gt=$2 model_dir=$3 cpu
    [[ -n ${gt} ]] || return 0
    if [[ ${TIPC_WRITE_RESULTS:-0} == 1 && " ${TIPC_WRITTEN:-} " != *" ${gt} "* ]]; then
        TIPC_WRITTEN="${TIPC_WRITTEN:-} ${gt}"
        cpu=$(grep -m 1 "^model name" /proc/cpuinfo 2>/dev/null | cut -d: -f2- | tr -d "'" | xargs)
        run_step "${log%.log}_write_results.log" "${python} ${compare_py} --write --gt-file=${gt} --log-file=${log} \
--model-dir=${model_dir} --note='${model_name} ${MODE}, trained by gpu_list entry ${tag}; \
TIPC_WRITE_RESULTS=1 bash test_tipc/test_train_inference_python.sh, CPU: ${cpu:-unknown}'"
        return
    fi
    run_step "${log%.log}_compare.log" "${python} ${compare_py} --gt-file=${gt} --log-file=${log} --model-dir=${model_dir}"
}

function func_inference() {  # func_inference MODEL_DIR TAG
    local model_dir=$1 tag=$2 use_gpu use_mkldnn threads bs log cmd expected
    local -a gpus mkldnns threadss bss
    expected=$(func_expected_codes "${tag}" fp32)
    IFS="|" read -r -a gpus <<<"${use_gpu_list}"
    IFS="|" read -r -a mkldnns <<<"${use_mkldnn_list}"
    IFS="|" read -r -a threadss <<<"${cpu_threads_list}"
    IFS="|" read -r -a bss <<<"${batch_size_list}"
    [[ ${#gpus[@]} -eq 0 ]] && gpus=(False)
    for use_gpu in "${gpus[@]}"; do
        if [[ ${use_gpu} == "True" || ${use_gpu} == "true" ]]; then
            if [[ ${CUDA_COUNT} -lt 1 ]]; then
                status_skip "inference ${use_gpu_key}=True: this PaddlePaddle build has no CUDA device" "${status_log}" "${model_name}"
                continue
            fi
            for bs in "${bss[@]}"; do
                log="${LOG_PATH}/python_infer_gpu${tag:+_gpus_${tag}}_batchsize_${bs}.log"
                cmd="CUDA_VISIBLE_DEVICES=0 ${python} ${inference_py} $(func_set_params "${use_gpu_key}" True) \
$(func_set_params "${batch_size_key}" "${bs}") $(func_set_params "${model_dir_key}" "${model_dir}") \
$(func_set_params "${img_path_key}" "${img_path}") ${set_benchmark}"
                run_step "${log}" "${cmd}" && func_compare "${log}" "${expected}" "${model_dir}"
            done
            continue
        fi
        for use_mkldnn in "${mkldnns[@]}"; do
            for threads in "${threadss[@]}"; do
                for bs in "${bss[@]}"; do
                    log="${LOG_PATH}/python_infer_cpu${tag:+_gpus_${tag}}_usemkldnn_${use_mkldnn}_threads_${threads}_batchsize_${bs}.log"
                    cmd="${python} ${inference_py} $(func_set_params "${use_gpu_key}" False) \
$(func_set_params "${use_mkldnn_key}" "${use_mkldnn}") $(func_set_params "${cpu_threads_key}" "${threads}") \
$(func_set_params "${batch_size_key}" "${bs}") $(func_set_params "${model_dir_key}" "${model_dir}") \
$(func_set_params "${img_path_key}" "${img_path}") ${set_benchmark}"
                    run_step "${log}" "${cmd}" && func_compare "${log}" "${expected}" "${model_dir}"
                done
            done
        done
    done
}

function func_export_and_infer() {  # func_export_and_infer EXPORT_PY WEIGHTS MODEL_DIR LOG TAG SKIP_REASON
    local export_py=$1 weights=$2 model_dir=$3 log=$4 tag=$5 skip_reason=$6 cmd
    cmd="${python} ${export_py} $(func_set_params "${export_weight_key}" "${weights}") \
$(func_set_params "${save_infer_key}" "${model_dir}")"
    if run_step "${log}" "${cmd}"; then
        func_inference "${model_dir}" "${tag}"
    else
        status_skip "${skip_reason}" "${status_log}" "${model_name}"
    fi
}

if [[ ${MODE} == "whole_infer" ]]; then
    # No training: export the trained weights named by train_model, then run inference.
    if [[ ! -f ${train_model}.pdparams ]]; then
        echo "note: ${train_model}.pdparams not found; see: bash test_tipc/prepare.sh ${FILENAME} whole_infer"
    fi
    func_export_and_infer "${infer_export}" "${train_model}" "${LOG_PATH}/whole_infer_model" "${LOG_PATH}/export.log" "" \
        "inference: the export failed"
else
    IFS="|" read -r -a gpus <<<"${gpu_list}"
    IFS="|" read -r -a devices <<<"${device_list}"
    for index in "${!gpus[@]}"; do
        gpu=${gpus[$index]}
        tag=${gpu//[,;]/_}
        ips=""
        ids=""
        if [[ ${gpu} == "-1" ]]; then
            form=cpu1
        elif [[ ${gpu} =~ ^cpu([0-9]+)$ ]]; then
            form=cpuN
            nproc=${BASH_REMATCH[1]}
        elif [[ ${gpu} =~ ^[0-9]+$ ]]; then
            form=gpu1
            ids=${gpu}
        elif [[ ${gpu} =~ ^[0-9]+(,[0-9]+)+$ ]]; then
            form=gpuN
            ids=${gpu}
        elif [[ ${gpu} =~ ^([^;]+)\;([0-9]+(,[0-9]+)*)$ ]]; then
            form=nodes
            ips=${BASH_REMATCH[1]}
            ids=${BASH_REMATCH[2]}
        else
            echo "error: gpu_list entry ${gpu} is not -1, cpuN, a GPU id list (0,1) or IPS;GPU_IDS" >&2
            TIPC_FAILED=$((TIPC_FAILED + 1))
            continue
        fi
        # the device: from the --device line (parallel to gpu_list) when it lines up, else from the form
        if [[ -z ${TIPC_GPU_LIST:-} && ${#devices[@]} -eq ${#gpus[@]} ]]; then
            device=${devices[$index]}
        elif [[ ${form} == cpu* ]]; then
            device=cpu
        else
            device=gpu
        fi
        # skip what this machine cannot run (reported, not failed)
        if [[ ${TIPC_SKIP_MULTI:-0} == 1 && ${form} != cpu1 && ${form} != gpu1 ]]; then
            status_skip "gpu_list entry ${gpu}: multi-process form skipped (TIPC_SKIP_MULTI=1)" "${status_log}" "${model_name}"
            continue
        fi
        if [[ -n ${ids} ]]; then
            max_id=$(tr ',' '\n' <<<"${ids}" | sort -n | tail -n 1)
            if [[ ${CUDA_COUNT} -le ${max_id} ]]; then
                status_skip "gpu_list entry ${gpu}: needs CUDA device ${max_id}, this PaddlePaddle build sees ${CUDA_COUNT}" "${status_log}" "${model_name}"
                continue
            fi
        fi
        if [[ ${form} == cpuN && ${CUDA_COUNT} -gt 0 ]]; then
            status_skip "gpu_list entry ${gpu}: N CPU processes need a CPU-only PaddlePaddle build (on a CUDA build the launcher hands out GPUs; the GPU entries cover data-parallel training there)" "${status_log}" "${model_name}"
            continue
        fi
        if [[ ${form} != cpu1 && ${form} != gpu1 && ( -z ${multi_train} || ${multi_train} == "null" ) ]]; then
            echo "error: ${FILENAME}: gpu_list entry ${gpu} needs multi_train" >&2
            TIPC_FAILED=$((TIPC_FAILED + 1))
            continue
        fi

        save_dir="${LOG_PATH}/${trainer}_gpus_${tag}"
        rm -rf "${save_dir}"
        set_save_model=$(func_set_params "${save_model_key}" "${save_dir}")
        set_device=$(func_set_params --device "${device}")
        train_args="${set_device} ${set_save_model} ${set_epoch} ${set_batchsize} ${set_seed} ${set_pretrain} ${set_autocast} ${data_params}"
        env_prefix=""
        case ${form} in
            cpu1) train_cmd="${python} ${norm_train} ${train_args}" ;;
            cpuN) train_cmd="${python} -m paddle.distributed.launch --nproc_per_node ${nproc} --log_dir ${save_dir}/launch_log ${multi_train} ${train_args}" ;;
            gpu1) env_prefix="CUDA_VISIBLE_DEVICES=${ids} "
                  train_cmd="${env_prefix}${python} ${norm_train} ${train_args}" ;;
            gpuN) train_cmd="${python} -m paddle.distributed.launch --gpus ${ids} --log_dir ${save_dir}/launch_log ${multi_train} ${train_args}" ;;
            nodes) train_cmd="${python} -m paddle.distributed.launch --ips ${ips} --gpus ${ids} --log_dir ${save_dir}/launch_log ${multi_train} ${train_args}" ;;
        esac
        [[ ${device} == gpu && -n ${ids} && -z ${env_prefix} ]] && env_prefix="CUDA_VISIBLE_DEVICES=${ids%%,*} "

        if ! run_step "${LOG_PATH}/train_gpus_${tag}.log" "${train_cmd}"; then
            status_skip "gpu_list entry ${gpu}: eval, export and inference, since the training failed" "${status_log}" "${model_name}"
            continue
        fi

        weights="${save_dir}/${train_model_name}"
        eval_cmd="${env_prefix}${python} ${eval_py} ${set_device} ${data_params} $(func_set_params --pretrained "${weights}") \
$(func_set_params "${save_model_key}" "${save_dir}")"
        run_step "${LOG_PATH}/eval_gpus_${tag}.log" "${eval_cmd}"

        func_export_and_infer "${norm_export}" "${weights}" "${save_dir}/inference" "${LOG_PATH}/export_gpus_${tag}.log" \
            "${tag}" "gpu_list entry ${gpu}: inference, since the export failed"
    done
fi

steps=$(grep -c "^Run \|^Dry run " "${status_log}")
echo "TIPC ${model_name} ${MODE}: ${steps} steps, ${TIPC_FAILED} failed, $((SECONDS - START_SECONDS)) s; results in ${status_log}"
if [[ ${steps} -eq 0 ]]; then
    echo "error: no step ran (every gpu_list entry was skipped)" >&2
    exit 1
fi
[[ ${TIPC_FAILED} -eq 0 ]] || exit 1
exit 0
