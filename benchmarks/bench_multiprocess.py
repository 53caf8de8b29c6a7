"""Lite-data training epoch time: 1 process vs N data-parallel CPU processes, in one run.

    python -m benchmarks.bench_multiprocess [--nproc 2] [--epochs 2] [--rounds 2]

Runs main_single_gpu.py and `paddle.distributed.launch --nproc_per_node N main_multi_gpu.py`
alternately on the lite data with the same per-process batch, and prints the median epoch
time of each (the first epoch is warm-up and excluded) and their ratio.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_multiprocess [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

from benchmarks.machine import machine_line

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def epoch_seconds(text, skip_first=True):
    times = [float(m.group(2)) for m in re.finditer(r"epoch (\d+)/\d+ loss .* \(([0-9.]+)s\)", text)]
    return times[1:] if skip_first and len(times) > 1 else times


def run(cmd, log_dir=None):
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{(proc.stdout + proc.stderr)[-3000:]}")
    if log_dir:  # the launcher echoes rank 0's output too: read rank 0's own log only
        return open(os.path.join(log_dir, "workerlog.0")).read()
    return proc.stdout + proc.stderr


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, default=2, help="training processes of the data-parallel run (default 2)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each run (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="alternating repetitions of the pair")
    p.add_argument("--data-path", default="./datasets/lite/", help="lite data root (default ./datasets/lite/)")
    args = p.parse_args()
    common = ["--data-path", args.data_path, "--epoch", str(args.epochs), "-o", "train.eval_untrained=false",
              "-o", f"train.eval_every={args.epochs}"]
    single, multi = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            single += epoch_seconds(run([sys.executable, "main_single_gpu.py", "--output-dir", f"{tmp}/s{r}", *common]))
            log_dir = f"{tmp}/m{r}/launch"
            multi += epoch_seconds(run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node",
                                        str(args.nproc), "--log_dir", log_dir, "main_multi_gpu.py",
                                        "--output-dir", f"{tmp}/m{r}", *common], log_dir))
    s, m = statistics.median(single), statistics.median(multi)
    print(machine_line())
    print("lite epoch (500 images), batch 32 per process")
    print(f"1 process:   median {s:.1f} s/epoch  ({', '.join(f'{x:.1f}' for x in single)})")
    print(f"{args.nproc} processes: median {m:.1f} s/epoch  ({', '.join(f'{x:.1f}' for x in multi)})")
    print(f"ratio {args.nproc}-process / 1-process epoch time: {m / s:.2f}")


if __name__ == "__main__":
    main()
