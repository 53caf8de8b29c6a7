#!/usr/bin/env bash
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"  # started with sh (dash on Debian): rerun under bash
# Helpers shared by the TIPC scripts (sourced, not run).
#
# A TIPC config (test_tipc/configs/<model>/train_infer_python.txt) is a list of `key:value` lines
# in sections (`=====...train_params=====`, `eval_params`, `infer_params`; `paddle2onnx_params` in
# paddle2onnx_infer_python.txt) closed by `##`.
# A value is either plain (`--seed:0`), a `|` list that the scripts loop over (`--cpu_threads:1|2`),
# or per mode (`--epoch:lite_train_lite_infer=1|whole_train_whole_infer=150`). `null` means unset.

TIPC_MODES="lite_train_lite_infer lite_train_whole_infer whole_infer whole_train_whole_infer"

# The two arguments of every TIPC script, CONFIG MODE: sets FILENAME (the config, made absolute)
# and MODE. A missing argument or config, or an unknown MODE: one message and exit 2. Then makes
# TIPC_OUTPUT_DIR (when set) absolute, relative to where the script was started, and changes to
# the repository root, where every script runs its steps.
#   func_tipc_args SCRIPT "$@"
function func_tipc_args() {
    local script=$1
    shift
    if [[ $# -lt 2 ]]; then
        echo "usage: bash ${script} CONFIG MODE   (MODE: ${TIPC_MODES// / | })" >&2
        exit 2
    fi
    FILENAME=$1
    MODE=$2
    if [[ ! -f ${FILENAME} ]]; then
        echo "error: config not found: ${FILENAME}" >&2
        exit 2
    fi
    FILENAME=$(cd "$(dirname "${FILENAME}")" && pwd)/$(basename "${FILENAME}")
    case " ${TIPC_MODES} " in
        *" ${MODE} "*) ;;
        *) echo "error: unknown MODE ${MODE} (one of: ${TIPC_MODES})" >&2; exit 2 ;;
    esac
    if [[ -n ${TIPC_OUTPUT_DIR:-} && ${TIPC_OUTPUT_DIR} != /* ]]; then
        TIPC_OUTPUT_DIR="${PWD}/${TIPC_OUTPUT_DIR}"
    fi
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
}

# key of a `key:value` line (text before the first ':')
function func_parser_key() {
    local line=$1
    echo "${line%%:*}"
}

# value of a `key:value` line (text after the first ':'; values may contain ':' themselves)
function func_parser_value() {
    local line=$1
    if [[ ${line} != *:* ]]; then
        echo ""
        return
    fi
    echo "${line#*:}"
}

# true when a value is written per mode: `<mode>=...|<mode>=...`
function func_is_mode_value() {
    local value=$1 mode
    for mode in ${TIPC_MODES}; do
        [[ ${value} == "${mode}="* ]] && return 0
    done
    return 1
}

# the value of a `key:value` line for MODE: the part after `MODE=` of a per-mode value (empty when
# MODE is not listed), or the plain value unchanged. Values may contain '=' (e.g. -o a.b=1).
function func_parser_params() {
    local line=$1 mode=$2 value part
    value=$(func_parser_value "${line}")
    if ! func_is_mode_value "${value}"; then
        echo "${value}"
        return
    fi
    local parts
    IFS="|" read -r -a parts <<<"${value}"
    for part in "${parts[@]}"; do
        if [[ ${part%%=*} == "${mode}" ]]; then
            echo "${part#*=}"
            return
        fi
    done
    echo ""
}

# `key value` for the command line; nothing when the key or value is null/empty.
# --long keys give `--key=value`; `-o` with a space-separated list gives `-o a=1 -o b=2`;
# other keys (`-c`) give `key value`.
function func_set_params() {
    local key=$1 value=$2 item out="" items
    if [[ -z ${key} || ${key} == "null" || -z ${value} || ${value} == "null" ]]; then
        echo ""
        return
    fi
    if [[ ${key} == "-o" ]]; then
        IFS=$' \t' read -r -a items <<<"${value}"
        for item in "${items[@]}"; do
            out="${out} -o ${item}"
        done
        echo "${out# }"
    elif [[ ${key} == --* ]]; then
        echo "${key}=${value}"
    else
        echo "${key} ${value}"
    fi
}

# the line of KEY inside SECTION (train_params, eval_params or infer_params) of config FILE;
# empty when absent. Keys may repeat across sections (e.g. --pretrained), not within one.
function func_config_line() {
    local file=$1 section=$2 key=$3 line current=""
    while IFS= read -r line || [[ -n ${line} ]]; do
        line=${line%$'\r'}
        if [[ ${line} =~ ^=+([a-z0-9_]+)=+$ ]]; then
            current=${BASH_REMATCH[1]}
            continue
        fi
        if [[ ${current} == "${section}" && ${line} == "${key}:"* ]]; then
            echo "${line}"
            return
        fi
    done <"${file}"
    echo ""
}

# value of KEY in SECTION for MODE (see func_parser_params)
function func_config_value() {
    local file=$1 section=$2 key=$3 mode=$4
    func_parser_params "$(func_config_line "${file}" "${section}" "${key}")" "${mode}"
}

# Record the result of one step: appends `Run successfully with command - MODEL - CMD - LOG` or
# `Run failed with command - ...` to RESULTS_LOG (and the terminal). Counts failures in
# TIPC_FAILED so the caller can exit non-zero.
#   status_check EXIT_CODE COMMAND RESULTS_LOG [MODEL_NAME] [STEP_LOG]
TIPC_FAILED=${TIPC_FAILED:-0}
function status_check() {
    local last_status=$1 run_command=$2 run_log=$3 model_name=${4:-} log_path=${5:-} line
    run_command=$(echo "${run_command}" | tr -s ' ')
    if [[ ${last_status} -eq 0 ]]; then
        line="Run successfully with command - ${model_name} - ${run_command} - ${log_path}"
    else
        line="Run failed with command - ${model_name} - ${run_command} - ${log_path}"
        TIPC_FAILED=$((TIPC_FAILED + 1))
    fi
    echo "${line}" >>"${run_log}"
    if [[ -t 1 ]]; then
        echo -e "\033[33m ${line} \033[0m"
    else
        echo "${line}"
    fi
}

# Run one step: `+ CMD` on the terminal, CMD (with its env prefix) into LOG, its status line into
# ${status_log} (status_check). With TIPC_DRY_RUN=1 nothing runs: a `Dry run - ...` line instead.
# Uses the caller's status_log and model_name.
#   run_step LOG CMD
function run_step() {
    local log=$1 cmd rc
    cmd=$(echo "$2" | tr -s ' ')
    echo "+ ${cmd}"
    if [[ ${TIPC_DRY_RUN:-0} == 1 ]]; then  # not run, not a success: its own line
        echo "Dry run - ${model_name} - ${cmd} - ${log}" >>"${status_log}"
        return 0
    fi
    eval "${cmd}" >"${log}" 2>&1
    rc=$?
    if [[ ${rc} -ne 0 ]]; then
        echo "----- last lines of ${log} (exit code ${rc}):"
        tail -n 15 "${log}"
    fi
    status_check "${rc}" "${cmd}" "${status_log}" "${model_name}" "${log}"
    return "${rc}"
}

# A step that was not run, with the reason (never counted as a failure).
#   status_skip REASON RESULTS_LOG [MODEL_NAME]
function status_skip() {
    local reason=$1 run_log=$2 model_name=${3:-}
    echo "Skipped - ${model_name} - ${reason}" | tee -a "${run_log}"
}

# number of CUDA devices this PaddlePaddle build sees (0 on a CPU-only build)
function func_cuda_device_count() {
    local python=${1:-python}
    "${python}" -c "import paddle; print(paddle.device.cuda.device_count() if paddle.is_compiled_with_cuda() else 0)" \
        2>/dev/null | tail -n 1 || echo 0
}
