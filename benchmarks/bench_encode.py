"""Encoding a database with an exported model: the whole pipeline vs the model alone.

    python -m benchmarks.bench_encode [--data-path ./datasets/lite] [--bit 64] [--batch-size 16]
                                      [--threads 2] [--num-workers 0 2] [--repeats 2] [--images N]

Exports a randomly initialised full-size AlexNet-HashNet (configs/hashnet_coco.yaml: 224x224
crops; the weights do not change the speed) with export_model.py, then encodes the lite data
set's database (generated if absent) with Paddle Inference (oneDNN on CPU) in two ways:

  pipeline    utils.inference.encode_list: list file -> JPEG decoding, resize, crop, normalise
              (DataLoader, --num-workers processes) -> predictor -> +-1 codes
  model only  the same predictor on the same images, already decoded and preprocessed in memory

and prints images/s for each, side by side, and checks both give the same codes. The gap is
what data loading costs; on a machine with few cores the decoding workers compete with the
predictor's threads.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_encode [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time


from utils.runtime import configure
from benchmarks.machine import machine_line


def main():
    configure()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-path", default="./datasets/lite", help="lite data root (generated when absent)")
    p.add_argument("--bit", type=int, default=64, help="code length of the (untrained) model (default 64)")
    p.add_argument("--batch-size", type=int, default=16, help="images per encoding batch (default 16)")
    p.add_argument("--threads", type=int, default=2, help="predictor CPU threads")
    p.add_argument("--num-workers", type=int, nargs="+", default=[0, 2], help="decoding processes (pipeline)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per path, the median is reported (default 2)")
    p.add_argument("--images", type=int, default=0, help="encode only the first N database images (0: all)")
    args = p.parse_args()
    print(machine_line())

    from utils.runtime.device import setup_device
    from utils.data.lite import ensure_lite_dataset

    setup_device("cpu", args.threads)
    root = ensure_lite_dataset(args.data_path)
    db_list = os.path.join(root, "database.txt")
    work = tempfile.mkdtemp(prefix="bench_encode_")
    try:
        return run(args, root, db_list, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, root, db_list, work):
    import numpy as np
    import paddle

    from models import build_model
    from utils.config import build_config, save_config
    from utils.data.dataset import ImageListDataset
    from utils.data.transforms import build_transform
    from utils.inference.encoders import encode_list, InferenceEncoder
    from utils.inference.export import export_model

    if args.images:
        with open(db_list, encoding="utf-8") as f:
            lines = f.readlines()[:args.images]
        db_list = os.path.join(work, "database.txt")
        with open(db_list, "w", encoding="utf-8") as f:
            f.writelines(lines)

    coco = os.path.join(os.path.dirname(__file__), "..", "configs", "hashnet_coco.yaml")
    cfg = build_config(coco, {"bit": args.bit, "data_path": root})
    paddle.seed(0)
    paddle.save(build_model(cfg).state_dict(), os.path.join(work, "w.pdparams"))
    save_config(cfg, os.path.join(work, f"config_{args.bit}.yaml"))
    t0 = time.perf_counter()
    export_model(cfg, os.path.join(work, "w"), os.path.join(work, "inf"))
    print(f"exported a random AlexNet-HashNet-{args.bit} ({cfg['dataset']['crop_size']}px) in "
          f"{time.perf_counter() - t0:.1f}s; {args.threads} predictor threads, batch {args.batch_size}, "
          f"{os.cpu_count()} CPUs, paddle {paddle.__version__}")

    encoder = InferenceEncoder(os.path.join(work, "inf"), args.bit, use_mkldnn=True, cpu_threads=args.threads)
    dataset = ImageListDataset(db_list, root, build_transform(False, **encoder.preprocess))
    n = len(dataset)

    # model only: every image decoded and preprocessed beforehand
    t0 = time.perf_counter()
    images = np.stack([dataset[i][0] for i in range(n)]).astype(np.float32)
    t_decode = time.perf_counter() - t0
    batches = [images[s:s + args.batch_size] for s in range(0, n, args.batch_size)]
    encoder.encode_batch(batches[0])  # warm-up (oneDNN kernels are built on first use)

    def model_only():
        return np.concatenate([encoder.encode_batch(b) for b in batches])

    def pipeline(workers):
        return encode_list(encoder, db_list, root, args.batch_size, workers, "encode")[0]

    def median_run(fn):
        times, out = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, statistics.median(times)

    codes_model, t_model = median_run(model_only)
    rows = [("model only (pre-loaded tensors)", t_model)]
    same = True
    for workers in args.num_workers:
        codes, t = median_run(lambda: pipeline(workers))
        same = same and np.array_equal(codes, codes_model)
        rows.append((f"pipeline: encode_list, {workers} decoding workers", t))

    print(f"\n{n} lite database images ({images.shape[2]}x{images.shape[3]} after preprocessing), "
          f"median of {args.repeats} runs")
    print(f"  {'':<46} {'images/s':>9} {'ms/image':>9} {'vs model':>9}")
    for name, t in rows:
        print(f"  {name:<46} {n / t:9.1f} {t * 1000 / n:9.2f} {t_model / t:8.2f}x")
    print(f"  (decoding + preprocessing alone, 1 process: {n / t_decode:.1f} images/s)")
    print(f"  identical codes from the pipeline and the model alone: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
