#!/usr/bin/env bash
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"  # started with sh (dash on Debian): rerun under bash
# Prepare the data of a TIPC run. Nothing is downloaded.
#
#   bash test_tipc/prepare.sh test_tipc/configs/hashnet_16/train_infer_python.txt lite_train_lite_infer
#
# Every mode: generates the lite data set (100 queries, 600 database images of which 500 train,
# 12 classes; ~1 s) under ./test_tipc/data/lite/ unless it is there; its images are also the
# inference images of the whole_* modes.
# whole_infer / whole_train_whole_infer: checks for, and tells you how to provide, what cannot be
# generated (trained weights; COCO images, lists and ImageNet AlexNet weights). Exit code 1 when
# something is missing.
set -u
source "$(dirname "${BASH_SOURCE[0]}")/common_func.sh"
func_tipc_args "$0" "$@"  # FILENAME (absolute), MODE; TIPC_OUTPUT_DIR absolute; cd to the repository root

python=$(func_config_value "${FILENAME}" train_params python "${MODE}")
model_name=$(func_config_value "${FILENAME}" train_params model_name "${MODE}")
bit=${model_name##*_}

"${python}" -c "from utils.data.lite import ensure_lite_dataset; ensure_lite_dataset('./test_tipc/data/lite/')" || exit 1
echo "lite data: ./test_tipc/data/lite/ ($(wc -l <./test_tipc/data/lite/train.txt) train, $(wc -l <./test_tipc/data/lite/test.txt) query, $(wc -l <./test_tipc/data/lite/database.txt) database images)"

missing=0
function need() {  # need PATH WHAT HOW
    if [[ -e $1 ]]; then
        echo "found: $1 ($2)"
    else
        echo "MISSING: $1 ($2)"
        echo "    $3"
        missing=1
    fi
}

case ${MODE} in
    whole_infer)
        train_model=$(func_config_value "${FILENAME}" infer_params train_model "${MODE}")
        need "${train_model}.pdparams" "trained ${bit}-bit weights to export and run" \
            "train them (e.g. scripts/train_single_gpu.sh coco /data/coco) and copy output/coco_single_gpu/model_best_${bit}.pdparams there"
        need "$(dirname "${train_model}")/config_${bit}.yaml" "the training run's resolved config (preprocessing, network width)" \
            "copy output/coco_single_gpu/config_${bit}.yaml beside the weights (without it export_model.py falls back to configs/hashnet_coco.yaml)"
        ;;
    whole_train_whole_infer)
        data_path=$(func_config_value "${FILENAME}" train_params --data-path "${MODE}")
        dataset=$(func_config_value "${FILENAME}" train_params --dataset "${MODE}")
        list_dir=$(func_config_value "${FILENAME}" train_params --list-dir "${MODE}")
        [[ -z ${list_dir} || ${list_dir} == null ]] && list_dir="data/${dataset}"
        backbone=$(func_config_value "${FILENAME}" train_params --pretrained-backbone "${MODE}")
        need "${data_path}" "${dataset} images; list paths are relative to this folder" \
            "COCO 2014 train2014/ and val2014/ images (https://cocodataset.org), e.g. a symlink: ln -s /data/coco ${data_path%/}"
        for split in train test database; do
            need "${list_dir%/}/${split}.txt" "${split} list: '<relative/path.jpg> <80 0/1 labels>' per line" \
                "the HashNet COCO lists (COCO 2014: 10,000 train, 5,000 test queries, 117,218 database), see README 'From lite data to real data sets'"
        done
        if [[ -n ${backbone} && ${backbone} != null ]]; then
            need "${backbone}" "ImageNet AlexNet weights (paddle.vision AlexNet_pretrained.pdparams)" \
                "download once where you are online: python -c \"import paddle; paddle.vision.models.alexnet(pretrained=True)\" then copy ~/.cache/paddle/hapi/weights/AlexNet_pretrained.pdparams"
        fi
        echo "whole_train_whole_infer trains ${bit} bits for the configured 150 epochs: plan for GPUs (see test_tipc/README.md)."
        ;;
esac
exit ${missing}
