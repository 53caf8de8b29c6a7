"""Retrieval quality on real images: every method, the LSH/ITQ floors, several code lengths and seeds, one table.

    pip install scikit-learn==1.9.1     # ships the images (requirements-dev.txt has it); no network at run time
    python -m benchmarks.quality_real                       # every method, 16, 32 and 64 bits, seeds 0 1 2
    python -m benchmarks.quality_real --methods hashnet csq lsh --bits 16 --seeds 0 --epochs 10
    python -m benchmarks.quality_real --variant "hashnet_memory=loss.memory_max_age=null" --methods hashnet_memory
    python -m benchmarks.quality_real --no-labels           # the methods that learn without labels: quality_unsupervised

Data: scikit-learn's handwritten digits (`tools/make_digits_split.py`: 1,797 real 8x8 grayscale
scans, 10 classes; 200 queries, the other 1,597 images are the database, 500 of them train),
written once to --data-dir. Every method trains from scratch with its lite config
(configs/methods/<method>_lite.yaml, the lite network: AlexNet-BN, fc 1024, 64x64 crops) on the
one engine for --epochs epochs (default 30: the recipes' own length, so their lr decay at epoch 20
is reached; at 20 epochs the slower learners, HashNet's pairs above all, were cut off still rising);
`hashnet_scratch` is configs/hashnet_scratch.yaml (the recipe for a
new data set without ImageNet weights). The floors lsh and itq hash the untrained lite network's
backbone features (utils/evaluation/baselines.py).
Model selection (--selection), written in the table's header: `final` (default) evaluates once,
after the last epoch, and reports that network: nothing is chosen on the queries. `val` holds out
10% of the training images (dataset.val_fraction) as validation queries, evaluates every
--eval-every epochs and keeps the epoch with the best validation mAP. `query` keeps the epoch with
the best query-set mAP: the published reproductions' protocol, which peeks at the queries (label
any figure made with it so).
Rows: `hashnet_fixed_alpha` is HashNet with alpha 0.1 at every code length (the recipe before
alpha_bits); a --variant NAME=KEY=VALUE;KEY=VALUE adds a row: the HashNet lite config with those
overrides. The table gives mAP@all and precision within Hamming radius 2 (mean +- sample std over
the seeds) and, for trained methods, the mean mAP of its untrained network (evaluated before the first
step, not a candidate of model selection) and the worst share of distinct query codes over the seeds (a
collapsed run has a few codes for 200 queries); it starts with the CPU model and the command.
Outputs in --output-dir: runs.jsonl, quality_real.{txt,md}, and with --plot a PNG.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.quality_real [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import os
import sys
import time

from benchmarks.compare_methods import render_table
from benchmarks.machine import machine_line
from benchmarks.outputs import note_repository_writes
from benchmarks.quality_unsupervised import earlier_runs
from utils.cli import exit_on_user_error
from utils.errors import UserError
from utils.runtime import configure

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

DEFAULT_EPOCHS = 30  # configs/hashnet_lite.yaml's train.epochs: every recipe runs to the end of its schedule
# HashNet's lite recipe is the scratch recipe (configs/hashnet_lite.yaml = hashnet_scratch.yaml + the lite data),
# so one row stands for both. Reference rows: {row: (the method whose lite config it starts from, overrides)}
BUILTIN_VARIANTS = {
    # alpha 0.1 at every code length, no loss scaling: the HashNet recipe before loss.alpha_bits (issue 23)
    "hashnet_fixed_alpha": ("hashnet", ["loss.alpha=0.1", "loss.gradient_alpha=null"]),
    # the old lite recipe: pairs against the memory from the first step
    "hashnet_memory": ("hashnet", ["loss.memory_max_age=null", "loss.memory_warmup_epochs=0"]),
    "orthohash_arc": ("orthohash", ["loss.margin_type=arc"]),  # OrthoArc
}
DEFAULT_METHODS = ("hashnet", "hashnet_fixed_alpha", "csq", "dch", "dpn", "dpsh", "dsh", "dshsd", "greedyhash", "lcdsh",
                   "orthohash", "ssdh", "lsh", "itq")
SELECTIONS = ("final", "val", "query")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=None,
                   help=f"rows to run (default: {' '.join(DEFAULT_METHODS)}, then the --variant rows)")
    p.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64], help="code lengths")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (weights, data order, projections)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs of every run")
    p.add_argument("--selection", default="final", choices=SELECTIONS,
                   help="which epoch a run reports: final (the last; default), val (best validation mAP on 10%% "
                        "of the training images), query (best query mAP: the published protocol, peeks at the queries)")
    p.add_argument("--eval-every", type=int, default=5, help="epochs between evaluations with --selection val/query")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=KEY=VALUE;KEY=VALUE",
                   help="an extra row: the HashNet lite config with these overrides (repeatable)")
    p.add_argument("--data-dir", default="./datasets/digits", help="where the digits images and lists are written")
    p.add_argument("--output-dir", default="./output/quality_real", help="runs, runs.jsonl and the table")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable)")
    p.add_argument("--plot", default=None, metavar="PATH", help="also draw mAP vs bits per method (matplotlib PNG)")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown (for README)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--reuse", nargs="+", default=[], metavar="RUNS_JSONL",
                   help="take finished runs (same method, bits, seed, epochs and -o overrides) from earlier "
                        "runs.jsonl files instead of running them again; the table header counts them")
    args = p.parse_args(argv)
    if args.epochs < 1:
        raise UserError(f"--epochs: must be >= 1, got {args.epochs}")
    if args.eval_every < 1:
        raise UserError(f"--eval-every: must be >= 1, got {args.eval_every}")
    return args


def method_configs(variants):
    """{row name: (config path, extra overrides)}."""
    configs = {"hashnet": (os.path.join(ROOT, "configs", "hashnet_lite.yaml"), []),
               "hashnet_scratch": (os.path.join(ROOT, "configs", "hashnet_scratch.yaml"), [])}
    from utils.losses import LOSSES

    for name in sorted(LOSSES):
        if name != "hashnet":
            configs[name] = (os.path.join(ROOT, "configs", "methods", f"{name}_lite.yaml"), [])
    for name, (method, overrides) in BUILTIN_VARIANTS.items():
        configs[name] = (configs[method][0], list(overrides))
    for text in variants:
        name, sep, overrides = text.partition("=")
        if not sep or not name or not overrides:
            raise UserError(f"--variant {text!r}: expected NAME=KEY=VALUE;KEY=VALUE")
        configs[name] = (configs["hashnet"][0], [o.strip() for o in overrides.split(";") if o.strip()])
    return configs


def build_run_config(path, extra, bit, seed, args, out_dir):
    from utils.config import build_config

    flags = {"dataset": "digits", "data_path": args.data_dir, "list_dir": args.data_dir, "bit": bit, "seed": seed,
             "epoch": args.epochs, "output_dir": out_dir, "device": "cpu", "threads": args.threads}
    every = args.epochs if args.selection == "final" else args.eval_every
    schedule = [f"train.eval_every={every}", "train.eval_untrained=false", "dataset.topk=-1"]
    if args.selection == "val":
        schedule.append("dataset.val_fraction=0.1")
    return build_config(path, flags, schedule + list(extra) + list(args.override))


SELECTION_TEXT = {
    "final": "model selection: none, the network after the last epoch (nothing is chosen on the queries)",
    "val": "model selection: the epoch with the best mAP on a validation split (10% of the training images, "
           "held out of training), evaluated every {every} epochs",
    "query": "model selection: the epoch with the best QUERY-set mAP, evaluated every {every} epochs (the published "
             "reproductions' protocol: it peeks at the queries)",
}


def distinct_share(codes):
    import numpy as np

    return len(np.unique(codes, axis=0)) / len(codes)


def train_run(cfg):
    from utils.training.engine import Engine

    engine = Engine(cfg, save_checkpoints=False)
    untrained = engine.evaluate()["map"]  # beside the table, not a candidate of model selection
    result = engine.train()
    q_codes = engine.best_codes[0] if getattr(engine, "best_codes", None) is not None else None
    return {"map": result["map"], "precision_r2": result["precision_r2"], "best_epoch": result["best_epoch"],
            "untrained": untrained, "distinct": None if q_codes is None else distinct_share(q_codes),
            "epoch_seconds": sum(result["epoch_seconds"]) / max(len(result["epoch_seconds"]), 1)}


def format_rows(rows, markdown):
    columns = ["method", "bits", "mAP@all", "P@H<=2", "its untrained network", "distinct query codes (min)"]
    body = []
    for row in rows:
        if "error" in row:
            body.append([row["method"], str(row["bit"]), "failed", "failed", "-", "-"])
            continue
        partial = "" if row["seeds"] == row["runs"] else f" ({row['seeds']}/{row['runs']} seeds)"
        distinct = "-" if row.get("distinct") is None else f"{row['distinct']:.0%}"
        untrained = "-" if row.get("untrained") is None else f"{row['untrained']:.4f}"
        body.append([row["method"] + partial, str(row["bit"]), f"{row['map']:.4f} +- {row['map_std']:.4f}",
                     f"{row['precision_r2']:.4f} +- {row['precision_r2_std']:.4f}", untrained, distinct])
    return render_table(columns, body, markdown)


@exit_on_user_error
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--no-labels" in argv:  # the table without labels has its own module (and flags)
        from benchmarks.quality_unsupervised import main as no_labels

        return no_labels([a for a in argv if a != "--no-labels"])
    configure()
    args = parse_args(argv)
    note_repository_writes(plot=args.plot)
    configs = method_configs(args.variant)
    methods = list(args.methods) if args.methods else list(DEFAULT_METHODS) + \
        [v.partition("=")[0] for v in args.variant]
    unknown = [m for m in methods if m not in configs and m not in ("lsh", "itq")]
    if unknown:
        raise UserError(f"--methods: unknown {unknown}; choose from {sorted(configs) + ['itq', 'lsh']}")

    from tqdm import tqdm

    from benchmarks.compare_methods import BaselineFeatures, baseline_once, log_run, mean_std, run_once, save_plot
    from tools.make_digits_split import make_split
    from utils.runtime.device import setup_device
    from utils.storage.fileio import atomic_open

    if not os.path.isfile(os.path.join(args.data_dir, "SHA256SUMS")):
        make_split(args.data_dir, quiet=True)
    setup_device("cpu", args.threads)
    os.makedirs(args.output_dir, exist_ok=True)
    command = "python -m benchmarks.quality_real " + " ".join(sys.argv[1:] if argv is None else argv)
    print(machine_line(), flush=True)
    jobs = [(m, b, s) for m in methods for b in args.bits for s in args.seeds]
    earlier = earlier_runs(args.reuse, args, same_schedule=lambda r: (  # runs.jsonl before --selection: final
        r.get("selection", "final") == args.selection and r.get("eval_every", args.eval_every) == args.eval_every))
    runs, features, start_all, reused = [], BaselineFeatures(), time.time(), 0
    with open(os.path.join(args.output_dir, "runs.jsonl"), "w", encoding="utf-8") as log, \
            tqdm(jobs, desc="runs", unit="run", file=sys.stderr) as bar:
        for method, bit, seed in bar:
            out = os.path.join(args.output_dir, method, str(bit), f"seed_{seed}")
            record = {"method": method, "bit": bit, "seed": seed, "epochs": args.epochs,
                      "overrides": args.override, "selection": args.selection}
            if args.selection != "final":
                record["eval_every"] = args.eval_every
            if (method, bit, seed) in earlier:
                reused += 1
                log_run(log, runs, earlier[(method, bit, seed)])
                continue
            if method in configs:
                run_once(record, lambda: train_run(build_run_config(*configs[method], bit, seed, args, out)))
            else:  # a floor, on the hashnet config's untrained network
                cfg = build_run_config(*configs["hashnet"], bit, seed, args, out)
                run_once(record, lambda: baseline_once(method, cfg, seed, features))
            log_run(log, runs, record)
            shown = record.get("error") or f"mAP {record['map']:.4f}  P@H<=2 {record['precision_r2']:.4f}"
            bar.write(f"{method} {bit} bits seed {seed}: {shown}  ({record['seconds']:.1f}s)")
    rows = []
    for method in methods:
        for bit in args.bits:
            done = [r for r in runs if r["method"] == method and r["bit"] == bit]
            ok = [r for r in done if "error" not in r]
            row = {"method": method, "bit": bit, "seeds": len(ok), "runs": len(done)}
            if not ok:
                row["error"] = done[0]["error"] if done else "no run"
            else:
                row["map"], row["map_std"] = mean_std([r["map"] for r in ok])
                row["precision_r2"], row["precision_r2_std"] = mean_std([r["precision_r2"] for r in ok])
                shares = [r["distinct"] for r in ok if r.get("distinct") is not None]
                row["distinct"] = min(shares) if shares else None
                untrained = [r["untrained"] for r in ok if r.get("untrained") is not None]
                row["untrained"] = mean_std(untrained)[0] if len(untrained) == len(ok) else None
            rows.append(row)
    minutes = (time.time() - start_all) / 60
    header = [f"Real images: scikit-learn digits (200 queries, 1,597 database, 500 training images, 10 classes), "
              f"from scratch, {args.epochs} epochs a run; mean +- sample std over seeds {' '.join(map(str, args.seeds))}.",
              f"{machine_line()}; {len(runs)} runs, "
              f"{minutes + sum(r['seconds'] for r in runs if r in earlier.values()) / 60:.0f} min of runs"
              f"{f' ({reused} taken from earlier runs.jsonl: --reuse)' if reused else ''}.",
              SELECTION_TEXT[args.selection].format(every=args.eval_every) + ".",
              f"Command: {command.rstrip()}", ""]
    failures = [f"failed: {r['method']} {r['bit']} bits seed {r['seed']}: {r['error']}" for r in runs if "error" in r]
    text = "\n".join(header + format_rows(rows, False) + failures)
    markdown = "\n".join(header + format_rows(rows, True) + failures)
    for name, content in (("quality_real.txt", text), ("quality_real.md", markdown)):
        with atomic_open(os.path.join(args.output_dir, name), "w", encoding="utf-8") as f:
            f.write(content + "\n")
    if args.plot:
        save_plot([r for r in rows if "error" not in r], args.plot, "mAP@all")
    print(markdown if args.markdown else text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
