"""tools.find_duplicates' work: a folder's images encoded by a hashing model, the pairs within a
Hamming radius (the index's radius search), the groups they join, and the report: duplicates.csv,
duplicates.json, one contact sheet a group (sheets/) and index.html showing them all.

With no model named, the default method without labels (utils.losses.DEFAULT_UNSUPERVISED_METHOD,
its scratch recipe) is trained on the folder itself into <out>/model first (benchmarks/near_duplicates.py
measured it against pHash on real photographs) and reused by later runs on the same --out."""
from __future__ import annotations

import argparse
import csv
import html
import io
import json
import os
import sys
from typing import Any

import numpy as np

from utils.cli.flags import check_bit, check_output_dir, check_range
from utils.errors import DataError, UserError
from utils.storage.fileio import atomic_open
from utils.storage.run_folder import RunFolder

DEFAULT_OUT = os.path.join("output", "duplicates")
RADIUS_SHARE = 0.125  # the default radius: this share of the bits (8 of 64: the best pair F1 of the learned
#                      codes in benchmarks/near_duplicates.py)


def status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def default_radius(bit: int) -> int:
    return int(round(RADIUS_SHARE * bit))


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    if args.bit is not None:
        check_bit(args.bit)
    if args.pretrained is not None and args.model_dir is not None:
        raise UserError("--pretrained and --model-dir: give one model, not both")
    if (args.pretrained is not None or args.model_dir is not None) and args.bit is None:
        raise UserError("--bit: give the code length of the model named by --pretrained / --model-dir")
    args.bit = args.bit or 64
    args.radius = default_radius(args.bit) if args.radius is None else args.radius
    check_range("--radius", args.radius, 0, args.bit)
    check_range("--epochs", args.epochs, 1)
    check_range("--train-images", args.train_images, 2)
    check_range("--train-steps", args.train_steps, 1)
    check_range("--max-sheets", args.max_sheets, 0)
    check_range("--batch-size", args.batch_size, 1)
    check_range("--num-workers", args.num_workers, 0, 64)
    check_range("--threads", args.threads, 0, 1024)
    if args.model_dir is not None and not os.path.isdir(args.model_dir):
        raise UserError(f"--model-dir: folder not found: {args.model_dir}")
    if not os.path.isdir(args.image_root):
        raise UserError(f"--image-root: folder not found: {args.image_root}")
    check_output_dir(args.out, "--out")
    return args


def training_copies(root: str, paths: tuple[str, ...], out: str, side: int,
                    threads: int = 0) -> tuple[list[str], list[tuple[str, str]]]:
    """Decode every image once and write a small copy (shortest side `side`, JPEG) into `out` for training:
    an epoch then reads small files instead of full-size photographs (a 20-megapixel JPEG takes most of a
    second to decode on one core). Returns the copies' names, and (path, reason) of the images that do not
    decode (left out of training)."""
    from concurrent.futures import ThreadPoolExecutor

    import cv2
    from tqdm import tqdm

    from utils.data.images import read_image
    from utils.storage.fileio import atomic_write_bytes

    os.makedirs(out, exist_ok=True)

    def copy(item: tuple[int, str]) -> tuple[str | None, str | None]:
        number, path = item
        try:
            image = read_image(os.path.join(root, path))
        except DataError as exc:
            return None, str(exc).split(": ", 1)[-1]
        scale = side / min(image.shape[:2])
        if scale < 1:
            size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        name = f"{number:07d}.jpg"
        atomic_write_bytes(os.path.join(out, name), data.tobytes())
        return name, None

    copies, bad = [], []
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
        done = pool.map(copy, enumerate(paths))
        for path, (name, why) in zip(paths, tqdm(done, total=len(paths), desc="small copies for training",
                                                 unit="img", file=sys.stderr, disable=len(paths) < 50)):
            if name is None:
                bad.append((path, why))
            else:
                copies.append(name)
    return copies, bad


def write_lists(folder: str, paths: list[str]) -> str:
    """Unlabelled lists: train on every one of `paths`; test and database: their first 100 and 500 (the
    run's evaluation, of code health only)."""
    from utils.data.lists import format_path

    order = np.arange(len(paths))
    picks = {"train": order, "test": order[:100], "database": order[:500]}
    os.makedirs(folder, exist_ok=True)
    for split, idx in picks.items():
        with atomic_open(os.path.join(folder, f"{split}.txt"), "w", encoding="utf-8") as f:
            f.write("".join(format_path(paths[i]) + "\n" for i in sorted(idx)))
    return folder


def train_default_model(args: argparse.Namespace, root: str, paths: tuple[str, ...]) -> str:
    """Train the default method without labels on the folder's images (`paths` under `root`) into
    <out>/model, or reuse the model there; returns the weights' prefix."""
    from utils.config import build_config
    from utils.config.files import unsupervised_config
    from utils.storage.weights import resolve_weights

    model = RunFolder(os.path.join(args.out, "model"))
    prefix = model.best(args.bit)
    if os.path.isfile(resolve_weights(prefix)):
        status(f"model: {resolve_weights(prefix)} (trained on this folder by an earlier run; delete {model.path} to "
               "train again)")
        return prefix
    method, recipe = unsupervised_config(False)
    base = build_config(recipe, {"bit": args.bit})
    copies_dir = os.path.join(args.out, "training_images")
    sample = np.sort(np.random.default_rng(0).permutation(len(paths))[:args.train_images])  # seeded
    copies, bad = training_copies(root, tuple(paths[i] for i in sample), copies_dir,
                                  2 * base["dataset"]["resize_size"], args.threads)
    if bad:
        status(f"{len(bad)} of {len(paths)} images do not decode and are left out of training, e.g. {bad[0][0]}: "
               f"{bad[0][1]}")
    if len(copies) < 2:
        raise DataError(f"--image-root {args.image_root}: {len(copies)} readable images; duplicates need two or more")
    lists = write_lists(os.path.join(args.out, "lists"), copies)
    flags = {"dataset": "folder", "data_path": os.path.abspath(copies_dir), "list_dir": lists, "bit": args.bit,
             "output_dir": model.path, "device": "cpu", "threads": args.threads}
    train_images = len(copies)
    train = base["train"]
    batch = min(train["batch_size"], train_images)
    # a small folder gets more epochs: at least --train-steps steps (what the benchmark's 384 images x 30 epochs
    # took), with the recipe's learning-rate steps stretched alike and no loss-rise warnings for one-step epochs
    steps = train_images // batch
    epochs = max(args.epochs, -(-args.train_steps // steps))
    decay = max(1, round(train["lr_decay_every"] * epochs / train["epochs"]))
    cfg = build_config(recipe, {**flags, "epoch": epochs, "batch_size": batch},
                       [f"train.eval_every={epochs}", "train.eval_untrained=false", f"train.lr_decay_every={decay}",
                        *(["train.loss_rise_epochs=0"] if steps < 5 else [])])
    status(f"no model given: training {method} (the default method without labels, "
           f"{os.path.relpath(recipe)}) on {train_images} of the {len(paths)} images for {epochs} epochs into {model.path}")
    from utils.runtime.device import setup_device
    from utils.training.engine import Engine

    setup_device("cpu", args.threads)
    Engine(cfg).run()
    return prefix


def folder_codes(args: argparse.Namespace, pretrained: str | None) -> Any:
    """The folder brought up to date in its code cache (utils.inference.folder_source: only new or changed
    images are encoded; unreadable ones are left out and listed): a FolderSync."""
    from utils.config import config_for_weights
    from utils.inference.folder_source import FolderSource
    from utils.inference.searcher import SearchSettings, build_encoder

    cfg = config_for_weights(pretrained, args.bit) if pretrained else None
    settings = SearchSettings(bit=args.bit, config=cfg, pretrained=pretrained, model_dir=args.model_dir,
                              threads=args.threads, batch_size=args.batch_size, num_workers=args.num_workers)
    source = FolderSource(args.image_root, cache_dir=os.path.join(args.out, "cache"), desc="encode images")
    return source.sync(build_encoder(settings), args.batch_size, args.num_workers, status)


def run_find_duplicates(args: argparse.Namespace) -> list[Any]:
    """Everything tools.find_duplicates does after parsing its flags; returns the groups."""
    from utils.data.folders import scan_images
    from utils.retrieval.duplicates import duplicate_groups, duplicate_pairs
    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()
    scan = scan_images(args.image_root)
    if len(scan.paths) < 2:
        raise DataError(f"--image-root {args.image_root}: {len(scan.paths)} images found; duplicates need two or more")
    pretrained = args.pretrained
    if pretrained is None and args.model_dir is None:
        pretrained = train_default_model(args, scan.root, scan.paths)
    sync = folder_codes(args, pretrained)
    paths, codes, skipped = list(sync.codes.paths), sync.codes.codes, sync.skipped
    pairs = duplicate_pairs(codes, args.radius)
    groups = duplicate_groups(codes, pairs)
    write_report(args, sync.root, paths, groups, pairs, skipped)
    in_groups = sum(len(g.members) for g in groups)
    print(f"{len(groups)} groups of near-duplicates ({in_groups} of {len(paths)} images, {len(pairs)} pairs within "
          f"Hamming radius {args.radius} of {args.bit} bits); report: {os.path.join(args.out, 'index.html')}")
    for number, group in enumerate(groups[:10], 1):
        print(f"group {number}: " + "  ".join(paths[m] for m in group.members))
    if len(groups) > 10:
        print(f"... {len(groups) - 10} more in {os.path.join(args.out, 'duplicates.csv')}")
    return groups


def write_report(args, root, paths, groups, pairs, skipped) -> None:
    from utils.evaluation.pictures import draw_group

    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["group", "path", "distance_to_first"])
    for number, group in enumerate(groups, 1):
        for member, distance in zip(group.members, group.distances):
            writer.writerow([number, paths[member], distance])
    report = {"image_root": root, "images": len(paths), "bit": args.bit, "radius": args.radius, "pairs": len(pairs),
              "groups": [{"group": n, "members": [{"path": paths[m], "distance_to_first": d}
                                                  for m, d in zip(g.members, g.distances)]}
                         for n, g in enumerate(groups, 1)],
              "skipped": [{"path": p, "reason": r} for p, r in skipped]}
    sheets = os.path.join(args.out, "sheets")
    os.makedirs(sheets, exist_ok=True)
    items = []
    for number, group in enumerate(groups[:args.max_sheets], 1):
        name = f"group_{number:04d}.jpg"
        draw_group([os.path.join(root, paths[m]) for m in group.members],
                   [[os.path.basename(paths[m]), f"distance {d}"] for m, d in zip(group.members, group.distances)],
                   os.path.join(sheets, name))
        names = "<br>".join(html.escape(paths[m]) for m in group.members)
        items.append(f"<h2>group {number}: {len(group.members)} images</h2><p>{names}</p>"
                     f"<img src=\"sheets/{name}\" alt=\"group {number}\">")
    for name in os.listdir(sheets):  # an earlier run's sheets of groups this run does not have
        if name.startswith("group_") and name.endswith(".jpg") and name[6:-4].isdigit() and int(name[6:-4]) > len(items):
            os.remove(os.path.join(sheets, name))
    more = len(groups) - len(items)
    page = ("<!doctype html><meta charset=\"utf-8\"><title>near-duplicates</title>"
            f"<h1>{len(groups)} groups of near-duplicates under {html.escape(root)}</h1>"
            f"<p>{len(paths)} images, {args.bit}-bit codes, Hamming radius {args.radius}.</p>" + "".join(items) +
            (f"<p>{more} more groups in duplicates.csv (--max-sheets)</p>" if more > 0 else ""))
    for name, text in (("duplicates.csv", rows.getvalue()), ("duplicates.json", json.dumps(report, indent=1) + "\n"),
                       ("index.html", page + "\n")):
        with atomic_open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.write(text)


__all__ = ["DEFAULT_OUT", "check_args", "default_radius", "run_find_duplicates"]
