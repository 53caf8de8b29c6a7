"""Near-duplicate search on real photographs: the project's codes against imagehash's pHash, dHash
and wHash (what people use for this), LSH and ITQ, at 64 bits.

    pip install -r requirements-dev.txt          # imagehash 4.3.2 (and scikit-learn's two photographs)
    python -m benchmarks.near_duplicates --photos /usr/share/backgrounds/mate/nature
    python -m benchmarks.near_duplicates --methods phash dhash whash lsh itq --seeds 0   # no training (a minute)

Data: real photographs (--photos: files or folders; the default takes those that exist of DEFAULT_PHOTOS:
scikit-learn's and matplotlib's sample photographs and, when installed, Debian's mate-backgrounds nature photos
and two lomiri-wallpapers-20.04 photos; `apt-get download mate-backgrounds lomiri-wallpapers-20.04` and `dpkg -x
FILE.deb DIR` unpack them without installing). Each photo, scaled to 384 pixels, gives --views evaluation
copies: itself and one of each edit of benchmarks/near_duplicate_views.py (crop, mirror, rotation, colour,
smaller size, JPEG quality 10-30, caption + logo; half of them followed by a second random edit), and
--train-views other random copies (another seed) that the learned methods train on: `cibhash` (the default
method without labels) on them without labels, `hashnet` (the scratch recipe) with the source photo as the
label. The floors lsh and itq hash the untrained scratch network's backbone features (ITQ fitted on the
training copies). Every evaluation copy queries all the others (mAP@all, relevant = the same source photo), and
every pair of copies within Hamming radius --radius (the index's radius search, as tools.find_duplicates) is
a found duplicate pair: precision, recall and F1 of those pairs; "best F1" is the F1 at the radius that is
best for that method (chosen by looking at the answers: an upper bound). Learned methods: mean +- std over --seeds.
Outputs in --output-dir: views/, runs.jsonl, near_duplicates.{txt,md}; the table starts with the CPU and the command.
"""
if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.near_duplicates [flags]",
          file=sys.stderr)
    raise SystemExit(2)
import argparse
import json
import os
import sys
import time

from benchmarks.compare_methods import render_table
from benchmarks.machine import machine_line
from utils.cli import exit_on_user_error
from utils.errors import DependencyError, Interrupted, UserError
from utils.runtime import configure

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIT = 64
IMAGEHASH = ("phash", "dhash", "whash")
LEARNED = {"cibhash": "configs/methods/cibhash_scratch.yaml", "hashnet": "configs/hashnet_scratch.yaml"}
METHODS = (*IMAGEHASH, "lsh", "itq", *LEARNED)
DEFAULT_PHOTOS = ("sklearn/datasets/images", "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                  "/usr/share/backgrounds/mate/nature", "/usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
                  "/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg")


def default_photos():
    """DEFAULT_PHOTOS that exist here (package-relative ones under the installed package)."""
    import importlib.util

    places = []
    for place in DEFAULT_PHOTOS:
        if not os.path.isabs(place):
            spec = importlib.util.find_spec(place.split("/")[0])
            if spec is None or not spec.submodule_search_locations:
                continue
            place = os.path.join(list(spec.submodule_search_locations)[0], *place.split("/")[1:])
        if os.path.exists(place):
            places.append(place)
    return places


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", nargs="+", default=None, metavar="PATH",
                   help="real photographs: image files or folders (default: those of DEFAULT_PHOTOS found here)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, metavar="METHOD",
                   help=f"methods to compare (default: all: {' '.join(METHODS)})")
    p.add_argument("--views", type=int, default=8, help="evaluation copies of each photo (the first is the photo)")
    p.add_argument("--train-views", type=int, default=24, help="training copies of each photo (learned methods)")
    p.add_argument("--radius", type=int, default=8, help="Hamming radius of a duplicate pair (64-bit codes; find_duplicates' default)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the learned methods' runs")
    p.add_argument("--epochs", type=int, default=30, help="training epochs of the learned methods (the scratch "
                   "recipes' own); one evaluation after the last, which is the model")
    p.add_argument("--holdout", action="store_true",
                   help="learned methods train on copies of other photographs (every second one) than those "
                        "evaluated: how well they carry over to photos they never saw")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the copies (views)")
    p.add_argument("--output-dir", default="./output/near_duplicates", help="views, runs.jsonl and the table")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    args = p.parse_args(argv)
    for flag in ("views", "train_views"):
        if getattr(args, flag) < 2:
            raise UserError(f"--{flag.replace('_', '-')}: must be >= 2, got {getattr(args, flag)}")
    if not 0 <= args.radius <= BIT:
        raise UserError(f"--radius: must be in [0, {BIT}], got {args.radius}")
    if args.epochs < 1:
        raise UserError(f"--epochs: must be >= 1, got {args.epochs}")
    return args


def write_data(args, photos):
    """views/{eval,train}/ and lists/: eval copies (labelled by source) and training copies."""
    import numpy as np

    from benchmarks.near_duplicate_views import write_views
    from utils.storage.fileio import atomic_open

    root = os.path.join(args.output_dir, "views")
    ids = list(range(len(photos)))
    eval_ids, train_ids = (ids[0::2], ids[1::2]) if args.holdout else (ids, ids)
    ev = write_views([photos[i] for i in eval_ids], os.path.join(root, "eval"), args.views, args.data_seed, ids=eval_ids)
    tr = write_views([photos[i] for i in train_ids], os.path.join(root, "train"), args.train_views,
                     args.data_seed + 1000, first_is_original=False, ids=train_ids)
    lists = os.path.join(args.output_dir, "lists")
    os.makedirs(lists, exist_ok=True)
    eye = np.eye(len(photos), dtype=np.int64)

    def text(prefix, paths, sources, labelled=True):
        return "".join(f"{prefix}/{p}" + ("".join(f" {v}" for v in eye[s]) if labelled else "") + "\n"
                       for p, s in zip(paths, sources))

    texts = {"test": text("eval", ev[0], ev[1]), "train": text("train", tr[0], tr[1])}
    texts["database"] = texts["test"]
    for folder, labelled in (("labelled", True), ("no_labels", False)):
        os.makedirs(os.path.join(lists, folder), exist_ok=True)
        for split, body in texts.items():
            if split == "train" and not labelled:
                body = text("train", tr[0], tr[1], labelled=False)
            with atomic_open(os.path.join(lists, folder, f"{split}.txt"), "w", encoding="utf-8") as f:
                f.write(body)
    return root, lists, ev


def imagehash_codes(method, root, paths):
    import numpy as np

    try:
        import imagehash
        from PIL import Image
    except ImportError:
        raise DependencyError("the imagehash rows need imagehash: pip install imagehash==4.3.2 "
                              "(requirements-dev.txt)") from None
    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash, "whash": imagehash.whash}[method]
    rows = []
    for p in paths:
        with Image.open(os.path.join(root, p)) as image:
            rows.append(np.asarray(fn(image, hash_size=8).hash, bool).reshape(-1))
    return np.where(np.stack(rows), 1, -1).astype(np.int8)


def run_config(method, seed, args, root, lists):
    from utils.config import build_config

    flags = {"dataset": "near_duplicates", "data_path": root, "list_dir": lists, "bit": BIT, "seed": seed,
             "output_dir": os.path.join(args.output_dir, "runs", method, f"seed_{seed}"), "device": "cpu",
             "threads": args.threads, "epoch": args.epochs}
    return build_config(os.path.join(ROOT, LEARNED.get(method, LEARNED["hashnet"])), flags,
                        [f"train.eval_every={args.epochs}", "train.eval_untrained=false", "dataset.topk=-1"])


def learned_codes(method, seed, args, root, lists):
    """(eval codes, {"lsh": codes, "itq": codes}) of one run; lsh/itq from its untrained backbone."""
    from benchmarks.compare_methods import quiet
    from utils.data.loader import build_dataloader
    from utils.evaluation.baselines import fit_itq, fit_lsh
    from utils.inference.features import backbone_features
    from utils.training.builders import build_split
    from utils.training.engine import Engine

    folder = os.path.join(lists, "labelled" if method != "cibhash" else "no_labels")
    with quiet():
        engine = Engine(run_config(method, seed, args, root, folder), save_checkpoints=False, show_progress=False)
        plain = build_split(engine.cfg, engine.data.lists["train"], train=False)
        train_x, _ = backbone_features(engine.model, build_dataloader(plain, 64, False, False))
        eval_x, _ = backbone_features(engine.model, engine.db_loader)
        floors = {name: fit(train_x, BIT, seed=seed).encode(eval_x) for name, fit in (("lsh", fit_lsh), ("itq", fit_itq))}
        engine.train()
    return engine.best_codes[1], floors


def loo_map(codes, sources):
    """mAP@all with every code querying all the others (itself left out), relevant = same source;
    ties in distance ranked by index (the project's evaluation order)."""
    import numpy as np

    codes = np.asarray(codes, np.int32)
    bit = codes.shape[1]
    distances = (bit - codes @ codes.T) // 2
    aps = []
    for i in range(len(codes)):
        others = np.delete(np.arange(len(codes)), i)
        order = others[np.argsort(distances[i, others], kind="stable")]
        relevant = sources[order] == sources[i]
        if not relevant.any():
            continue
        hits = np.cumsum(relevant)
        aps.append(float((hits[relevant] / (np.flatnonzero(relevant) + 1)).mean()))
    return float(np.mean(aps))


def scores(codes, sources, radius):
    """mAP, and the duplicate pairs at `radius` (the index's radius search) and at every radius (best F1)."""
    import numpy as np

    from utils.retrieval.duplicates import duplicate_pairs, pair_scores

    counts = np.unique(sources, return_counts=True)[1]
    true_pairs = int((counts * (counts - 1) // 2).sum())

    def same(i, j):
        return sources[i] == sources[j]

    at = pair_scores(duplicate_pairs(codes, radius), same, true_pairs)
    every = duplicate_pairs(codes, BIT)
    best = max((pair_scores(every[every[:, 2] <= r], same, true_pairs) | {"radius": r} for r in range(BIT + 1)),
               key=lambda s: s["f1"])
    return {"map": loo_map(codes, sources), "precision": at["precision"], "recall": at["recall"], "f1": at["f1"],
            "best_f1": best["f1"], "best_radius": best["radius"]}


def table(rows, markdown, radius):
    columns = ["method", "runs", "mAP@all", f"pair precision @r{radius}", f"pair recall @r{radius}", f"pair F1 @r{radius}",
               "best F1 (radius)"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["method"], "0", "failed", "-", "-", "-", "-"])
            continue
        body.append([r["method"], str(r["runs"]), f"{r['map']:.4f} +- {r['map_std']:.4f}", f"{r['precision']:.3f}",
                     f"{r['recall']:.3f}", f"{r['f1']:.3f} +- {r['f1_std']:.3f}", f"{r['best_f1']:.3f} ({r['best_radius']})"])
    return render_table(columns, body, markdown)


def summarize(runs, methods):
    import statistics

    from benchmarks.compare_methods import mean_std

    rows = []
    for method in methods:
        ok = [r for r in runs if r["method"] == method and "error" not in r]
        if not ok:
            failed = [r for r in runs if r["method"] == method]
            rows.append({"method": method, "error": failed[0]["error"] if failed else "no run"})
            continue
        row = {"method": method, "runs": len(ok)}
        row["map"], row["map_std"] = mean_std([r["map"] for r in ok])
        row["f1"], row["f1_std"] = mean_std([r["f1"] for r in ok])
        for key in ("precision", "recall", "best_f1"):
            row[key] = statistics.mean(r[key] for r in ok)
        row["best_radius"] = statistics.median_low(r["best_radius"] for r in ok)
        rows.append(row)
    return rows


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from tqdm import tqdm

    from benchmarks.near_duplicate_views import photo_files
    from utils.runtime.device import setup_device
    from utils.storage.fileio import atomic_open

    photos = photo_files(args.photos if args.photos is not None else default_photos())
    if len(photos) < 3:
        raise UserError(f"--photos: {len(photos)} photographs found; give at least 3 (files or folders)")
    setup_device("cpu", args.threads)
    os.makedirs(args.output_dir, exist_ok=True)
    command = "python -m benchmarks.near_duplicates " + " ".join(sys.argv[1:] if argv is None else argv)
    print(machine_line(), flush=True)
    print(f"{len(photos)} photographs: " + ", ".join(os.path.basename(p) for p in photos), flush=True)
    root, lists, (paths, sources, kinds) = write_data(args, photos)
    runs = []
    jobs = [(m, None) for m in args.methods if m in IMAGEHASH]
    floors_wanted = [m for m in ("lsh", "itq") if m in args.methods]
    learned = [m for m in args.methods if m in LEARNED] or (["hashnet"] if floors_wanted else [])
    jobs += [(m, s) for m in learned for s in args.seeds]
    with open(os.path.join(args.output_dir, "runs.jsonl"), "w", encoding="utf-8") as log, \
            tqdm(jobs, desc="runs", unit="run", file=sys.stderr) as bar:
        for method, seed in bar:
            start, results = time.time(), {}
            try:
                if method in IMAGEHASH:
                    results[method] = imagehash_codes(method, os.path.join(root, "eval"), paths)
                else:
                    codes, floors = learned_codes(method, seed, args, root, lists)
                    if method in args.methods:
                        results[method] = codes
                    if method == learned[0]:  # the floors once a seed, from the first learned method's network
                        results.update({m: floors[m] for m in floors_wanted})
                records = [{"method": m, "seed": seed, **scores(c, sources, args.radius)} for m, c in results.items()]
            except Interrupted:  # Ctrl-C / SIGTERM stop the benchmark, not only this run
                raise
            except Exception as exc:  # noqa: BLE001 - a failing run is reported, the others still run
                records = [{"method": method, "seed": seed, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}]
            for record in records:
                record["seconds"] = time.time() - start
                runs.append(record)
                log.write(json.dumps(record) + "\n")
                shown = record.get("error") or f"mAP {record['map']:.4f}, pair F1 {record['f1']:.3f}"
                bar.write(f"{record['method']} seed {seed}: {shown}")
            log.flush()
    rows = summarize(runs, args.methods)
    trained_on = ("copies of the other half of the photographs (--holdout: every second photo is evaluated, the "
                  "others trained on)" if args.holdout else f"{args.train_views} other copies a photo")
    header = [f"Near-duplicates of {len(set(sources.tolist()))} real photographs: {args.views} copies each "
              f"({len(paths)} images: the "
              f"photo, then one of each edit: crop, mirror, rotation, colour, smaller, JPEG q10-30, caption+logo; half "
              f"with a second edit); learned methods trained {args.epochs} epochs on {trained_on} "
              f"(cibhash without labels, hashnet with the photo as label), seeds {' '.join(map(str, args.seeds))}; "
              f"{BIT}-bit codes; mAP@all leave-one-out (relevant = same photo); duplicate pairs within radius "
              f"{args.radius}; best F1 = at the best radius for that method.",
              f"{machine_line()}.", f"Command: {command.rstrip()}", ""]
    failures = [f"failed: {r['method']} seed {r['seed']}: {r['error']}" for r in runs if "error" in r]
    for name, markdown in (("near_duplicates.txt", False), ("near_duplicates.md", True)):
        with atomic_open(os.path.join(args.output_dir, name), "w", encoding="utf-8") as f:
            f.write("\n".join(header + table(rows, markdown, args.radius) + failures) + "\n")
    print("\n".join(header + table(rows, False, args.radius) + failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
