"""Retrieval quality without labels on real images: the methods that learn without labels beside their floors.

    python -m benchmarks.quality_unsupervised          # bihalf greedyhash_unsup cibhash + pcah sh, 16/64 bits, seeds 0 1 2
    python -m benchmarks.quality_real --no-labels      # the same, through quality_real
    python -m benchmarks.quality_unsupervised --methods bihalf --bits 16 --seeds 0 --epochs 5

Data: the digits of benchmarks/quality_real.py (tools/make_digits_split.py: 1,797 real 8x8 scans, 10 classes,
200 queries, 1,597 database images), labels used for evaluation only. Every method trains (or is fitted) on the
1,597 database images listed WITHOUT labels (<data-dir>/no_labels/train.txt, written once: the lists' path
column), as unsupervised hashing protocols do (the training images are the database), and is evaluated on the
200 labelled queries against the labelled database, mAP@all. Each run uses its lite config
(configs/methods/<method>_lite.yaml: the untrained lite network of quality_real.py, AlexNet-BN, fc 1024, 64x64
crops, its backbone frozen) and the schedule of quality_real.py (--epochs, one evaluation after the last), and
reports beside its mAP: its untrained network (evaluated before the first step) and LSH and ITQ fitted on the
same network's backbone features of the same training images (the features its head trains on). The shallow
rows (pcah, sh: configs/methods/<method>_lite.yaml) are fitted on those features too.
Outputs in --output-dir: runs.jsonl, quality_unsupervised.{txt,md}; the table starts with the CPU and the command.
"""
if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.quality_unsupervised [flags]",
          file=sys.stderr)
    raise SystemExit(2)
import argparse
import json
import os
import sys

from benchmarks.compare_methods import render_table
from benchmarks.machine import machine_line
from utils.cli import exit_on_user_error
from utils.errors import UserError
from utils.runtime import configure

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

DEFAULT_METHODS = ("bihalf", "greedyhash_unsup", "cibhash", "pcah", "sh")
DEFAULT_EPOCHS = 20  # quality_real.py's schedule


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="methods that learn without labels")
    p.add_argument("--bits", type=int, nargs="+", default=[16, 64], help="code lengths")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (weights, data order, projections)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs of every run")
    p.add_argument("--data-dir", default="./datasets/digits", help="where the digits images and lists are written")
    p.add_argument("--output-dir", default="./output/quality_unsupervised", help="runs, runs.jsonl and the table")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--reuse", nargs="+", default=[], metavar="RUNS_JSONL",
                   help="take finished runs (same method, bits, seed, epochs and -o overrides) from earlier runs.jsonl "
                        "files instead of running them again (e.g. runs split over two processes); the header counts them")
    args = p.parse_args(argv)
    if args.epochs < 1:
        raise UserError(f"--epochs: must be >= 1, got {args.epochs}")
    from utils.losses import loss_class

    for name in args.methods:
        if loss_class(name).SUPERVISED:
            raise UserError(f"--methods: {name!r} learns from labels; this table is for the methods that do not")
    return args


def unlabelled_lists(data_dir):
    """<data_dir>/no_labels/: train.txt = the database's paths without labels; test/database as they are."""
    folder = os.path.join(data_dir, "no_labels")
    os.makedirs(folder, exist_ok=True)
    from utils.storage.fileio import atomic_open

    with open(os.path.join(data_dir, "database.txt"), encoding="utf-8") as f:
        database = f.read()
    texts = {"train.txt": "".join(line.split()[0] + "\n" for line in database.splitlines() if line.strip()),
             "database.txt": database}
    with open(os.path.join(data_dir, "test.txt"), encoding="utf-8") as f:
        texts["test.txt"] = f.read()
    for name, text in texts.items():
        with atomic_open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.write(text)
    return folder


def run_config(method, bit, seed, args, lists, out_dir):
    from utils.config import build_config

    flags = {"dataset": "digits", "data_path": args.data_dir, "list_dir": lists, "bit": bit, "seed": seed,
             "epoch": args.epochs, "output_dir": out_dir, "device": "cpu", "threads": args.threads}
    schedule = [f"train.eval_every={args.epochs}", "train.eval_untrained=true", "dataset.topk=-1"]
    return build_config(os.path.join(ROOT, "configs", "methods", f"{method}_lite.yaml"), flags,
                        schedule + list(args.override))


def floors(engine, bit, seed):
    """LSH and ITQ on the engine's network's backbone features (before training) of its training images."""
    from utils.data.loader import build_dataloader
    from utils.evaluation.baselines import fit_itq, fit_lsh
    from utils.evaluation.metrics import mean_average_precision
    from utils.inference.features import backbone_features
    from utils.training.builders import build_split

    cfg = engine.cfg
    plain = build_split(cfg, engine.data.lists["train"], train=False)  # the training images, no augmentation
    train_x, _ = backbone_features(engine.model, build_dataloader(plain, 64, False, False))
    (q_x, q_y), (db_x, db_y) = (backbone_features(engine.model, loader)
                                for loader in (engine.query_loader, engine.db_loader))
    result = {}
    for name, fit in (("lsh", fit_lsh), ("itq", fit_itq)):
        hasher = fit(train_x, bit, seed=seed)
        result[name] = mean_average_precision(hasher.encode(q_x), hasher.encode(db_x), q_y, db_y)
    return result


def earlier_runs(paths, args, same_schedule=lambda record: True):
    """{(method, bit, seed): record} of the finished runs in earlier runs.jsonl files with this schedule
    (epochs, overrides and whatever else `same_schedule` checks)."""
    earlier = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    r = json.loads(line)
                    if "error" not in r and r.get("epochs") == args.epochs and r.get("overrides") == args.override \
                            and same_schedule(r):
                        earlier[(r["method"], r["bit"], r["seed"])] = r
        except (OSError, ValueError) as exc:
            raise UserError(f"--reuse {path}: cannot read it ({exc})") from None
    return earlier


def one_run(method, bit, seed, args, lists, out_dir):
    import numpy as np

    from utils.losses import is_shallow
    from utils.training.engine import Engine

    engine = Engine(run_config(method, bit, seed, args, lists, out_dir), save_checkpoints=False, show_progress=False)
    record = floors(engine, bit, seed)
    result = engine.fit() if is_shallow(method) else engine.train()
    record.update(map=result["map"], untrained=result["history"].get("untrained"),
                  epoch_seconds=sum(result["epoch_seconds"]) / max(len(result["epoch_seconds"]), 1))
    q_codes = engine.best_codes[0]
    record["distinct"] = len(np.unique(q_codes, axis=0)) / len(q_codes)
    return record


def table(rows, markdown):
    columns = ["method", "bits", "mAP@all", "its untrained network", "LSH (same features)", "ITQ (same features)",
               "runs above all three", "distinct query codes (min)"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["method"], str(r["bit"]), "failed", "-", "-", "-", "-", "-"])
            continue
        untrained = "-" if r["untrained"] is None else f"{r['untrained']:.4f}"
        body.append([r["method"], str(r["bit"]), f"{r['map']:.4f} +- {r['map_std']:.4f}", untrained,
                     f"{r['lsh']:.4f}", f"{r['itq']:.4f}", f"{r['above']}/{r['runs']}", f"{r['distinct']:.0%}"])
    return render_table(columns, body, markdown)


def summarize(runs, methods, bits):
    from benchmarks.compare_methods import mean_std

    rows = []
    for method in methods:
        for bit in bits:
            done = [r for r in runs if r["method"] == method and r["bit"] == bit]
            ok = [r for r in done if "error" not in r]
            row = {"method": method, "bit": bit, "runs": len(done)}
            if not ok:
                rows.append({**row, "error": done[0]["error"] if done else "no run"})
                continue
            row["map"], row["map_std"] = mean_std([r["map"] for r in ok])
            row["lsh"], _ = mean_std([r["lsh"] for r in ok])
            row["itq"], _ = mean_std([r["itq"] for r in ok])
            row["untrained"], _ = mean_std([r["untrained"] for r in ok])
            row["above"] = sum(r["map"] > max(r["lsh"], r["itq"], r["untrained"] or 0.0) for r in ok)
            row["distinct"] = min(r["distinct"] for r in ok)
            rows.append(row)
    return rows


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from tqdm import tqdm

    from benchmarks.compare_methods import log_run, run_once
    from tools.make_digits_split import make_split
    from utils.runtime.device import setup_device
    from utils.storage.fileio import atomic_open

    if not os.path.isfile(os.path.join(args.data_dir, "SHA256SUMS")):
        make_split(args.data_dir, quiet=True)
    lists = unlabelled_lists(args.data_dir)
    setup_device("cpu", args.threads)
    os.makedirs(args.output_dir, exist_ok=True)
    command = "python -m benchmarks.quality_unsupervised " + " ".join(sys.argv[1:] if argv is None else argv)
    print(machine_line(), flush=True)
    jobs = [(m, b, s) for m in args.methods for b in args.bits for s in args.seeds]
    runs, earlier = [], earlier_runs(args.reuse, args)
    with open(os.path.join(args.output_dir, "runs.jsonl"), "w", encoding="utf-8") as log, \
            tqdm(jobs, desc="runs", unit="run", file=sys.stderr) as bar:
        for method, bit, seed in bar:
            out = os.path.join(args.output_dir, method, str(bit), f"seed_{seed}")
            record = {"method": method, "bit": bit, "seed": seed, "epochs": args.epochs, "overrides": args.override}
            if (method, bit, seed) in earlier:
                log_run(log, runs, earlier[(method, bit, seed)])
                continue
            log_run(log, runs, run_once(record, lambda: one_run(method, bit, seed, args, lists, out)))
            shown = record.get("error") or (f"mAP {record['map']:.4f} (untrained {record['untrained'] or 0:.4f}, "
                                            f"LSH {record['lsh']:.4f}, ITQ {record['itq']:.4f})")
            bar.write(f"{method} {bit} bits seed {seed}: {shown}  ({record['seconds']:.1f}s)")
    rows = summarize(runs, args.methods, args.bits)
    header = [f"Real images without labels for training: scikit-learn digits, every method trained (or fitted) on the "
              f"1,597 database images listed without labels, evaluated on 200 labelled queries against the labelled "
              f"database (10 classes); frozen untrained lite network, {args.epochs} epochs a run; mAP mean +- sample "
              f"std over seeds {' '.join(map(str, args.seeds))}; untrained, LSH and ITQ columns: means over the seeds; "
              f"'runs above all three': runs whose mAP beats its untrained network, LSH and ITQ on the same features.",
              f"{machine_line()}; {len(runs)} runs, {sum(r['seconds'] for r in runs) / 60:.0f} min of runs"
              f"{f' ({sum(k in earlier for k in jobs)} taken from earlier runs.jsonl: --reuse)' if earlier else ''}.",
              f"Command: {command.rstrip()}", ""]
    failures = [f"failed: {r['method']} {r['bit']} bits seed {r['seed']}: {r['error']}" for r in runs if "error" in r]
    for name, markdown in (("quality_unsupervised.txt", False), ("quality_unsupervised.md", True)):
        with atomic_open(os.path.join(args.output_dir, name), "w", encoding="utf-8") as f:
            f.write("\n".join(header + table(rows, markdown) + failures) + "\n")
    print("\n".join(header + table(rows, False) + failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
