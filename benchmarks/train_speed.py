"""Training images/s of the project's real step, beside PyTorch eager on the same machine.

    python benchmarks/train_speed.py --batch-size 32 --steps 8 [--bit 64] [--threads 2]
    python benchmarks/train_speed.py -c configs/hashnet_lite.yaml --crop 64   # the lite recipe
    python benchmarks/train_speed.py --no-torch                               # Paddle only

Each framework runs in its own long-lived worker process (no two OpenMP runtimes in one
process); the parent alternates them round by round (A/B/A/B...) so both see the same machine
load. Paddle times utils.engine.train_step with the project's model, loss and optimizer from the
config; torch times benchmarks/torch_reference.py (same layers, loss, optimizer). Inputs are
fixed random tensors, so decoding is not timed here (see bench_encode.py). Prints per-round
medians, CPU seconds per step, the ratio, and ends with `train img/s: X` (Paddle, median of all
timed steps).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import utils  # noqa: E402  (sets the MKL switch; see utils/__init__.py)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "hashnet_coco.yaml"),
                   help="project config whose model, loss and optimizer are timed (default: configs/hashnet_coco.yaml, "
                        "the paper's AlexNet at 224x224)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, as in main_single_gpu.py (repeatable)")
    p.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per round and framework (default 8)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before the first round (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="A/B rounds; each runs --steps steps per framework")
    p.add_argument("--bit", type=int, default=64, help="code length (default 64)")
    p.add_argument("--crop", type=int, default=None, help="input size (default: the config's crop_size, 224)")
    p.add_argument("--num-classes", type=int, default=80, help="labels per image vector (default 80, COCO)")
    p.add_argument("--num-train", type=int, default=10000, help="loss memory size (default 10000, COCO train)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of each framework (default 2)")
    p.add_argument("--no-torch", action="store_true", help="time Paddle only (torch is not needed then)")
    p.add_argument("--ablation", action="store_true",
                   help="also time Paddle with each speed option switched off (and all of them), in the same rotation")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("batch_size", "steps", "rounds", "bit", "num_classes", "num_train", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    from utils.errors import UserError

    try:
        project_config(args)  # the config's own checks (crop size, keys) before any worker starts
    except UserError as exc:
        p.error(str(exc))
    return args


def project_config(args):
    from utils.config import build_config

    overrides = list(args.override)
    if args.crop is not None:
        overrides += [f"dataset.crop_size={args.crop}", f"dataset.resize_size={args.crop}"]
    return build_config(args.config, {"bit": args.bit, "batch_size": args.batch_size, "threads": args.threads},
                        overrides)


def paddle_step(args, cfg):
    import paddle

    from models import build_model
    from utils.cpu_speed import apply_training_options
    from utils.engine import train_step
    from utils.env import setup_device
    from utils.losses import build_loss
    from utils.optimizer import build_optimizer

    setup_device("cpu", args.threads)
    paddle.seed(0)
    model = build_model(cfg, num_classes=args.num_classes)
    apply_training_options(cfg, "cpu", model)
    model.train()
    criterion = build_loss(cfg, num_train=args.num_train, num_classes=args.num_classes)
    criterion.on_epoch_start(0)
    optimizer, _ = build_optimizer(cfg, model.parameters())

    def step(images, labels, indices):
        return float(train_step(model, criterion, optimizer, images, labels, indices).detach())

    return step, paddle.to_tensor


def torch_step(args, cfg):
    from benchmarks.torch_reference import build_torch_step

    m, t = cfg["model"], cfg["train"]
    return build_torch_step(m["bit"], m["fc_dim"], m["dropout"], m["batch_norm"], args.num_train, args.num_classes,
                            t["lr"], t["momentum"], t["weight_decay"], m["hash_lr_mult"], args.threads)


def cpu_seconds():
    usage = os.times()
    return usage.user + usage.system


def worker(args):
    """Build one framework's step, then answer `run N` lines with the step times as JSON."""
    import numpy as np

    cfg = project_config(args)
    step, to_tensor = (torch_step if args.worker == "torch" else paddle_step)(args, cfg)
    rng = np.random.default_rng(0)
    crop = cfg["dataset"]["crop_size"]
    images = to_tensor(rng.standard_normal((args.batch_size, 3, crop, crop)).astype("float32"))
    labels = to_tensor((rng.random((args.batch_size, args.num_classes)) < 0.05).astype("float32"))
    indices = to_tensor(np.arange(args.batch_size, dtype="int64"))
    for _ in range(args.warmup):
        step(images, labels, indices)
    print(json.dumps({"ready": True, "crop": crop}), flush=True)
    for line in sys.stdin:
        n = int(line)
        walls, cpus, losses = [], [], []
        for _ in range(n):
            c, w = cpu_seconds(), time.perf_counter()
            losses.append(step(images, labels, indices))
            walls.append(time.perf_counter() - w)
            cpus.append(cpu_seconds() - c)
        print(json.dumps({"wall": walls, "cpu": cpus, "loss": losses}), flush=True)


# --ablation: Paddle with one speed option off (environment, config overrides); see utils/cpu_speed.py
ABLATIONS = {
    "paddle -oneDNN conv": ({}, ["train.onednn_conv=false"]),
    "paddle -MKL AVX2": ({"HASHNET_MKL_AVX2": "0"}, []),
    "paddle -malloc": ({}, ["train.cpu_malloc_reuse=false"]),
    "paddle untuned": ({"HASHNET_MKL_AVX2": "0"}, ["train.cpu_malloc_reuse=false", "train.onednn_conv=false"]),
}


class Worker:
    def __init__(self, name, argv, env_extra=None, overrides=()):
        env = dict(os.environ, OMP_NUM_THREADS=str(argv.threads), MKL_NUM_THREADS=str(argv.threads), **(env_extra or {}))
        if env.get("HASHNET_MKL_AVX2") == "0" and utils.MKL_AVX2_SET_HERE:
            env.pop("MKL_DEBUG_CPU_TYPE", None)  # set by this process's `import utils`, not by the user
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", name] + sys.argv[1:]
        cmd += [arg for text in overrides for arg in ("-o", text)]
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=ROOT)
        self.info = self._read()

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"train_speed: the {self.name} worker exited (code {self.proc.wait()}); see above")
        return json.loads(line)

    def run(self, steps):
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def main():
    args = parse_args()
    if args.worker:
        return worker(args)
    specs = {"paddle": ({}, [])}
    if args.ablation:
        specs.update(ABLATIONS)
    if not args.no_torch:
        specs["torch"] = ({}, [])
    names = list(specs)
    if not args.no_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise SystemExit("train_speed: torch is not installed; `pip install torch==2.13.0` (CPU) or pass --no-torch")
    workers = [Worker(name, args, *specs[name]) for name in names]
    crop = workers[0].info["crop"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"batch {args.batch_size}, {crop}x{crop}, {args.bit} bits, {args.threads} threads each, "
          f"{args.rounds} rounds x {args.steps} steps, alternated; load average {load:.2f}")
    results = {name: {"wall": [], "cpu": []} for name in names}
    for r in range(args.rounds):
        for w in (workers if r % 2 == 0 else workers[::-1]):
            out = w.run(args.steps)
            results[w.name]["wall"] += out["wall"]
            results[w.name]["cpu"] += out["cpu"]
            print(f"round {r + 1} {w.name:<20} median step {statistics.median(out['wall']) * 1000:8.1f} ms  "
                  f"{args.batch_size / statistics.median(out['wall']):6.1f} img/s  "
                  f"cpu {statistics.median(out['cpu']):.2f} s/step  loss {out['loss'][-1]:.4f}", flush=True)
    for w in workers:
        w.close()
    ips = {name: args.batch_size / statistics.median(res["wall"]) for name, res in results.items()}
    print(f"{'run':<21}{'img/s':>8}{'cpu s/step':>12}{'ratio to torch':>16}")
    for name in names:
        ratio = f"{ips[name] / ips['torch']:.2f}" if "torch" in ips else "-"
        print(f"{name:<21}{ips[name]:>8.1f}{statistics.median(results[name]['cpu']):>12.2f}{ratio:>16}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"train img/s: {ips['paddle']:.1f}")


if __name__ == "__main__":
    main()
