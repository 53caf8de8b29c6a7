"""Export trained weights to a static inference graph for Paddle Inference.

Writes DIR/inference_<K>.json + DIR/inference_<K>.pdiparams (Paddle 3 PIR format) and the export's
description beside them (preprocessing and bit count). The graph outputs the network's pre-sign
features; a code is their sign (utils.encoding). The weights
also go to DIR/model_<K>.safetensors: the form to hand to others (loading it runs no code).
Everything is written in full before any file of a previous export in DIR is replaced, so a
failed write (disk full) leaves that export as it was (utils/inference/export.py does the work).
--format onnx also converts the graph with paddle2onnx to DIR/inference_<K>.onnx, for
deploy/onnxruntime_python/infer.py (pip install -r requirements-onnx.txt first).
"""
import argparse

from utils.cli import exit_on_user_error
from utils.cli.flags import HelpFormatter
from utils.runtime import configure
from utils.storage.run_folder import INFER_CFG, RunFolder


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length of the weights")
    p.add_argument("--pretrained", required=True, metavar="PREFIX", help="trained weights PREFIX(.pdparams)")
    p.add_argument("--save-inference-dir", "--save_inference_dir", default=RunFolder().export.path,
                   help=f"folder for inference_<K>.json/.pdiparams and {INFER_CFG}")
    p.add_argument("-c", "--config", default=None,
                   help="config of the training run (default: config_<K>.yaml beside the weights, "
                        "else configs/hashnet_<dataset>.yaml)")
    p.add_argument("--dataset", default=None, help="picks configs/hashnet_<dataset>.yaml when no config is found")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--format", choices=["paddle", "onnx"], default="paddle",
                   help="paddle: the Paddle Inference files; onnx: those and inference_<K>.onnx (paddle2onnx, "
                        "requirements-onnx.txt)")
    p.add_argument("--onnx", dest="format", action="store_const", const="onnx", help="the same as --format onnx")
    args = p.parse_args(argv)
    from utils.cli.flags import check_bit, check_output_dir

    check_bit(args.bit)
    check_output_dir(args.save_inference_dir, "--save-inference-dir")
    return args


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from utils.config import config_for_weights
    from utils.inference.export import export_model
    from utils.runtime.device import setup_device
    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()
    cfg = config_for_weights(args.pretrained, args.bit, args.config, args.dataset, overrides=args.override)
    setup_device("cpu", cfg["threads"])
    onnx = args.format == "onnx"
    prefix = export_model(cfg, args.pretrained, args.save_inference_dir, onnx=onnx)
    print(f"exported {args.bit}-bit model to {prefix}.json / .pdiparams{' / .onnx' if onnx else ''} (+ {INFER_CFG})")


if __name__ == "__main__":
    main()
