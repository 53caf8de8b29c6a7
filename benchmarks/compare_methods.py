"""Train every hashing method on one data set and compare them in one table.

    python -m benchmarks.compare_methods                  # lite data: every method, 16/32/48/64 bits, seeds 0 1 2
    python -m benchmarks.compare_methods --methods hashnet dsh lsh --bits 32 --seeds 0 1 --markdown
    python -m benchmarks.compare_methods --dataset coco --data-path /data/coco --epochs 150 -o train.eval_every=10

Methods are the configs <config-dir>/<method>_<dataset>.yaml (configs/methods/) plus
configs/hashnet_<dataset>.yaml; the unsupervised baselines lsh and itq (utils/evaluation/baselines.py) hash
the untrained backbone features of the hashnet config's network (its ImageNet weights when the
config names them), so every table has a floor. Each run trains in this process with the
project's Engine on a short schedule (--epochs, one evaluation after the last epoch; everything
else from the method's config) and the table gives mAP@topK and precision within Hamming radius 2
(mean +- sample std over the seeds) and the training seconds per epoch (evaluation excluded).
Runs go one after another (a progress bar counts them); each run's log and config are kept in
<output-dir>/<method>/<bit>/seed_<S>/ (weights are deleted unless --keep-weights), every run's
numbers in <output-dir>/runs.jsonl, the table in <output-dir>/compare_methods.{txt,md}.
A method whose runs fail is reported under the table, and the exit status is then 1.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.compare_methods [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import contextlib
import glob
import json
import os
import statistics
import sys
import time
import traceback

from benchmarks.machine import machine_line
from benchmarks.outputs import note_repository_writes
from utils.cli import exit_on_user_error
from utils.errors import Interrupted, UserError
from utils.runtime import configure

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

DEFAULT_EPOCHS = 3


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", nargs="+", default=None,
                   help="method names (config stems, lsh, itq); default: every config found, plus the baselines")
    p.add_argument("--bits", type=int, nargs="+", default=[16, 32, 48, 64], help="code lengths")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (weights, data order, projections)")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="training epochs of every run")
    p.add_argument("--dataset", default="lite",
                   help="config family: <config-dir>/*_<dataset>.yaml and configs/hashnet_<dataset>.yaml")
    p.add_argument("--data-path", default=None, help="image root (default: the configs' dataset.data_path)")
    p.add_argument("--config-dir", default=os.path.join(ROOT, "configs", "methods"), help="folder of method configs")
    p.add_argument("--output-dir", default="./output/compare_methods", help="runs, runs.jsonl and the table")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (repeatable), e.g. -o dataset.num_workers=0")
    p.add_argument("--plot", default=None, metavar="PATH", help="also draw mAP vs bits per method (matplotlib PNG)")
    p.add_argument("--markdown", action="store_true", help="print the table as markdown (for README)")
    p.add_argument("--keep-weights", action="store_true", help="keep each run's checkpoints (large)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"],
                   help="device of every run (default auto: gpu when available, else cpu)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    args = p.parse_args(argv)
    if args.epochs < 1:
        raise UserError(f"--epochs: must be >= 1, got {args.epochs}")
    return args


# -- what to run ------------------------------------------------------------------------------
def find_method_configs(config_dir, dataset):
    """{method: config path}: configs/hashnet_<dataset>.yaml first, then <config_dir>/<method>_<dataset>.yaml."""
    suffix = f"_{dataset}.yaml"
    hashnet = os.path.join(ROOT, "configs", f"hashnet_{dataset}.yaml")
    found = {"hashnet": hashnet} if os.path.isfile(hashnet) else {}
    for path in sorted(glob.glob(os.path.join(config_dir, "*" + suffix))):
        found.setdefault(os.path.basename(path)[: -len(suffix)], path)
    return found


def select_methods(requested, configs, baselines):
    known = list(configs) + [name for name in baselines if name not in configs]
    if requested is None:
        return known
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise UserError(f"--methods: unknown {unknown}; found {known}")
    return list(dict.fromkeys(requested))


def run_config(path, bit, seed, args, out_dir):
    from utils.config import build_config

    flags = {"bit": bit, "seed": seed, "epoch": args.epochs, "output_dir": out_dir, "data_path": args.data_path,
             "device": args.device, "threads": args.threads}
    schedule = [f"train.eval_every={max(args.epochs, 1)}", "train.eval_untrained=false"]
    return build_config(path, flags, schedule + list(args.override))


# -- one run ----------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet():
    """The engine's console output and progress bars go nowhere (its log file keeps everything)."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def run_once(record, run, traceback_dir=None):
    """record with run()'s numbers and the seconds it took, or with its one-line error: a failing run is
    reported and the others still run (with traceback_dir, its traceback goes to traceback_dir/error.txt);
    Ctrl-C / SIGTERM (utils.errors.Interrupted) stop the benchmark."""
    start = time.time()
    try:
        with quiet():
            record.update(run())
    except Interrupted:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing run is reported, the others still run
        record["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if traceback_dir is not None:
            os.makedirs(traceback_dir, exist_ok=True)
            with open(os.path.join(traceback_dir, "error.txt"), "w", encoding="utf-8") as f:
                f.write(traceback.format_exc())
    record["seconds"] = time.time() - start
    return record


def log_run(log, runs, record):
    """Keep a finished run and append it to runs.jsonl at once (a stopped benchmark keeps what it ran)."""
    runs.append(record)
    log.write(json.dumps(record) + "\n")
    log.flush()


def train_once(cfg, keep_weights):
    from utils.training.engine import Engine

    engine = Engine(cfg, save_checkpoints=keep_weights)
    result = engine.train()
    seconds = result["epoch_seconds"]
    sizes = {"train": len(engine.train_set), "query": len(engine.query_set), "database": len(engine.db_set)}
    return {"map": result["map"], "precision_r2": result["precision_r2"],
            "epoch_seconds": statistics.mean(seconds) if seconds else None}, sizes


class BaselineFeatures:
    """Untrained backbone features of the hashnet config's network, once per seed for every bit."""

    def __init__(self):
        self.cache = {}

    def get(self, cfg, seed):
        if seed not in self.cache:
            from utils.inference.features import backbone_features
            from utils.config import dataset_lists
            from utils.data.loader import build_dataloader
            from utils.training.builders import build_split
            from utils.training.engine import Engine

            engine = Engine(cfg)  # builds (and seeds) the network, loads backbone weights, the eval loaders
            plain_train = build_split(cfg, dataset_lists(cfg)["train"], train=False)  # no augmentation
            loader = build_dataloader(plain_train, max(cfg["train"]["batch_size"], 32), shuffle=False,
                                      drop_last=False, num_workers=cfg["dataset"]["num_workers"], seed=seed)
            self.cache[seed] = (backbone_features(engine.model, loader)[0],
                                *backbone_features(engine.model, engine.query_loader),
                                *backbone_features(engine.model, engine.db_loader))
        return self.cache[seed]


def baseline_once(name, cfg, seed, features):
    from utils.evaluation.baselines import BASELINES
    from utils.evaluation.metrics import mean_average_precision, precision_within_radius

    train_x, query_x, query_y, db_x, db_y = features.get(cfg, seed)
    hasher = BASELINES[name](train_x, cfg["model"]["bit"], seed=seed)
    q_codes, db_codes = hasher.encode(query_x), hasher.encode(db_x)
    return {"map": mean_average_precision(q_codes, db_codes, query_y, db_y, topk=cfg["dataset"]["topk"]),
            "precision_r2": precision_within_radius(q_codes, db_codes, query_y, db_y, radius=2),
            "epoch_seconds": None}


# -- the table --------------------------------------------------------------------------------
def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs, methods, bits):
    """One row per (method, bit) over its successful seeds: {method, bit, map, map_std, ...}."""
    rows = []
    for method in methods:
        for bit in bits:
            done = [r for r in runs if r["method"] == method and r["bit"] == bit]
            ok = [r for r in done if "error" not in r]
            row = {"method": method, "bit": bit, "seeds": len(ok), "runs": len(done)}
            row["map"], row["map_std"] = mean_std([r["map"] for r in ok])
            row["precision_r2"], row["precision_r2_std"] = mean_std([r["precision_r2"] for r in ok])
            row["epoch_seconds"], _ = mean_std([r["epoch_seconds"] for r in ok])
            if not ok and done:
                row["error"] = done[0]["error"]
            rows.append(row)
    return rows


def render_table(columns, body, markdown):
    """Lines of a table: markdown, or columns aligned with spaces under a dashed rule."""
    if markdown:
        return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)] + \
               ["| " + " | ".join(cells) + " |" for cells in body]
    widths = [max(len(c[i]) for c in [columns] + body) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in [columns] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _pm(mean, std):
    return "-" if mean is None else f"{mean:.4f} +- {std:.4f}"


def format_table(rows, header, map_label, markdown=False):
    columns = ["method", "bits", map_label, "precision@r2", "train s/epoch"]
    body = []
    for row in rows:
        partial = "" if row["seeds"] == row["runs"] else f" ({row['seeds']}/{row['runs']} seeds)"
        if "error" in row:
            cells = [row["method"], str(row["bit"]), "failed", "failed", "-"]
        else:
            seconds = "-" if row["epoch_seconds"] is None else f"{row['epoch_seconds']:.1f}"
            cells = [row["method"] + partial, str(row["bit"]), _pm(row["map"], row["map_std"]),
                     _pm(row["precision_r2"], row["precision_r2_std"]), seconds]
        body.append(cells)
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(c[i]) for c in [columns] + body) for i in range(len(columns))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in [columns] + body]
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(header + [""] + lines)


def schedule_text(args, configs, methods):
    """Batch, lr and crop of the selected methods' configs: one value when they agree, else per method."""
    from utils.config import build_config

    values = {}  # setting -> {method: value}
    for method in [m for m in methods if m in configs]:  # the baselines train nothing
        try:
            cfg = build_config(configs[method], {"data_path": args.data_path}, args.override)
        except UserError:  # reported with its runs
            continue
        for name, value in (("batch", cfg["train"]["batch_size"]), ("lr", cfg["train"]["lr"]),
                            ("crop", cfg["dataset"]["crop_size"])):
            values.setdefault(name, {})[method] = value
    parts = []
    for name, per_method in values.items():
        if len(set(per_method.values())) == 1:
            parts.append(f"{name} {next(iter(per_method.values()))}")
        else:
            parts.append(f"{name} " + ", ".join(f"{m} {v}" for m, v in per_method.items()))
    return "; ".join(parts)


def describe(args, argv, cfg, sizes, methods, configs):
    d = cfg["dataset"]
    data = f"{d['name']} data ({d['data_path']})"
    if sizes is not None:
        data += f": {sizes['train']} training, {sizes['query']} query, {sizes['database']} database images"
    return [f"Compare methods on {data}; backbone {cfg['model']['backbone']}.",
            f"Schedule: {args.epochs} epoch{'s' if args.epochs != 1 else ''} per run, one evaluation after the last; "
            f"{schedule_text(args, configs, methods)}"
            f"{' (overrides: ' + ' '.join(args.override) + ')' if args.override else ''}.",
            f"Seeds {' '.join(map(str, args.seeds))}: mean +- sample std"
            f"{'; lsh/itq: untrained backbone features, no training' if set(methods) - set(configs) else ''}. "
            f"Methods: {' '.join(methods)}.",
            f"Command: python -m benchmarks.compare_methods {' '.join(argv)}".rstrip(),
            f"Machine: {machine_line()}."]


def save_plot(rows, path, map_label):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from utils.storage.fileio import atomic_open

    fig, ax = plt.subplots(figsize=(7, 4))
    colors, markers = plt.get_cmap("tab20").colors, "os^vDP*Xhp<>"  # a dozen rows stay apart (tab10 repeats at 11)
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        points = [r for r in rows if r["method"] == method and r["map"] is not None]
        if points:
            ax.errorbar([r["bit"] for r in points], [r["map"] for r in points], yerr=[r["map_std"] for r in points],
                        marker=markers[i % len(markers)], color=colors[i % len(colors)], capsize=3, label=method,
                        linestyle="--" if method in ("lsh", "itq") else "-")
    ax.set(xlabel="bits", ylabel=map_label, title=f"{map_label} vs code length", xticks=sorted({r["bit"] for r in rows}))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: it hid the top rows
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


# -- main -------------------------------------------------------------------------------------
@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    note_repository_writes(plot=args.plot)
    configs = find_method_configs(args.config_dir, args.dataset)
    if "hashnet" not in configs:
        raise UserError(f"--dataset {args.dataset}: configs/hashnet_{args.dataset}.yaml not found")
    from utils.evaluation.baselines import BASELINES

    methods = select_methods(args.methods, configs, BASELINES)
    reference = run_config(configs["hashnet"], args.bits[0], args.seeds[0], args, args.output_dir)  # checks flags

    from tqdm import tqdm

    from utils.training.evaluate import topk_label
    from utils.runtime.device import setup_device
    from utils.storage.fileio import atomic_open

    setup_device(args.device, args.threads)
    os.makedirs(args.output_dir, exist_ok=True)
    jobs = [(m, b, s) for m in methods for b in args.bits for s in args.seeds]
    runs, features, sizes = [], BaselineFeatures(), None

    def trained(cfg):
        nonlocal sizes
        numbers, sizes = train_once(cfg, args.keep_weights)
        return numbers

    log_path = os.path.join(args.output_dir, "runs.jsonl")
    with open(log_path, "w", encoding="utf-8") as log, tqdm(jobs, desc="runs", unit="run", file=sys.stderr) as bar:
        for method, bit, seed in bar:
            bar.set_postfix_str(f"{method} {bit} bits seed {seed}")
            out = os.path.join(args.output_dir, method, str(bit), f"seed_{seed}")
            record = {"method": method, "bit": bit, "seed": seed}
            if method in configs:
                run_once(record, lambda: trained(run_config(configs[method], bit, seed, args, out)), out)
            else:  # a baseline on the hashnet config's network
                run_once(record, lambda: baseline_once(method, run_config(configs["hashnet"], bit, seed, args, out),
                                                       seed, features), out)
            log_run(log, runs, record)
            shown = record.get("error") or (f"mAP {record['map']:.4f}  precision@r2 {record['precision_r2']:.4f}")
            bar.write(f"{method} {bit} bits seed {seed}: {shown}  ({record['seconds']:.1f}s)")

    map_label = f"mAP@{topk_label(reference['dataset']['topk'])}"
    rows = summarize(runs, methods, args.bits)
    header = describe(args, sys.argv[1:] if argv is None else argv, reference, sizes, methods, configs)
    failures = [r for r in runs if "error" in r]
    footer = [f"failed: {r['method']} {r['bit']} bits seed {r['seed']}: {r['error']}" for r in failures]
    text = format_table(rows, header, map_label)
    markdown = format_table(rows, header, map_label, markdown=True)
    for name, content in (("compare_methods.txt", text), ("compare_methods.md", markdown)):
        with atomic_open(os.path.join(args.output_dir, name), "w", encoding="utf-8") as f:
            f.write("\n".join([content] + footer) + "\n")
    if args.plot:
        save_plot(rows, args.plot, map_label)
    print("\n".join([markdown if args.markdown else text] + footer))
    if args.plot:
        print(f"plot: {args.plot}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
