"""The incremental path of a folder search (predict.py / the service's --database-dir): how long bringing
a folder's code cache up to date takes when nothing is cached, after a few images were added, and when
nothing changed.

    python -m benchmarks.bench_database_dir                       # 2,000 images, 10 added, the tests' tiny network
    python -m benchmarks.bench_database_dir --images 500 --full   # the full AlexNet at 224 px (slow on a CPU)

A folder of --images generated 48x48 JPEGs (in a temporary folder, removed afterwards) is searched with an
untrained network built here (deterministic codes; speed is what matters): by default the tests' tiny
one (AlexNet with fc 64 on 64x64 crops of 72 px images), with --full the default config (fc 4096, 224
crops of 256 px). Each run is what predict.py does after loading the model: a Searcher over one
FolderSource (scan, stat, cache read, encode what is new, cache write, index). Runs: first (no cache),
added (--added more images), unchanged (nothing to do). Prints the CPU first, then each run's seconds,
images encoded, and the ratio to the first run; timings taken on a busy machine are noisy: compare the
rows of one run, not runs of different days.
"""
from __future__ import annotations

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_database_dir [flags]",
          file=sys.stderr)
    raise SystemExit(2)
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from benchmarks.machine import machine_line
from utils.cli import exit_on_user_error
from utils.errors import UserError
from utils.runtime import configure

TINY = ["model.fc_dim=64", "dataset.resize_size=72", "dataset.crop_size=64"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=2000, help="images in the folder at the first run")
    p.add_argument("--added", type=int, default=10, help="images added before the second run")
    p.add_argument("--bit", type=int, default=64, help="code length")
    p.add_argument("--full", action="store_true", help="the default AlexNet config (224 px, fc 4096), not the tiny one")
    p.add_argument("--batch-size", type=int, default=32, help="images encoded a batch")
    p.add_argument("--num-workers", type=int, default=2, help="image decoding threads")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--work-dir", default=None, help="where the folder and the cache are made (default: a temp folder)")
    args = p.parse_args(argv)
    if args.images < 1 or args.added < 1:
        raise UserError("--images and --added must be >= 1")
    return args


def write_images(folder, start, count):
    """count 48x48 JPEGs of seeded noise blocks, 100 a sub-folder, like a camera's folders."""
    import cv2

    for i in range(start, start + count):
        rng = np.random.default_rng(i)
        pixels = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (48, 48), interpolation=cv2.INTER_NEAREST)
        path = os.path.join(folder, f"{i // 100:03d}", f"IMG_{i:05d}.jpg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        ok, buf = cv2.imencode(".jpg", pixels)
        with open(path, "wb") as f:
            f.write(buf.tobytes())


def build_encoder(args, work):
    import paddle

    from models import build_model
    from utils.config import build_config
    from utils.inference.encoders import DygraphEncoder
    from utils.runtime.device import setup_device

    cfg = build_config(None, {"bit": args.bit}, [] if args.full else TINY)
    setup_device("cpu", args.threads)
    paddle.seed(0)
    weights = os.path.join(work, f"untrained_{args.bit}")
    paddle.save(build_model(cfg).state_dict(), weights + ".pdparams")
    return DygraphEncoder(cfg, weights)


def timed_run(encoder, folder, cache, args):
    """Seconds to a ready Searcher over the folder, and its FolderSync."""
    from utils.inference.folder_source import FolderSource
    from utils.inference.searcher import Searcher

    source = FolderSource(folder, cache)
    start = time.perf_counter()
    searcher = Searcher(encoder, [source], batch_size=args.batch_size, num_workers=args.num_workers,
                        log=lambda *a: None)
    seconds = time.perf_counter() - start
    assert source.last is not None and len(searcher) == len(source.last.codes.paths)
    return seconds, source.last


@exit_on_user_error
def main(argv=None):
    from utils.runtime.log import quiet_library_logging

    configure()
    quiet_library_logging()
    args = parse_args(argv)
    print(machine_line())
    print("command: python -m benchmarks.bench_database_dir " + " ".join(argv if argv is not None else sys.argv[1:]))
    work = tempfile.mkdtemp(prefix="bench_database_dir-", dir=args.work_dir)
    try:
        folder, cache = os.path.join(work, "photos"), os.path.join(work, "cache")
        write_images(folder, 0, args.images)
        encoder = build_encoder(args, work)
        network = "AlexNet fc 4096, 224 px" if args.full else "AlexNet fc 64, 64 px crops (the tests' tiny one)"
        print(f"folder: {args.images:,} images of 48x48 px; network: {network}, {args.bit} bits; "
              f"batch {args.batch_size}, {args.num_workers} decoding threads")
        write_images(os.path.join(work, "warm-up"), 0, 4)  # untimed: the first forward pass, faiss' import
        timed_run(encoder, os.path.join(work, "warm-up"), cache, args)
        rows = [("first (no cache)", *timed_run(encoder, folder, cache, args))]
        write_images(folder, args.images, args.added)
        rows.append((f"{args.added} added", *timed_run(encoder, folder, cache, args)))
        rows.append(("unchanged", *timed_run(encoder, folder, cache, args)))
        first = rows[0][1]
        print(f"{'run':<18} {'images':>7} {'encoded':>8} {'from cache':>10} {'seconds':>9} {'vs first':>9}")
        for name, seconds, sync in rows:
            print(f"{name:<18} {len(sync.codes.paths):>7,} {sync.encoded:>8,} {sync.reused:>10,} {seconds:>9.3f} "
                  f"{seconds / first:>8.4f}x")
        if rows[1][2].encoded != args.added:
            raise SystemExit(f"error: the second run encoded {rows[1][2].encoded} images, not {args.added}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
