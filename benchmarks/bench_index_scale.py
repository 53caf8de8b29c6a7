"""Hamming search past one flat scan: every backend side by side with faiss IndexBinaryFlat, 1M-100M codes.

    python -m benchmarks.bench_index_scale                  # 1M and 10M codes, 32 and 64 bits, both kinds
    python -m benchmarks.bench_index_scale --sizes 100000000 --bits 64 --backends flat auto mih
    python -m benchmarks.bench_index_scale --quick          # 5,000 64-bit codes: seconds (the test runs it)

Codes (--kinds):
  uniform    every bit a fair coin: the worst case for hashing (the k-th neighbour of a query lies
             ~10-20 bits away at 64 bits).
  clustered  --classes centres (random codes, or the rows of --real-codes: codes of a trained model),
             each database code a centre with every bit flipped with probability --noise (default
             1/16: two codes of a class differ in 7.5 of 64 bits on average, the tightness at which a
             HashNet-like model finds images of the query's class within Hamming radius 2 at
             ImageNet-100 scale; 1,000 classes: 10,000 codes a class at 10M). Queries are fresh codes
             of random classes, not in the database. The run prints the distances of the 1st, 10th
             and 100th neighbours, so the regime is visible whatever the parameters.
Radius queries of uniform codes are database codes with 0-3 bits flipped (otherwise nothing is near).

Contenders (--backends): flat = faiss IndexBinaryFlat as shipped (heap search): the baseline; auto,
mih: this project's exact backends (HammingIndex); hnsw, ivf: approximate (faiss IndexBinaryHNSW,
--hnsw-m links, --hnsw-ef-construction; IndexBinaryIVF with sqrt(n) lists), run on configurations
up to --approx-max-n codes and --approx-also, each at several efSearch / nprobe settings. Per configuration: build
time (add plus what the first search builds: mih's tables, IVF's training; auto's first search,
which times its candidates, is shown apart), memory per code (the arrays each holds), ms/query (the
median of --repeats interleaved runs, after a warm-up), and against the exact answer (faiss' flat
scan, rows ordered by (distance, index), which tests/utils/retrieval pins to a pair-by-pair
reference): exact backends must be identical on every query, ties included; approximate ones
report recall@k (the share of the exact top-k distances, as a multiset, that they return: ties are
interchangeable) and, for radius, the share of the items within the radius they return.
Prints the CPU, the load average before and after, a table per configuration and the summary of
issue 28's claims; --plot writes ms/query against database size per backend (k=10), --json the rows.
"""
if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_index_scale [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter

import numpy as np

from benchmarks.machine import load_average, machine_line
from benchmarks.outputs import note_repository_writes
from benchmarks.scale_codes import make_codes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="database sizes")
    p.add_argument("--bits", type=int, nargs="+", default=[32, 64], help="code lengths")
    p.add_argument("--kinds", nargs="+", default=["uniform", "clustered"], choices=["uniform", "clustered"],
                   help="code distributions: uniform random bits, or noisy copies of --classes centres")
    p.add_argument("--k", type=int, nargs="+", default=[1, 10, 100], help="top-k values")
    p.add_argument("--radii", type=int, nargs="+", default=[0, 1, 2, 3], help="radius-search radii")
    p.add_argument("--queries", type=int, default=1000, help="queries per configuration")
    p.add_argument("--flat-queries", type=int, default=200, help="queries the (slow) flat scan is timed on")
    p.add_argument("--backends", nargs="+", default=["flat", "auto", "mih", "hnsw", "ivf"],
                   choices=["flat", "auto", "mih", "hnsw", "ivf"],
                   help="index backends timed (flat: faiss IndexBinaryFlat, the anchor every row is compared with)")
    p.add_argument("--approx-max-n", type=int, default=1_000_000, help="hnsw/ivf on databases up to this size")
    p.add_argument("--approx-also", nargs="*", default=["10000000:64:clustered"], metavar="N:BITS:KIND",
                   help="and on these configurations (an HNSW graph of 10M codes takes ~20-60 min to build)")
    p.add_argument("--hnsw-ef", type=int, nargs="+", default=[16, 32, 64, 128, 256], help="hnsw: efSearch values run")
    p.add_argument("--hnsw-m", type=int, default=32, help="hnsw: links per node (M; PP-ShiTu's HNSW32: 32)")
    p.add_argument("--hnsw-ef-construction", type=int, default=128,
                   help="hnsw: efConstruction, the candidate list of each insertion (the backend's 128; faiss' "
                        "default is 40, too short for classes of tied codes: docs/retrieval.md)")
    p.add_argument("--ivf-nprobe", type=int, nargs="+", default=[1, 4, 16, 64], help="ivf: nprobe values run")
    p.add_argument("--classes", type=int, default=1000, help="clustered: number of centres")
    p.add_argument("--noise", type=float, default=1 / 16, help="clustered: per-bit flip probability")
    p.add_argument("--real-codes", default=None, metavar="FILE.npy",
                   help="clustered: centres from these codes (+-1, 0/1 or packed rows of a trained model)")
    p.add_argument("--threads", type=int, default=2, help="search threads (faiss OpenMP, numpy workers)")
    p.add_argument("--build-threads", type=int, default=None,
                   help="threads building hnsw and ivf (default --threads; on a busy machine 1 can be faster: "
                        "faiss' OpenMP threads wait on each other)")
    p.add_argument("--repeats", type=int, default=3, help="timing rounds per setting (the fastest counts)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated codes and queries")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="keep the built hnsw / ivf indexes here and reuse them (an HNSW graph of 10M codes takes "
                        "long to build); the build time shown is then the one measured when it was built")
    p.add_argument("--plot", default=None, metavar="PNG", help="ms/query (k=10) against database size per backend")
    p.add_argument("--json", default=None, metavar="FILE", help="write every row as JSON")
    p.add_argument("--quick", action="store_true", help="5,000 64-bit codes, 40 queries, 1 repeat, 1 thread: seconds (the test)")
    args = p.parse_args(argv)
    for flag in ("hnsw_m", "hnsw_ef_construction"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.quick:
        args.sizes, args.bits, args.queries, args.flat_queries, args.repeats, args.threads = [5000], [64], 40, 40, 1, 1
        args.approx_max_n, args.approx_also, args.classes, args.hnsw_ef, args.ivf_nprobe = 5000, [], 50, [32], [4]
    return args


# contenders ---------------------------------------------------------------------------------------


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def race(contenders, repeats):
    """{name: (result, median seconds)}: a warm-up call each, then interleaved runs."""
    out = {name: fn() for name, fn in contenders.items()}
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            out[name], t = timed(fn)
            times[name].append(t)
    return {name: (out[name], statistics.median(times[name])) for name in contenders}


def recall(dist, exact):
    return float(np.mean([sum((Counter(a[a >= 0].tolist()) & Counter(b.tolist())).values()) / max(1, len(b))
                          for a, b in zip(dist, exact)]))


def build(faiss, name, db, bits, args):
    """(contender, build seconds, bytes held) of one contender; flat is faiss IndexBinaryFlat itself."""
    from utils.retrieval import HammingIndex

    if name == "flat":
        index = faiss.IndexBinaryFlat(db.shape[1] * 8)
        _, seconds = timed(lambda: index.add(db))
        return index, seconds, index.ntotal * index.code_size
    approximate = name in ("hnsw", "ivf")  # the slow builds: --build-threads
    options = {"m": args.hnsw_m, "ef_construction": args.hnsw_ef_construction} if name == "hnsw" else {}
    index = HammingIndex(bits, name, threads=(args.build_threads or args.threads) if approximate else args.threads,
                         **options)
    _, seconds = timed(lambda: index.add(db))
    if name == "mih":
        seconds += timed(index._impl.tables)[1]  # built by the first search otherwise
    if name == "ivf":
        seconds += timed(index._impl.train)[1]  # trained by the first search otherwise
    index._impl.threads = args.threads  # their searches run with --threads
    return index, seconds, index.memory_bytes()


def cache_path(args, name, db, bits, kind):
    graph = f"_m{args.hnsw_m}_efc{args.hnsw_ef_construction}" if name == "hnsw" else ""
    return os.path.join(args.cache_dir, f"{name}_{len(db)}_{bits}_{kind}_{args.seed}{graph}.hidx")


def cached(args, name, db, bits, kind):
    """A built hnsw / ivf index from --cache-dir (its graph or lists in the index file) when its codes
    are these; with the build time and memory it was measured with."""
    from utils.retrieval import HammingIndex

    if args.cache_dir is None or name not in ("hnsw", "ivf") or not os.path.isfile(cache_path(args, name, db, bits, kind)):
        return None
    path = cache_path(args, name, db, bits, kind)
    index = HammingIndex.load(path, threads=args.threads)
    if not np.array_equal(index.packed_codes(), db):
        return None
    with open(path + ".json", encoding="utf-8") as f:
        record = json.load(f)
    print(f"  {name}: reusing {path} (built in {record['build_s']:.1f} s before)")
    return index, record["build_s"], index.memory_bytes()


def keep(args, name, db, bits, kind, entry):
    if args.cache_dir is None or name not in ("hnsw", "ivf"):
        return
    path = cache_path(args, name, db, bits, kind)
    if not os.path.isfile(path):
        os.makedirs(args.cache_dir, exist_ok=True)
        entry[0].save(path)
        with open(path + ".json", "w", encoding="utf-8") as f:
            json.dump({"build_s": entry[1]}, f)


def settings(name, index, args):
    """(label, apply) for each search setting of an approximate contender; one plain entry otherwise."""
    if name == "hnsw":
        return [(f"efSearch>={ef}", lambda ef=ef: setattr(index._impl, "ef_search", ef)) for ef in args.hnsw_ef]
    if name == "ivf":
        return [(f"nprobe={p}", lambda p=p: setattr(index._impl, "nprobe", p)) for p in args.ivf_nprobe]
    return [("", lambda: None)]


# one configuration ----------------------------------------------------------------------------------


def ranked(dist, idx):
    """Rows in (distance, index) order, the order every exact backend answers in."""
    n = int(idx.max(initial=0)) + 1
    key = dist.astype(np.int64) * n + idx
    key.sort(axis=1)
    return np.divmod(key, n)


def exact_ranges(flat, queries, radius):
    lims, dist, idx = flat.range_search(queries, radius + 1)  # faiss: distance < radius + 1
    out = []
    for a, b in zip(lims[:-1], lims[1:]):
        order = np.lexsort((idx[a:b], dist[a:b]))
        out.append((dist[a:b][order].astype(np.int64), idx[a:b][order].astype(np.int64)))
    return out


def approximate_here(args, n, bits, kind):
    return n <= args.approx_max_n or f"{n}:{bits}:{kind}" in args.approx_also


def contenders_for(args, name, index, op, arg, queries):
    """{label: search()} of one built contender for one top-k (op "k") or radius (op "r") search."""
    if name == "flat":
        q = queries[:args.flat_queries]
        if op == "k":
            return {"flat": lambda: index.search(q, arg)}
        return {"flat": lambda: index.range_search(q, arg + 1)}
    out = {}
    for label, apply in settings(name, index, args):
        def run(apply=apply):
            apply()
            return index.search(queries, arg) if op == "k" else index.range_search(queries, arg)
        run.apply = apply
        out[f"{name} {label}".strip()] = run
    return out


def judge(name, got, op, arg, truth):
    """'identical' / 'DIFFERENT' for exact contenders, the recall for approximate ones."""
    if op == "k":
        want_d, want_i = truth[0][:len(got[0]), :arg], truth[1][:len(got[0]), :arg]
        if name == "flat":
            return "identical" if np.array_equal(ranked(*got)[0], want_d) else "DIFFERENT", None
        if name in ("hnsw", "ivf"):
            return None, recall(got[0], want_d)
        same = np.array_equal(got[0], want_d) and np.array_equal(got[1], want_i)
        return "identical" if same else "DIFFERENT", None
    want = truth[:len(got)]
    if name == "flat":
        return "identical", None
    if name in ("hnsw", "ivf"):
        found, total = sum(len(g[1]) for g in got), sum(len(w[1]) for w in want)
        return None, found / total if total else 1.0
    same = all(np.array_equal(g[0], w[0]) and np.array_equal(g[1], w[1]) for g, w in zip(got, want))
    return "identical" if same else "DIFFERENT", None


def run_config(faiss, args, n, bits, kind, rows):
    t0 = time.perf_counter()
    rng = np.random.default_rng([args.seed, n, bits, kind == "clustered"])  # the same codes whatever else runs
    db, queries, near = make_codes(args, rng, n, bits, kind)
    names = [b for b in args.backends if b not in ("hnsw", "ivf") or approximate_here(args, n, bits, kind)]
    print(f"\n== {n:,} {kind} {bits}-bit codes, {len(queries)} queries (flat scan timed on {args.flat_queries}), "
          f"{args.threads} threads; codes made in {time.perf_counter() - t0:.1f} s")
    built = {}
    for name in ["flat"] + [b for b in names if b != "flat"]:
        built[name] = cached(args, name, db, bits, kind) or build(faiss, name, db, bits, args)
        keep(args, name, db, bits, kind, built[name])
        print(f"  built {name:<6} {built[name][1]:9.2f} s  {built[name][2] / n:8.1f} bytes/code", flush=True)
    flat = built["flat"][0]
    kmax = min(max(args.k), n)
    truth_k = ranked(*flat.search(queries, kmax))
    truth_r = exact_ranges(flat, near, max(args.radii))
    marks = [j for j in (0, 9, 99) if j < kmax]
    print("  exact neighbour distances (median over queries): " +
          ", ".join(f"{j + 1}st/th {np.median(truth_k[0][:, j]):.0f}" for j in marks) +
          f"; items within radius {max(args.radii)}: {np.mean([len(w[1]) for w in truth_r]):.1f} a query")
    for op, values in (("k", args.k), ("r", args.radii)):
        for arg in values:
            truth = (truth_k[0], truth_k[1]) if op == "k" else \
                [(d[d <= arg], i[d <= arg]) for d, i in truth_r]
            qs = queries if op == "k" else near
            first = {}
            if "auto" in built:  # the first search times auto's candidates: shown apart
                search = built["auto"][0].search if op == "k" else built["auto"][0].range_search
                first["auto"] = timed(lambda: search(qs, arg))[1]
            contenders = {}
            for name in names:
                contenders.update(contenders_for(args, name, built[name][0], op, arg, qs))
            results = race(contenders, args.repeats)
            base = results["flat"][1] / min(args.flat_queries, len(qs))
            print(f"  {'top-' + str(arg) if op == 'k' else 'radius ' + str(arg)}")
            for label, (got, seconds) in results.items():
                name = label.split()[0]
                per = seconds / (min(args.flat_queries, len(qs)) if name == "flat" else len(qs))
                verdict, rec = judge(name, got, op, arg, truth)
                getattr(contenders[label], "apply", lambda: None)()  # the row's setting, for its plan
                plan = built[name][0].plan(k=arg) if op == "k" and name != "flat" else \
                    built[name][0].plan(radius=arg) if name != "flat" else "faiss IndexBinaryFlat (heap search)"
                note = verdict or f"recall {rec:.4f}"
                extra = f"; first search {first['auto'] * 1000 / len(qs):.3f} ms/q (times the paths)" \
                    if name == "auto" else ""
                print(f"    {label:<20} {per * 1000:10.4f} ms/q {base / per:9.1f}x flat  {note:<16} {plan}{extra}")
                rows.append({"n": n, "bits": bits, "kind": kind, "op": "topk" if op == "k" else "radius", "arg": arg,
                             "backend": name, "setting": label[len(name):].strip(), "ms_per_query": per * 1000,
                             "speedup_vs_flat": base / per, "verdict": verdict, "recall": rec,
                             "build_s": built[name][1], "bytes_per_code": built[name][2] / n, "plan": plan})
    del built, db


# summary, plot ----------------------------------------------------------------------------------------


def summary(rows):
    print("\nsummary (issue 28)")
    for row in rows:
        if row["op"] == "topk" and row["arg"] == 10 and row["backend"] == "mih":
            auto = next((r for r in rows if r["op"] == "topk" and r["arg"] == 10 and r["backend"] == "auto"
                         and (r["n"], r["bits"], r["kind"]) == (row["n"], row["bits"], row["kind"])), None)
            print(f"  {row['n']:>11,} {row['kind']:<9} {row['bits']}-bit, top-10: mih {row['speedup_vs_flat']:.1f}x "
                  f"faiss IndexBinaryFlat, {row['verdict']} on every query"
                  + (f"; auto {auto['speedup_vs_flat']:.1f}x, took: {auto['plan'].split(';')[0]}" if auto else ""))
    for row in rows:
        if row["op"] == "topk" and row["arg"] == 10 and row["backend"] == "hnsw":
            print(f"  {row['n']:>11,} {row['kind']:<9} {row['bits']}-bit, top-10: hnsw {row['setting']:<13} recall@10 "
                  f"{row['recall']:.4f} at {row['speedup_vs_flat']:.1f}x faiss IndexBinaryFlat")
    bad = [r for r in rows if r["verdict"] == "DIFFERENT"]
    print(f"  exact backends identical to the flat scan on every query of every search: {not bad}")
    return not bad


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["bits"], r["kind"]) for r in rows})
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (bits, kind) in zip(axes[0], groups):
        mine = [r for r in rows if (r["bits"], r["kind"], r["op"], r["arg"]) == (bits, kind, "topk", 10)]
        for name, setting in dict.fromkeys((r["backend"], r["setting"]) for r in mine):
            pts = sorted((r["n"], r["ms_per_query"]) for r in mine if (r["backend"], r["setting"]) == (name, setting))
            label = f"{name} {setting} [approximate]" if setting else name
            ax.plot(*zip(*pts), marker="o", label=label, linestyle="--" if setting else "-")
        ax.set(xscale="log", yscale="log", xlabel="database size (codes)", ylabel="ms / query (top-10)",
               title=f"{bits}-bit {kind} codes")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


def main(argv=None):
    args = parse_args(argv)
    note_repository_writes(plot=args.plot)
    import faiss

    from utils.runtime import configure

    configure()
    faiss.omp_set_num_threads(args.threads)
    print(machine_line())
    print(f"numpy {np.__version__}, faiss {faiss.__version__}; command: python -m benchmarks.bench_index_scale "
          + " ".join(argv if argv is not None else sys.argv[1:]))
    start_load = load_average()
    rows = []
    for n in args.sizes:
        for bits in args.bits:
            for kind in args.kinds:
                run_config(faiss, args, n, bits, kind, rows)
    ok = summary(rows)
    print(f"  load average {start_load:.2f} at the start, {load_average():.2f} at the end (other work skews times)")
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
