"""onnxruntime inference for a HashNet model exported with `export_model.py --format onnx`: prints
each image's K-bit code, in the same lines as deploy/inference_python/infer.py (Paddle Inference).

    python -m deploy.onnxruntime_python.infer --bit 64 --model-dir output/inference --img-path demo.jpg
Without --model-dir it runs ./output/inference. --img-path may be a folder (every
.jpg/.jpeg/.png/.bmp in it, in name order). With --benchmark True a timing report follows:
preprocess / inference / postprocess ms per image, batch size, threads, peak memory. Needs
requirements-onnx.txt (onnxruntime).
"""
import argparse

from utils.cli import exit_on_user_error
from utils.cli.flags import HelpFormatter, add_image_run_flags, check_image_run_flags
from utils.runtime import configure
from utils.storage.run_folder import RunFolder


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length K (selects inference_<K>.onnx)")
    p.add_argument("--model-dir", "--model_dir", default=RunFolder().export.path,
                   help="folder written by export_model.py --format onnx")
    add_image_run_flags(p, batch_help="images per onnxruntime run", threads_help="onnxruntime intra-op threads")
    return check_image_run_flags(p.parse_args(argv))


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from utils.inference.image_runner import image_files, print_codes
    from utils.inference.onnx import OnnxEncoder

    files = image_files(args.img_path)
    encoder = OnnxEncoder(args.model_dir, args.bit, cpu_threads=args.cpu_threads)
    import onnxruntime  # present: OnnxEncoder has checked it, with a one-line error naming requirements-onnx.txt

    print_codes(encoder, files, args, "cpu", f"onnxruntime: {onnxruntime.__version__}")


if __name__ == "__main__":
    main()
