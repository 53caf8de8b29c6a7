"""Load test of the image-search service: requests/s and p50/p99 latency of POST /search.

    python -m benchmarks.bench_serving [--model-dir DIR] [--clients 1 4 16] [--predictors 1 2]
                                       [--threads 1] [--requests 200] [--seconds 20] [--k 10]

Starts `python -m deploy.serving` itself on 127.0.0.1 (a free port; loopback only) over the lite
data set (generated when absent), once per (--predictors, --threads) pair, and for each number of
concurrent clients (threads, one httpx connection each) sends the lite query images round-robin
until --requests answers or --seconds have passed, whichever comes first, after a warm-up.
Without --model-dir it serves ./output/inference when that holds an exported model, else an
untrained lite-architecture model exported to a temporary folder (as fast as a trained one).
The clients run on the same machine as the service and take CPU from it: on a machine with few
cores the numbers are a lower bound, and on a shared machine they are noisy.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_serving [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time


from utils.runtime import configure
from benchmarks.machine import machine_line


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default=None, help="exported model (default: ./output/inference or an untrained one)")
    p.add_argument("--data-path", default="./datasets/lite/", help="lite data root (generated when absent)")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="concurrent clients, one run each")
    p.add_argument("--predictors", type=int, nargs="+", default=[1, 2], help="service --predictors, one service each")
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="service --threads (math threads per predictor; 0: cores / predictors), one service each")
    p.add_argument("--requests", type=int, default=200, help="answers per run (upper bound)")
    p.add_argument("--seconds", type=float, default=20.0, help="time per run (upper bound)")
    p.add_argument("--warmup", type=int, default=5, help="requests before each run, not timed")
    p.add_argument("--k", type=int, default=10, help="matches per search")
    args = p.parse_args()
    if min(args.clients) < 1 or min(args.predictors) < 1 or args.requests < 1 or args.seconds <= 0:
        p.error("--clients, --predictors and --requests must be >= 1, --seconds > 0")
    return args


def load(url, queries, clients, max_requests, seconds, k):
    """Run `clients` threads until max_requests answers or `seconds`; return (latencies s, errors, wall s)."""
    import httpx

    lock = threading.Lock()
    latencies, errors = [], []
    issued = [0]
    stop_at = time.perf_counter() + seconds

    def client(n):
        with httpx.Client(base_url=url, timeout=60) as http:
            i = n
            while time.perf_counter() < stop_at:
                with lock:
                    if issued[0] >= max_requests:
                        return
                    issued[0] += 1
                t0 = time.perf_counter()
                response = http.post("/search", files={"file": ("q.jpg", queries[i % len(queries)])}, data={"k": str(k)})
                elapsed = time.perf_counter() - t0
                with lock:
                    (latencies if response.status_code == 200 else errors).append(elapsed)
                i += clients

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - start


def percentile(values, q):
    """Nearest-rank percentile (no interpolation), q in 0..100."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 100)) - 1))]


def main():
    configure()
    args = parse_args()
    print(machine_line())
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

    from deploy.serving.launch import running_service
    from utils.data.lists import parse_list
    from utils.data.lite import ensure_lite_dataset
    from utils.storage.run_folder import RunFolder

    root = ensure_lite_dataset(args.data_path)
    paths, _ = parse_list(os.path.join(root, "test.txt"))
    queries = [open(os.path.join(root, p), "rb").read() for p in paths]
    work = tempfile.mkdtemp(prefix="bench_serving_")
    try:
        model_dir = args.model_dir
        exported = RunFolder().export
        if model_dir is None and os.path.isfile(exported.infer_cfg):
            model_dir = exported.path
        if model_dir is None:
            from deploy.serving.demo_model import export_untrained_model

            model_dir = export_untrained_model(os.path.join(work, "model"), root, bit=64)
            print(f"no {exported.path}: serving an untrained lite-architecture model ({model_dir})")
        rows = []
        for predictors, threads in [(p, t) for p in args.predictors for t in args.threads]:
            flags = ["--threads", str(threads), "--model-dir", model_dir, "--data-path", root, "--cache-dir", os.path.join(work, "cache"),
                     "--store-dir", os.path.join(work, "store"), "--read-only", "--predictors", str(predictors),
                     "--max-k", str(max(args.k, 1)), "--log-level", "warning"]
            with running_service(flags, timeout=300) as url:
                stats = httpx.get(url + "stats").json()
                print(f"service: {stats['database_size']} images, {stats['bit']} bits, {predictors} predictor(s) x "
                      f"{stats['threads_per_predictor']} thread(s), index {stats['index_plan']}", flush=True)
                load(url, queries, 1, args.warmup, args.seconds, args.k)
                for clients in args.clients:
                    latencies, errors, wall = load(url, queries, clients, args.requests, args.seconds, args.k)
                    rows.append((f"{predictors} x {stats['threads_per_predictor']}", clients, len(latencies), len(errors), len(latencies) / wall,
                                 1000 * statistics.median(latencies), 1000 * percentile(latencies, 99)))
                    print("  " + format_row(rows[-1]), flush=True)
        print(f"\nPOST /search, k={args.k}, lite query images, loopback, {os.cpu_count()} CPU cores "
              f"(clients share them with the service)")
        print("| predictors x threads | clients | answers | errors | requests/s | p50 ms | p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            print("| " + format_row(row, " | ") + " |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def format_row(row, sep="  "):
    predictors, clients, answers, errors, rps, p50, p99 = row
    return sep.join([str(predictors), str(clients), str(answers), str(errors), f"{rps:.1f}", f"{p50:.1f}", f"{p99:.1f}"])


if __name__ == "__main__":
    main()
