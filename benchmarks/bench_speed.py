"""Encoding ms/image: dygraph eval vs Paddle Inference (oneDNN on and off), in one run.

    python benchmarks/bench_speed.py [--bit 64] [--crop 224] [--threads 2]

Times the per-image cost of encoding with: dygraph eval, Paddle Inference with oneDNN on and
off, each at batch 1 and 16. Prints medians after warm-up and the ratios. Training speed (the
project's step vs PyTorch eager) is benchmarks/train_speed.py.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from utils.runtime import configure  # noqa: E402
from benchmarks.machine import machine_line  # noqa: E402


def median_time(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    configure()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bit", type=int, default=64)
    p.add_argument("--crop", type=int, default=224, help="input size (224: the COCO recipe; 112: the lite config)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions per inference setting")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(machine_line())

    import numpy as np
    import paddle

    from models import CodeHead, build_model
    from utils.config import build_config
    from utils.runtime.device import setup_device
    from utils.inference.encoders import InferenceEncoder

    setup_device("cpu", args.threads)
    cfg = build_config(None, {"bit": args.bit}, [f"dataset.crop_size={args.crop}", f"dataset.resize_size={args.crop}"])
    paddle.seed(0)
    model = build_model(cfg)
    print(f"AlexNet-HashNet {args.bit} bits, input {args.crop}x{args.crop}, {args.threads} threads, "
          f"paddle {paddle.__version__}")

    rng = np.random.default_rng(0)
    model.eval()
    head = CodeHead(model)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        paddle.save(model.state_dict(), os.path.join(tmp, "w.pdparams"))
        static = paddle.jit.to_static(head, input_spec=[paddle.static.InputSpec([None, 3, args.crop, args.crop],
                                                                                "float32", "x")], full_graph=True)
        paddle.jit.save(static, os.path.join(tmp, f"inference_{args.bit}"))
        import yaml

        with open(os.path.join(tmp, "infer_cfg.yml"), "w") as f:
            yaml.safe_dump({"bit": args.bit, "resize_size": args.crop, "crop_size": args.crop,
                            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}, f)
        encoders = {"inference+oneDNN": InferenceEncoder(tmp, args.bit, use_mkldnn=True, cpu_threads=args.threads),
                    "inference": InferenceEncoder(tmp, args.bit, use_mkldnn=False, cpu_threads=args.threads)}
        for batch in (1, 16):
            images = rng.standard_normal((batch, 3, args.crop, args.crop)).astype("float32")

            def dygraph():
                with paddle.no_grad():
                    head(paddle.to_tensor(images)).numpy()

            results[("dygraph eval", batch)] = median_time(dygraph, args.repeats, 2) / batch
            for name, enc in encoders.items():
                results[(name, batch)] = median_time(lambda: enc.encode_batch(images), args.repeats, 2) / batch

    print(f"{'inference (ms/image)':<22}{'batch 1':>10}{'batch 16':>10}{'speed-up vs dygraph @16':>26}")
    base = results[("dygraph eval", 16)]
    for name in ("dygraph eval", "inference", "inference+oneDNN"):
        print(f"{name:<22}{results[(name, 1)] * 1000:>10.2f}{results[(name, 16)] * 1000:>10.2f}"
              f"{base / results[(name, 16)]:>25.2f}x")


if __name__ == "__main__":
    main()
