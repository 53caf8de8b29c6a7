"""Paddle Inference for an exported HashNet model: prints each image's K-bit code.

    python -m deploy.inference_python.infer --bit 64 --model-dir output/inference --img-path demo.jpg
Without --model-dir it runs the main job's export, ./output/inference.
--img-path may be a folder (every .jpg/.jpeg/.png/.bmp in it, in name order). With
--benchmark True a timing report follows: preprocess / inference / postprocess ms per image,
batch size, threads, oneDNN, precision, peak memory.
--precision bf16 runs the fp32 export with oneDNN's bf16 kernels (CPUs with avx512_bf16 or amx_bf16
only); --precision int8 runs a quantised model written by quantize.py (give its folder).
"""
import argparse
import os
import sys

if not __package__:  # run by path (python deploy/inference_python/infer.py, the contract's form): run as the module
    _root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    _env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_root, os.environ.get("PYTHONPATH")])))
    os.execve(sys.executable, [sys.executable, "-m", "deploy.inference_python.infer", *sys.argv[1:]], _env)

from utils.cli import exit_on_user_error
from utils.cli.flags import HelpFormatter, add_image_run_flags, check_image_run_flags, str2bool
from utils.inference.precision import PRECISIONS
from utils.runtime import configure
from utils.storage.run_folder import RunFolder


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length K (selects inference_<K>.json)")
    p.add_argument("--model-dir", "--model_dir", default=None,
                   help=f"folder written by export_model.py (default: {RunFolder().export.path}, the main job's export)")
    add_image_run_flags(p, batch_help="images per predictor run")
    p.add_argument("--use-gpu", "--use_gpu", type=str2bool, default=False, help="run on GPU (paddlepaddle-gpu)")
    p.add_argument("--use-mkldnn", "--use_mkldnn", type=str2bool, default=True, help="oneDNN kernels on CPU")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32; bf16 (oneDNN bf16 kernels: needs avx512_bf16 or amx_bf16); int8 (a model "
                        "folder written by quantize.py)")
    return check_image_run_flags(p.parse_args(argv))


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from utils.inference.encoders import InferenceEncoder
    from utils.inference.image_runner import image_files, print_codes
    from utils.runtime.log import quiet_library_logging

    files = image_files(args.img_path)
    if args.model_dir is None:
        args.model_dir = RunFolder().default_export(args.bit)
        print(f"model: {RunFolder().export.graph_files(args.bit)[0]} (no --model-dir given)", file=sys.stderr)
    quiet_library_logging()
    encoder = InferenceEncoder(args.model_dir, args.bit, use_gpu=args.use_gpu, use_mkldnn=args.use_mkldnn,
                               cpu_threads=args.cpu_threads, precision=args.precision)
    print_codes(encoder, files, args, "gpu" if args.use_gpu else "cpu",
                f"mkldnn: {args.use_mkldnn and not args.use_gpu}  precision: {args.precision}")


if __name__ == "__main__":
    main()
