"""Run one config over several seeds and report mAP mean +- std.

    python scripts/run_seeds.py --seeds 0 1 2 -- --bit 64 --epoch 30
Everything after `--` goes to main_single_gpu.py (config, flags, -o overrides); each seed
writes to <output-dir>/seed_<S>/. The table is printed and written to <output-dir>/seeds_<K>.txt.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds to run")
    p.add_argument("--output-dir", default="./output/seeds", help="parent folder of the per-seed outputs")
    p.add_argument("--bit", type=int, default=64, help="code length (also passed to training)")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then main_single_gpu.py arguments")
    args = p.parse_args(argv)
    extra = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    values = []
    for seed in args.seeds:
        out = os.path.join(args.output_dir, f"seed_{seed}")
        cmd = [sys.executable, "main_single_gpu.py", "--seed", str(seed), "--bit", str(args.bit),
               "--output-dir", out, *extra]
        print("running:", " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        found = re.findall(r"^mAP@(\S+): ([0-9.]+)$", proc.stdout, re.M)
        if proc.returncode != 0 or not found:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            sys.exit(f"error: seed {seed} failed: {tail[0]}")
        label, value = found[-1][0], float(found[-1][1])
        values.append(value)
        print(f"seed {seed}: mAP@{label} {value:.4f}", flush=True)
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    lines = [f"{'seed':>6} mAP@{label}"] + [f"{s:>6} {v:.4f}" for s, v in zip(args.seeds, values)]
    lines.append(f"mAP@{label} over {len(values)} seeds: {mean:.4f} +- {std:.4f} (sample std)")
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, f"seeds_{args.bit}.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
