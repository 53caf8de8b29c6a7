"""Paddle Inference for an exported HashNet model: prints each image's K-bit code.

    python deploy/inference_python/infer.py --bit 64 --model-dir output/inference --img-path demo.jpg
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
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from utils.cli import exit_on_user_error  # noqa: E402
from utils.cli.flags import check_bit, check_range, str2bool  # noqa: E402
from utils.errors import ConfigError, DataError  # noqa: E402
from utils.inference.precision import PRECISIONS  # noqa: E402
from utils.runtime import configure  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length K (selects inference_<K>.json)")
    p.add_argument("--model-dir", "--model_dir", default=None,
                   help="folder written by export_model.py (default: ./output/inference, the main job's export)")
    p.add_argument("--img-path", "--img_path", required=True, help="an image, or a folder of images")
    p.add_argument("--batch-size", "--batch_size", type=int, default=1, help="images per predictor run")
    p.add_argument("--use-gpu", "--use_gpu", type=str2bool, default=False, help="run on GPU (paddlepaddle-gpu)")
    p.add_argument("--use-mkldnn", "--use_mkldnn", type=str2bool, default=True, help="oneDNN kernels on CPU")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32; bf16 (oneDNN bf16 kernels: needs avx512_bf16 or amx_bf16); int8 (a model "
                        "folder written by quantize.py)")
    p.add_argument("--cpu-threads", "--cpu_threads", type=int, default=2, help="CPU math threads")
    p.add_argument("--benchmark", type=str2bool, default=False, help="print a timing report")
    p.add_argument("--warmup", type=int, default=2, help="untimed warm-up batches with --benchmark")
    args = p.parse_args(argv)
    check_bit(args.bit)
    check_range("--batch-size", args.batch_size, 1, 4096)
    check_range("--cpu-threads", args.cpu_threads, 1, 1024)
    check_range("--warmup", args.warmup, 0)
    if args.model_dir is not None and not os.path.isdir(args.model_dir):
        raise ConfigError(f"--model-dir: folder not found: {args.model_dir}")
    return args


def image_files(path):
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise DataError(f"--img-path: no images ({'/'.join(IMAGE_EXTENSIONS)}) in {path}")
        return files
    if not os.path.isfile(path):
        raise DataError(f"--img-path: not found: {path}")
    return [path]


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    import numpy as np

    from utils.data.transforms import preprocess_image
    from utils.retrieval import format_code
    from utils.inference.encoders import InferenceEncoder
    from utils.inference.model_files import default_model_dir
    from utils.runtime.log import quiet_library_logging

    files = image_files(args.img_path)
    if args.model_dir is None:
        args.model_dir = default_model_dir("./output", args.bit)
        print(f"model: {args.model_dir}/inference_{args.bit}.json (no --model-dir given)", file=sys.stderr)
    quiet_library_logging()
    encoder = InferenceEncoder(args.model_dir, args.bit, use_gpu=args.use_gpu, use_mkldnn=args.use_mkldnn,
                               cpu_threads=args.cpu_threads, precision=args.precision)
    if args.benchmark:  # warm-up: oneDNN primitives are created on the first runs
        warm = np.stack([preprocess_image(files[0], **encoder.preprocess)] * args.batch_size)
        for _ in range(args.warmup):
            encoder.encode_batch(warm)
    times = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
    for start in range(0, len(files), args.batch_size):
        batch = files[start:start + args.batch_size]
        t0 = time.perf_counter()
        images = np.stack([preprocess_image(f, **encoder.preprocess) for f in batch])
        t1 = time.perf_counter()
        codes = encoder.encode_batch(images)
        t2 = time.perf_counter()
        lines = []
        for path, code in zip(batch, codes):
            bits, hexcode = format_code(code)
            lines.append(f"{path}\tcode: {bits}\thex: {hexcode}")
        t3 = time.perf_counter()
        print("\n".join(lines))
        times["preprocess"] += t1 - t0
        times["inference"] += t2 - t1
        times["postprocess"] += t3 - t2
    if args.benchmark:
        n = len(files)
        print("----------------------- benchmark -----------------------")
        print(f"model: inference_{args.bit}  images: {n}  batch_size: {args.batch_size}  "
              f"device: {'gpu' if args.use_gpu else 'cpu'}  cpu_threads: {args.cpu_threads}  "
              f"mkldnn: {args.use_mkldnn and not args.use_gpu}  precision: {args.precision}")
        print(f"preprocess_time(ms/img): {1000 * times['preprocess'] / n:.2f}  "
              f"inference_time(ms/img): {1000 * times['inference'] / n:.2f}  "
              f"postprocess_time(ms/img): {1000 * times['postprocess'] / n:.2f}")
        print(f"peak_memory(MB): {peak_rss_mb():.0f}")


if __name__ == "__main__":
    main()
