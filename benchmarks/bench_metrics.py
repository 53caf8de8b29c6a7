"""mAP@5000 at COCO scale: utils.metrics vs a plain per-query implementation.

    python -m benchmarks.bench_metrics [--queries N] [--db N] [--bit K] [--topk N]

The plain reference is what most deep-hashing repos ship: for each query,
Hamming distances by a +-1 matrix product, np.argsort(kind="stable") on the
row, relevance by a label product, AP by cumsum. It runs on the first
--queries queries only (it is slow); both implementations are compared on
exactly those queries, and the project's one is also timed on all of them.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_metrics [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import os
import resource
import sys
import time
import tracemalloc

import numpy as np


from utils.evaluation.metrics import mean_average_precision
from benchmarks.machine import machine_line


def make_data(nq, ndb, nbits, ncls, seed=0):
    """Multi-hot labels (about 3 per image, like COCO) and codes that are a noisy
    sign of the sum of per-class centres, so mAP lands well away from 0 and 1."""
    rng = np.random.default_rng(seed)
    n = nq + ndb
    freq = rng.dirichlet(np.full(ncls, 0.5)) * 2.9
    labels = rng.random((n, ncls)) < np.minimum(freq, 0.9)
    empty = ~labels.any(axis=1)
    labels[empty, rng.integers(0, ncls, empty.sum())] = True
    centres = rng.standard_normal((ncls, nbits)).astype(np.float32)
    signal = labels.astype(np.float32) @ centres
    noise = rng.standard_normal((n, nbits)).astype(np.float32) * 2.5
    codes = np.where(signal + noise > 0, 1, -1).astype(np.int8)
    labels = labels.astype(np.uint8)
    return codes[:nq], codes[nq:], labels[:nq], labels[nq:]


def reference_map(q, d, ql, dl, topk):
    """Per-query loop: matrix-product distances, stable argsort, cumsum AP."""
    nbits = q.shape[1]
    d_f = d.astype(np.float32)
    dl_f = dl.astype(np.float32)
    total = 0.0
    for i in range(q.shape[0]):
        dist = np.rint(0.5 * (nbits - d_f @ q[i].astype(np.float32))).astype(np.int64)
        order = np.argsort(dist, kind="stable")[:topk]
        rel = (dl_f[order] @ ql[i].astype(np.float32)) > 0
        hits = np.cumsum(rel)
        if hits[-1] == 0:
            continue
        ranks = np.arange(1, len(order) + 1)
        total += float(np.sum((hits / ranks)[rel]) / hits[-1])
    return total / q.shape[0]


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return value, seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000,
                        help="queries the slow reference runs on (default 1000; 5000 = all, ~1 min)")
    parser.add_argument("--total-queries", type=int, default=5000, help="queries the project's mAP runs on (default 5000, COCO's)")
    parser.add_argument("--db", type=int, default=117218, help="database codes (default 117218, COCO's)")
    parser.add_argument("--bit", type=int, default=64, help="code length (default 64)")
    parser.add_argument("--classes", type=int, default=80, help="labels of the generated multi-label data (default 80, COCO's)")
    parser.add_argument("--topk", type=int, default=5000, help="mAP@topk (default 5000)")
    args = parser.parse_args()
    print(machine_line())

    t0 = time.perf_counter()
    q, d, ql, dl = make_data(args.total_queries, args.db, args.bit, args.classes)
    nref = max(1, min(args.queries, args.total_queries))
    print(f"data: {args.total_queries} queries x {args.db} database, {args.bit} bits, "
          f"{args.classes} labels, mAP@{args.topk}  (generated in {time.perf_counter() - t0:.1f}s, "
          f"{os.cpu_count()} CPUs, numpy {np.__version__})")

    full, t_full, m_full = measure(lambda: mean_average_precision(q, d, ql, dl, topk=args.topk))
    print(f"project   all {args.total_queries:5d} queries: mAP={full:.6f}  "
          f"time={t_full:7.2f}s  peak traced memory={m_full / 2**20:7.1f} MiB")

    mine, t_mine, m_mine = measure(
        lambda: mean_average_precision(q[:nref], d, ql[:nref], dl, topk=args.topk))
    ref, t_ref, m_ref = measure(lambda: reference_map(q[:nref], d, ql[:nref], dl, args.topk))
    print(f"project   first {nref:5d} queries: mAP={mine:.6f}  "
          f"time={t_mine:7.2f}s  peak traced memory={m_mine / 2**20:7.1f} MiB")
    print(f"reference first {nref:5d} queries: mAP={ref:.6f}  "
          f"time={t_ref:7.2f}s  peak traced memory={m_ref / 2**20:7.1f} MiB")
    print(f"speed-up on the same queries: {t_ref / t_mine:.1f}x; reference extrapolated to "
          f"{args.total_queries} queries: {t_ref * args.total_queries / nref:.1f}s")
    same = abs(mine - ref) <= 1e-6
    print(f"equal to 1e-6: {same}  (|diff| = {abs(mine - ref):.2e})")
    print(f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
