"""The timing loop both workers of train_speed.py run: the same inputs, warm-up and clock; and the
parents' way of running one worker process to its end (train_speed.py, bench_speed.py).

Standard library and numpy only, so the torch worker imports nothing of the project's (no
paddle, no second OpenMP runtime in its process).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np


def fixed_inputs(batch_size, crop, num_classes, seed=0):
    """Random images [n, 3, crop, crop], sparse multi-hot labels and indices 0..n-1 (numpy)."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, 3, crop, crop)).astype("float32")
    labels = (rng.random((batch_size, num_classes)) < 0.05).astype("float32")
    return images, labels, np.arange(batch_size, dtype="int64")


def cpu_seconds():
    usage = os.times()
    return usage.user + usage.system


def time_steps(step, inputs, warmup, steps):
    """Run `warmup` untimed steps, then `steps` timed ones: {"wall", "cpu", "loss"} lists."""
    for _ in range(warmup):
        step(*inputs)
    walls, cpus, losses = [], [], []
    for _ in range(steps):
        c, w = cpu_seconds(), time.perf_counter()
        losses.append(step(*inputs))
        walls.append(time.perf_counter() - w)
        cpus.append(cpu_seconds() - c)
    return {"wall": walls, "cpu": cpus, "loss": losses}


def run_json(cmd, env, cwd, what):
    """Run one worker process to its end (nothing else of the harness is alive meanwhile) and return its
    last stdout line as JSON; a failed worker: its stderr tail, then exit naming `what` and the command."""
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"{what} failed (exit {out.returncode}): {' '.join(cmd)}")
    return json.loads(lines[-1])
