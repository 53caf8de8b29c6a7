"""Run one config over several seeds and report mAP mean +- std.

    python -m scripts.run_seeds --seeds 0 1 2 -- --bit 64 --epoch 30
Everything after `--` goes to main_single_gpu.py (config, flags, -o overrides), which runs from
the current folder. Each seed writes to <output-dir>/seed_<S>/, where <output-dir> is this
script's --output-dir, else the --output-dir given after `--`, else ./output/seeds. The table is
printed and written to <output-dir>/seeds_<K>.txt, K being the bit count the runs trained
(from --bit, the config or -o model.bit=K).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

from utils.cli import exit_on_user_error
from utils.errors import UserError
from utils.runtime import configure
from utils.storage.run_folder import RunFolder

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

DEFAULT_OUTPUT = os.path.join(RunFolder().path, "seeds")


def training_settings(train_args):
    """(bit count, --output-dir or None) that main_single_gpu.py resolves from these arguments."""
    from utils.cli.flags import train_parser
    from utils.config import build_config

    parser = train_parser("main_single_gpu.py")
    parser.prog = "run_seeds.py -- (main_single_gpu.py arguments)"  # a bad one ends as argparse's one-line error
    args = parser.parse_args(train_args)
    if args.seed is not None:
        raise UserError("--seed after `--`: the seeds come from --seeds")
    flags = {k: getattr(args, k) for k in ("dataset", "data_path", "list_dir", "bit", "output_dir")}
    cfg = build_config(args.config, flags, args.override)
    return cfg["model"]["bit"], args.output_dir


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run, one folder each")
    p.add_argument("--output-dir", "--output_dir", default=None,
                   help=f"parent folder of the per-seed outputs (default: the --output-dir after `--`, "
                        f"else {DEFAULT_OUTPUT})")
    p.add_argument("--bit", type=int, default=None,
                   help="code length, passed to training (default: what the arguments after `--` or the config say)")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then main_single_gpu.py arguments")
    args = p.parse_args(argv)
    args.train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if len(set(args.seeds)) != len(args.seeds):
        raise UserError(f"--seeds: each seed once, got {args.seeds}")
    return args


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    extra = args.train_args + (["--bit", str(args.bit)] if args.bit is not None else [])
    bit, train_output = training_settings(extra)
    if args.output_dir and train_output and os.path.abspath(args.output_dir) != os.path.abspath(train_output):
        raise UserError(f"--output-dir {args.output_dir} and --output-dir {train_output} after `--` disagree; give one")
    parent = args.output_dir or train_output or DEFAULT_OUTPUT
    values, label = [], "all"
    for seed in args.seeds:
        out = os.path.join(parent, f"seed_{seed}")
        # the per-seed flags come last, so they win over anything given after `--`
        cmd = [sys.executable, os.path.join(ROOT, "main_single_gpu.py"), *extra, "--seed", str(seed),
               "--output-dir", out]
        print("running:", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = re.findall(r"^mAP@(\S+): ([0-9.]+)$", proc.stdout, re.M)
        if proc.returncode != 0 or not found:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"seed {seed} failed: {tail[0]}")
        label, value = found[-1][0], float(found[-1][1])
        values.append(value)
        print(f"seed {seed}: mAP@{label} {value:.4f}", flush=True)
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    lines = [f"{'seed':>6} mAP@{label}"] + [f"{s:>6} {v:.4f}" for s, v in zip(args.seeds, values)]
    lines.append(f"mAP@{label} over {len(values)} seeds ({bit} bits): {mean:.4f} +- {std:.4f} (sample std)")
    os.makedirs(parent, exist_ok=True)
    from utils.storage.fileio import atomic_open

    summary = os.path.join(parent, f"seeds_{bit}.txt")
    with atomic_open(summary, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"summary: {summary}")


if __name__ == "__main__":
    main()
