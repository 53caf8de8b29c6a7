"""Training images/s of the project's real step, beside PyTorch eager on the same machine.

    python -m benchmarks.train_speed [--batch-size 32] [--steps 8] [--rounds 3] [--bit 64] [--threads 2]
    python -m benchmarks.train_speed --check-baseline      # is the torch yardstick as fast here as alone?
    python -m benchmarks.train_speed --ablation            # + Paddle with each speed option off
    python -m benchmarks.train_speed -c configs/hashnet_lite.yaml --crop 64 --no-torch
    python -m benchmarks.train_speed --amp bf16            # + the project's bf16 step and PyTorch bf16 autocast

Fair by construction:
- one process per framework and round, started fresh and alone on the machine: nothing else of
  the harness is alive while it runs (this parent only waits; it never imports paddle or
  torch), so no idle worker's OpenMP threads spin beside the timed one;
- the torch side runs benchmarks/torch_reference.py, which imports torch, numpy and the
  standard library only (no paddle, no project code); the Paddle side times
  utils.training.engine.train_step with the project's model, loss and optimizer built from the config;
- both get the same thread count (OMP_NUM_THREADS/MKL_NUM_THREADS and the framework's own
  setting), the same fixed random inputs (benchmarks/harness.py; decoding is not timed here,
  see bench_encode.py), the same warm-up, and the order alternates round by round (A/B, B/A, ...);
- the CPU model, its flags and the load average before and after every run are printed.
`--check-baseline` also runs the torch reference exactly as a user runs it alone (its own
command, the plain environment) in the same rotation, and fails (exit 1) if the harness's torch
figure differs from it by more than 5%.

Prints one line per run, then medians over all timed steps: img/s, CPU s/step, ratio to torch;
ends with `train img/s: X` (Paddle).
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.train_speed [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import json
import os
import statistics
import subprocess
import sys

from benchmarks.harness import fixed_inputs, time_steps  # (numpy only)
from benchmarks.harness import run_json as harness_run_json
from benchmarks.machine import load_average, machine_line  # (standard library only)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

TORCH_REFERENCE = [sys.executable, "-m", "benchmarks.torch_reference"]  # run from ROOT, like every worker
SELF = [sys.executable, "-m", "benchmarks.train_speed"]
BASELINE_TOLERANCE = 0.05

# --ablation: Paddle with one speed option off (environment, config overrides); see utils/runtime/cpu.py
ABLATIONS = {
    "paddle -oneDNN conv": ({}, ["train.onednn_conv=false"]),
    "paddle -MKL AVX2": ({"HASHNET_MKL_AVX2": "0"}, []),
    "paddle -malloc": ({}, ["train.cpu_malloc_reuse=false"]),
    "paddle untuned": ({"HASHNET_MKL_AVX2": "0"}, ["train.cpu_malloc_reuse=false", "train.onednn_conv=false"]),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=os.path.join(ROOT, "configs", "hashnet_coco.yaml"),
                   help="project config whose model, loss and optimizer are timed (default: configs/hashnet_coco.yaml, "
                        "the paper's AlexNet at 224x224)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, as in main_single_gpu.py (repeatable)")
    p.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per run (default 8)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps at the start of every run (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; each runs every variant once, order alternating")
    p.add_argument("--bit", type=int, default=64, help="code length (default 64)")
    p.add_argument("--crop", type=int, default=None, help="input size (default: the config's crop_size, 224)")
    p.add_argument("--num-classes", type=int, default=80, help="labels per image vector (default 80, COCO)")
    p.add_argument("--num-train", type=int, default=10000, help="loss memory size (default 10000, COCO train)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of each framework (default 2)")
    p.add_argument("--no-torch", action="store_true", help="time Paddle only (torch is not needed then)")
    p.add_argument("--ablation", action="store_true",
                   help="also time Paddle with each speed option switched off (and all of them), in the same rotation")
    p.add_argument("--check-baseline", action="store_true",
                   help="also time the torch reference run alone (its own command) and fail if the harness's "
                        f"torch figure differs from it by more than {BASELINE_TOLERANCE:.0%}".replace("%", "%%"))
    p.add_argument("--amp", choices=["bf16"], default=None,
                   help="also time the project with -o train.amp=bf16 (its convolutions in bf16 through oneDNN, "
                        "utils/training/amp.py) and PyTorch with torch.autocast('cpu', bfloat16) (hash layer and "
                        "loss in fp32); on a CPU without avx512_bf16/amx_bf16 the Paddle bf16 row is the refusal")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--describe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("batch_size", "steps", "rounds", "bit", "num_classes", "num_train", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        p.error(f"--warmup must be >= 0, got {args.warmup}")
    if args.no_torch and args.amp:
        p.error("--amp bf16 times the torch reference with autocast; it cannot be combined with --no-torch")
    if args.no_torch and args.check_baseline:
        p.error("--check-baseline times the torch reference; it cannot be combined with --no-torch")
    args.parser = p
    return args


# -- inside a Paddle worker (these import the project, hence paddle) ------------------------------
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
    from utils.runtime.cpu import apply_training_options
    from utils.training.engine import train_step
    from utils.runtime.device import setup_device
    from utils.losses import build_loss
    from utils.training.optimizer import build_optimizer

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


def torch_spec(cfg):
    """The torch reference's flags for this config, or the reason it cannot mirror it."""
    m, t, loss = cfg["model"], cfg["train"], cfg["loss"]
    if loss["name"] != "hashnet" or m["name"] != "linear" or m["backbone"] != "alexnet":
        return {"unsupported": f"the torch reference implements AlexNet + the HashNet loss only (config: "
                               f"{m['backbone']} + {loss['name']}); pass --no-torch"}
    alpha = 10.0 / m["bit"] if loss["alpha"] is None else loss["alpha"]
    lr = t["lr"] * t["batch_size"] / t["base_batch"]  # what build_optimizer uses on one device
    flags = ["--crop", cfg["dataset"]["crop_size"], "--bit", m["bit"], "--fc-dim", m["fc_dim"],
             "--dropout", m["dropout"], "--lr", lr, "--momentum", t["momentum"], "--weight-decay", t["weight_decay"],
             "--hash-lr-mult", m["hash_lr_mult"], "--alpha", alpha]
    return {"flags": [str(f) for f in flags] + (["--batch-norm"] if m["batch_norm"] else []),
            "crop": cfg["dataset"]["crop_size"]}


def describe(args):
    """Check the config (the project's own validation) and print the torch reference's flags."""
    from utils.errors import UserError

    try:
        cfg = project_config(args)
    except UserError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(torch_spec(cfg)))
    return 0


def paddle_worker(args):
    import paddle

    cfg = project_config(args)
    step, to_tensor = paddle_step(args, cfg)
    inputs = [to_tensor(a) for a in fixed_inputs(args.batch_size, cfg["dataset"]["crop_size"], args.num_classes)]
    result = time_steps(step, inputs, args.warmup, args.steps)
    print(json.dumps({**result, "paddle": paddle.__version__}), flush=True)
    return 0


# -- the parent: starts one worker at a time, imports neither framework ----------------------------
def common_flags(args):
    return ["--batch-size", str(args.batch_size), "--steps", str(args.steps), "--warmup", str(args.warmup),
            "--threads", str(args.threads), "--num-classes", str(args.num_classes), "--num-train", str(args.num_train)]


def paddle_command(args, overrides=()):
    cmd = [*SELF, "--worker", "paddle", "-c", args.config, "--bit", str(args.bit)]
    cmd += common_flags(args) + (["--crop", str(args.crop)] if args.crop is not None else [])
    return cmd + [a for text in list(args.override) + list(overrides) for a in ("-o", text)]


def run_json(name, cmd, env):
    """Run the `name` worker to its end; its last stdout line (benchmarks.harness.run_json)."""
    return harness_run_json(cmd, env, ROOT, f"train_speed: the {name} run")


def bf16_training_status():
    """What a Paddle bf16 training run on this CPU does: the project's refusal (one line), asked of a
    fresh process like every other measurement here."""
    code = ("from utils.runtime import configure; configure()\n"
            "from utils.training.amp import check_amp_device\n"
            "try:\n    check_amp_device('bf16', 'cpu')\n    print('allowed')\n"
            "except Exception as exc:\n    print(f'refused: {exc}')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else f"unknown (exit {out.returncode})"


def variants(args, spec):
    """name -> (command, environment). The harness environment pins the thread count of both
    frameworks; "torch alone" is the reference's own command in the plain environment."""
    harness_env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    torch_cmd = [*TORCH_REFERENCE, "--json"] + common_flags(args) + spec.get("flags", [])
    out = {"paddle": (paddle_command(args), harness_env)}
    if args.ablation:
        for name, (env, overrides) in ABLATIONS.items():
            out[name] = (paddle_command(args, overrides), dict(harness_env, **env))
    if not args.no_torch:
        out["torch"] = (torch_cmd, harness_env)
    if args.amp:
        if args.amp_allowed:
            out[f"paddle {args.amp}"] = (paddle_command(args, [f"train.amp={args.amp}"]), harness_env)
        out[f"torch {args.amp} autocast"] = (torch_cmd + ["--amp", args.amp], harness_env)
    if args.check_baseline:
        out["torch alone"] = (torch_cmd, dict(os.environ))
    return out


def main(argv=None):
    args = parse_args(argv)
    if args.describe or args.worker:
        # only the Paddle processes import the project and configure themselves: the parent's
        # environment is what every worker (torch's too) starts from, and an ablation drops the
        # MKL switch from it
        from utils.runtime import configure

        configure()
        return describe(args) if args.describe else paddle_worker(args)

    check = subprocess.run([*SELF, "--describe"] + paddle_command(args)[len(SELF) + 2:],
                           cwd=ROOT, capture_output=True, text=True)
    if check.returncode != 0:
        lines = check.stderr.strip().splitlines()
        args.parser.error(lines[-1] if lines else f"config check failed (exit {check.returncode})")
    spec = json.loads(check.stdout.strip().splitlines()[-1])
    if not args.no_torch:
        if "unsupported" in spec:
            args.parser.error(spec["unsupported"])
        probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True)
        if probe.returncode != 0:
            raise SystemExit("train_speed: torch is not installed; `pip install torch==2.13.0` (CPU) or pass --no-torch")

    if args.amp:
        args.amp_status = bf16_training_status()
        args.amp_allowed = args.amp_status == "allowed"
    runs = variants(args, spec)
    names = list(runs)
    crop = args.crop or spec.get("crop", "?")
    print(machine_line())
    print(f"batch {args.batch_size}, {crop}x{crop}, {args.bit} bits, {args.threads} threads each, "
          f"{args.rounds} rounds x {args.steps} timed steps (+{args.warmup} warm-up), one process at a time, "
          f"order alternating")
    results = {name: {"wall": [], "cpu": []} for name in names}
    versions = {}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            before = load_average()
            out = run_json(name, *runs[name])
            after = load_average()
            results[name]["wall"] += out["wall"]
            results[name]["cpu"] += out["cpu"]
            versions.update({k: out[k] for k in ("paddle", "torch") if k in out})
            median = statistics.median(out["wall"])
            print(f"round {r + 1} {name:<20} median step {median * 1000:8.1f} ms  {args.batch_size / median:6.1f} img/s  "
                  f"cpu {statistics.median(out['cpu']):.2f} s/step  loss {out['loss'][-1]:.4f}  "
                  f"load {before:.2f} -> {after:.2f}", flush=True)
    ips = {name: args.batch_size / statistics.median(res["wall"]) for name, res in results.items()}
    print(" ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    print(f"{'run':<21}{'img/s':>8}{'cpu s/step':>12}{'ratio to torch':>16}")
    for name in names:
        ratio = f"{ips[name] / ips['torch']:.2f}" if "torch" in ips else "-"
        print(f"{name:<21}{ips[name]:>8.1f}{statistics.median(results[name]['cpu']):>12.2f}{ratio:>16}")
    if args.amp:
        amp = f"torch {args.amp} autocast"
        if args.amp_allowed:
            print(f"paddle {args.amp} / {amp}: {ips['paddle ' + args.amp] / ips[amp]:.2f}")
        else:
            print(f"paddle {args.amp} training: {args.amp_status}")
    status = 0
    if args.check_baseline:
        diff = ips["torch"] / ips["torch alone"] - 1
        ok = abs(diff) <= BASELINE_TOLERANCE
        print(f"baseline check: torch reference alone {ips['torch alone']:.1f} img/s, inside the harness "
              f"{ips['torch']:.1f} img/s, difference {diff:+.1%} (limit {BASELINE_TOLERANCE:.0%}): "
              f"{'pass' if ok else 'FAIL'}")
        status = 0 if ok else 1
    print(f"train img/s: {ips['paddle']:.1f}")
    return status


if __name__ == "__main__":
    sys.exit(main())
