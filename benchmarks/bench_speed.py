"""Encoding ms/image, side by side in one run: Paddle Inference fp32 / bf16 / int8 (oneDNN), Paddle
Inference without oneDNN, dygraph eval, onnxruntime fp32, PyTorch eager fp32 and bf16 autocast.

    python -m benchmarks.bench_speed [--bit 64] [--crop 224] [--threads 2] [--repeats 7]
    python -m benchmarks.bench_speed --crop 64 --no-torch        # the lite input size, Paddle only

The network is AlexNet-HashNet (fc 4096) with untrained, seeded weights: speed does not depend on
the weights' values (the int8 model is calibrated, abs_max, on random inputs, so its codes mean
nothing; quantize.py and tests/test_quantize.py judge int8 quality). Fair by construction, as
train_speed.py: every variant runs in its own fresh process, one at a time (this parent imports
neither paddle nor torch); the PyTorch side is benchmarks/torch_reference.py --infer (torch, numpy
and the standard library only); every variant gets the same thread count, the same random inputs
and warm-up. bf16 runs only where /proc/cpuinfo has avx512_bf16 or amx_bf16; onnxruntime only when
paddle2onnx and onnxruntime are installed (requirements-onnx.txt; the export is export_model.py
--format onnx's). Prints the CPU line, one row per
variant (median ms/image at batch 1 and 16, and the speed-up over Paddle Inference fp32 at 16).
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_speed [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

from benchmarks.harness import run_json  # (standard library and numpy only)
from benchmarks.machine import cpu_flags, load_average, machine_line  # (standard library only)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

BATCHES = (1, 16)
PADDLE_VARIANTS = {  # name: (worker kind, precision)
    "Paddle Inference fp32 (oneDNN)": ("paddle", "fp32"),
    "Paddle Inference bf16 (oneDNN)": ("paddle", "bf16"),
    "Paddle Inference int8 (oneDNN)": ("paddle", "int8"),
    "Paddle Inference fp32, no oneDNN": ("paddle", "fp32-plain"),
    "Paddle dygraph eval fp32": ("dygraph", "fp32"),
    "onnxruntime fp32": ("onnx", "fp32"),
}
TORCH_VARIANTS = {"PyTorch eager fp32": None, "PyTorch eager bf16 autocast": "bf16"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bit", type=int, default=64, help="code length (default 64)")
    p.add_argument("--crop", type=int, default=224, help="input size (224: the COCO recipe; 64: the lite config)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per batch size (default 7)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs per batch size first (default 3)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of every variant (default 2)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("bit", "crop", "repeats", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    return args


def inputs(batch, crop):
    import numpy as np

    return np.random.default_rng(batch).standard_normal((batch, 3, crop, crop)).astype("float32")


def time_batches(run, args):
    """{batch: median seconds per image} of run(images) after warm-up."""
    result = {}
    for batch in BATCHES:
        images = inputs(batch, args.crop)
        for _ in range(args.warmup):
            run(images)
        samples = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(images)
            samples.append(time.perf_counter() - start)
        result[batch] = statistics.median(samples) / batch
    return result


# -- workers (fresh processes) -------------------------------------------------------------------
def project_config(args):
    from utils.config import build_config

    return build_config(None, {"bit": args.bit}, [f"dataset.crop_size={args.crop}", f"dataset.resize_size={args.crop}"])


def prepare_worker(args):
    """The models every variant times, into --work: fp32 export, int8 (PTQ), ONNX when possible."""
    import paddle

    from models import build_model
    from utils.errors import DependencyError
    from utils.inference.export import export_model
    from utils.inference.onnx import require
    from utils.inference.quantize import ptq_int8
    from utils.runtime.device import setup_device

    setup_device("cpu", args.threads)
    cfg = project_config(args)
    paddle.seed(0)
    model = build_model(cfg)
    prefix = os.path.join(args.work, "weights")
    paddle.save(model.state_dict(), prefix + ".pdparams")
    try:  # export_model.py --format onnx's conversion (utils.inference.onnx)
        require("onnxruntime")
        export_model(cfg, prefix, os.path.join(args.work, "fp32"), onnx=True)
        onnx = "ok"
    except DependencyError as exc:
        export_model(cfg, prefix, os.path.join(args.work, "fp32"))
        onnx = str(exc)
    ptq_int8(cfg, prefix, os.path.join(args.work, "int8"), algo="abs_max", images=inputs(32, args.crop))
    print(json.dumps({"onnx": onnx, "paddle": paddle.__version__}), flush=True)


def time_worker(args):
    from utils.runtime.device import setup_device

    setup_device("cpu", args.threads)
    if args.worker == "onnx":
        from utils.inference.onnx import OnnxEncoder

        encoder = OnnxEncoder(os.path.join(args.work, "fp32"), args.bit, cpu_threads=args.threads)
        result = time_batches(encoder.encode_batch, args)
    elif args.worker == "dygraph":
        from utils.inference.encoders import DygraphEncoder

        encoder = DygraphEncoder(project_config(args), os.path.join(args.work, "weights"))
        result = time_batches(encoder.encode_batch, args)
    else:
        from utils.inference.encoders import InferenceEncoder

        precision = args.precision.replace("-plain", "")
        folder = os.path.join(args.work, "int8" if precision == "int8" else "fp32")
        encoder = InferenceEncoder(folder, args.bit, use_mkldnn=args.precision != "fp32-plain",
                                   cpu_threads=args.threads, precision=precision)
        result = time_batches(encoder.encode_batch, args)
    print(json.dumps({str(k): v for k, v in result.items()}), flush=True)


# -- the parent: one worker at a time, imports neither framework ---------------------------------
def run_worker(cmd, env):
    """Run one worker to its end; its last stdout line (benchmarks.harness.run_json)."""
    return run_json(cmd, env, ROOT, "bench_speed: a worker")


def torch_ms(args, amp, env):
    result = {}
    for batch in BATCHES:
        cmd = [sys.executable, "-m", "benchmarks.torch_reference", "--infer", "--json",
               "--batch-size", str(batch), "--crop", str(args.crop), "--bit", str(args.bit), "--threads",
               str(args.threads), "--steps", str(args.repeats), "--warmup", str(args.warmup)]
        walls = run_worker(cmd + (["--amp", amp] if amp else []), env)["wall"]
        result[str(batch)] = statistics.median(walls) / batch
    return result


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        from utils.runtime import configure

        configure()
        return prepare_worker(args) if args.worker == "prepare" else time_worker(args)
    print(machine_line())
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    common = ["--bit", str(args.bit), "--crop", str(args.crop), "--threads", str(args.threads),
              "--repeats", str(args.repeats), "--warmup", str(args.warmup)]
    rows, notes = {}, []
    with tempfile.TemporaryDirectory() as work:
        prepared = run_worker([sys.executable, "-m", "benchmarks.bench_speed", "--worker", "prepare", "--work", work, *common],
                              env)
        print(f"AlexNet-HashNet {args.bit} bits (untrained, seeded weights), input {args.crop}x{args.crop}, "
              f"{args.threads} threads, paddle {prepared['paddle']}; load average {load_average():.2f}")
        for name, (kind, precision) in PADDLE_VARIANTS.items():
            if precision == "bf16" and not {"avx512_bf16", "amx_bf16"} & set(cpu_flags()):
                notes.append(f"{name}: not run, this CPU has neither avx512_bf16 nor amx_bf16")
                continue
            if kind == "onnx" and prepared["onnx"] != "ok":
                notes.append(f"{name}: not run: {prepared['onnx']}")
                continue
            rows[name] = run_worker([sys.executable, "-m", "benchmarks.bench_speed", "--worker", kind, "--precision",
                                     precision, "--work", work, *common], env)
        if not args.no_torch:
            for name, amp in TORCH_VARIANTS.items():
                rows[name] = torch_ms(args, amp, env)
    base = rows["Paddle Inference fp32 (oneDNN)"]["16"]
    print(f"{'encoding (ms/image)':<34}{'batch 1':>10}{'batch 16':>10}{'vs Paddle Inference fp32 @16':>31}")
    for name, row in rows.items():
        print(f"{name:<34}{row['1'] * 1000:>10.2f}{row['16'] * 1000:>10.2f}{base / row['16']:>30.2f}x")
    for note in notes:
        print(note)
    print(f"load average after: {load_average():.2f}")


if __name__ == "__main__":
    main()
