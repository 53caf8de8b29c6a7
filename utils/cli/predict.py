"""predict.py's work: its flags checked, the model it uses, one Searcher (utils.inference.searcher),
and the answer printed (standard output); which model, the cache and progress go to standard error."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

import numpy as np

from utils.cli.flags import check_bit, check_output_dir, check_range
from utils.errors import UserError
from utils.storage.run_folder import RunFolder

DEFAULT_TOPK = 10


def check_predict_args(args: argparse.Namespace) -> argparse.Namespace:
    """Merge the --index-config's settings under the flags given, then check every flag (one line
    naming the flag or the key at fault). Sets args.index_settings and args.radius_cap (with a radius:
    at most this many matches, PP-ShiTu's return_k or an explicit --topk; None: all)."""
    check_bit(args.bit)
    args.topk = getattr(args, "topk", None)
    args.database_dir = getattr(args, "database_dir", None)
    args.verbose = getattr(args, "verbose", False)
    check_database_dir(args)
    args.index_settings = None
    if args.index_config is not None:
        from utils.retrieval.index_config import read_index_config

        settings = args.index_settings = read_index_config(args.index_config).check_bit(args.bit)
        args.radius = settings.radius if args.radius is None else args.radius
        args.topk = settings.topk if args.topk is None else args.topk
        if args.database_dir is None:  # the flag wins over the file's image_root
            args.data_path = settings.image_root if args.data_path is None else args.data_path
    args.radius_cap = args.topk
    args.topk = DEFAULT_TOPK if args.topk is None else args.topk
    check_range("--topk", args.topk, 1)
    check_range("--radius", args.radius, 0, args.bit)  # beyond K bits every image is within the radius
    args.rescore = getattr(args, "rescore", 0)
    check_range("--rescore", args.rescore, 0)
    if args.rescore and args.radius is not None:
        raise UserError("--rescore re-ranks a top-k search; it does not apply with --radius (or hamming_radius)")
    check_range("--batch-size", args.batch_size, 1)
    check_range("--num-workers", args.num_workers, 0, 64)
    check_range("--threads", args.threads, 0, 1024)
    if args.model_dir is not None and not os.path.isdir(args.model_dir):
        raise UserError(f"--model-dir: folder not found: {args.model_dir}")
    if args.data_path is not None and not os.path.isdir(args.data_path) and args.dataset not in (None, "lite"):
        given = args.index_settings is None or args.data_path != args.index_settings.image_root
        raise UserError(f"{'--data-path' if given else 'IndexProcess.image_root'}: folder not found: {args.data_path}")
    if os.path.exists(args.save_path) and not os.path.isdir(args.save_path):
        raise UserError(f"--save-path {args.save_path}: exists and is not a folder")
    return args


def check_database_dir(args: argparse.Namespace) -> None:
    """--database-dir replaces the data set's database list: it names an existing folder, and the flags
    that only place that list are refused rather than ignored."""
    if args.database_dir is None:
        return
    for flag, value in (("--data-path", args.data_path), ("--list-dir", getattr(args, "list_dir", None))):
        if value is not None:
            raise UserError(f"--database-dir searches the folder {args.database_dir} instead of the data set's "
                            f"database list: drop {flag}")
    if not os.path.isdir(args.database_dir):
        what = "not a folder" if os.path.exists(args.database_dir) else "folder not found"
        raise UserError(f"--database-dir: {what}: {args.database_dir}")


def status(message: str) -> None:
    """What predict.py is doing (which model, the cache): standard error, so stdout is the answer alone."""
    print(message, file=sys.stderr, flush=True)


def label_text(label_row: np.ndarray, names: list[str]) -> str:
    return ",".join(names[i] for i in label_row.nonzero()[0]) or "-"


def search_settings(args: argparse.Namespace) -> Any:
    """The SearchSettings of predict.py's flags: the model (the run folder's default when none is
    named), its config, the code cache (the --index-config's index_dir or --save-path)."""
    from utils.config import config_for_weights
    from utils.inference.searcher import SearchSettings

    folder = RunFolder(args.save_path)
    pretrained, model_dir = args.pretrained, args.model_dir
    if pretrained is None and model_dir is None:
        kind, path, said = folder.default_model(args.bit)
        pretrained, model_dir = (path, None) if kind == "pretrained" else (None, path)
        status(said)
    check_output_dir(args.save_path, "--save-path")
    cache_dir, settings = args.save_path, args.index_settings
    if settings is not None:
        if settings.index_dir is not None:
            cache_dir = check_output_dir(settings.index_dir, "IndexProcess.index_dir")
        if settings.note():
            status(settings.note())
    cfg = config_for_weights(pretrained, args.bit, args.config, args.dataset, args.data_path, args.override,
                             list_dir=args.list_dir)
    backend, options = args.index_backend, {}
    if backend == "milvus":  # a fresh collection of the current codes, in a local milvus-lite file
        options = {"uri": folder.milvus(args.bit), "drop": True}
    if settings is not None:  # PP-ShiTu's index_method HNSW<M> / IVF<n> pick an approximate backend
        backend, options = settings.index_choice(backend, options)
    return SearchSettings(bit=args.bit, config=cfg, pretrained=pretrained, model_dir=model_dir, cache_dir=cache_dir,
                          backend=backend, index_options=options, threads=args.threads,
                          use_mkldnn=args.use_mkldnn, batch_size=args.batch_size, num_workers=args.num_workers,
                          rescore=args.rescore)


def run_predict(args: argparse.Namespace) -> np.ndarray:
    """Everything predict.py does after parsing its flags; returns the database indices of the matches."""
    from utils.data.images import read_image
    from utils.inference.searcher import Searcher
    from utils.retrieval import format_code
    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()
    settings = search_settings(args)
    if not os.path.isfile(args.img):
        raise UserError(f"--img: image not found: {args.img}")
    query_image = read_image(args.img)  # a bad query fails before any model or database work
    database, query_labels = database_source(args, settings)
    searcher = Searcher.from_settings(dataclasses.replace(settings, database=database), log=status)
    data_root = database.root
    q_labels = query_labels()
    if q_labels is None and args.database_dir is None:  # a database image: its row is known already
        q_labels = searcher.labels_of(os.path.relpath(os.path.abspath(args.img), database.root))
    encoded = searcher.encode_images([query_image])
    code = encoded.codes
    bits, hexcode = format_code(code[0])
    print(f"query {args.img}  code {hexcode}  ({args.bit} bits: {bits})")
    if args.radius is not None:
        result = searcher.search(code, args.radius_cap, radius=args.radius)
        within = result.within_radius or 0
        shown = f", the nearest {len(result.matches)}" if len(result.matches) < within else ""
        if result.nearest_distance is not None:
            shown = (f" (the nearest of {result.database_size} is at distance {result.nearest_distance}: "
                     f"--radius {result.nearest_distance} reaches it)")
        print(f"{within} database images within Hamming radius {args.radius}{shown}:")
    else:
        result = searcher.search(code, args.topk, features=encoded.features[0])
        rescored = (f", re-ranked by feature cosine among the {args.rescore} nearest codes and their ties"
                    if args.rescore else "")
        print(f"top {len(result.matches)} of {result.database_size} database images{rescored}:")
    print_matches(searcher, result, q_labels, args, data_root)
    return np.asarray([m.index for m in result.matches])


def database_source(args: argparse.Namespace, settings: Any) -> tuple[Any, Any]:
    """(the database source, a function giving the query's labels or None): the folder of --database-dir
    (no labels), else the data set's database list (a query from its test list has labels)."""
    if args.database_dir is not None:
        from utils.inference.folder_source import FolderSource

        return FolderSource(args.database_dir, settings.cache_dir, verbose=args.verbose), lambda: None
    from utils.config import dataset_lists
    from utils.data.lists import labels_of
    from utils.inference.searcher import ListSource

    data_root, lists = settings.config["dataset"]["data_path"], dataset_lists(settings.config)
    return (ListSource(lists["database"], data_root, settings.cache_dir),
            lambda: labels_of(args.img, data_root, (lists["test"],)))


def print_matches(searcher: Any, result: Any, q_labels: np.ndarray | None, args: argparse.Namespace,
                  data_root: str) -> None:
    """The table of matches (judged when the query has labels), and with --show the picture."""
    names = searcher.class_names
    if q_labels is not None and q_labels.size == 0:  # unlabelled lists: nothing to judge matches by
        q_labels = None
    judge = q_labels is not None
    if q_labels is not None:
        print(f"query labels: {label_text(q_labels, names)} (relevant = shares a label)")
    scored = any(m.score is not None for m in result.matches)
    labelled = bool(searcher.num_classes)  # a folder (or an unlabelled list) has no label column
    print((f"{'rank':>4} {'distance':>8}" + (f" {'cosine':>7}" if scored else "") + f"  {'image':<40}"
           + (" labels" if labelled else "")).rstrip() + ("  relevant" if judge else ""))
    shown = []
    for m in result.matches:
        text = label_text(m.labels, names)
        relevant = bool((q_labels * m.labels).sum() > 0) if judge else None
        score = f" {m.score:>7.4f}" if scored and m.score is not None else ""
        print((f"{m.rank:>4} {m.distance:>8}{score}  {m.path:<40}" + (f" {text}" if labelled else "")).rstrip()
              + (f"  {'yes' if relevant else 'no'}" if judge else ""))
        shown.append((os.path.join(data_root, m.path), m.distance, text, relevant))
    if args.show:
        from utils.evaluation.pictures import draw_matches, try_display

        caption = [label_text(q_labels, names) if q_labels is not None else f"{args.bit} bits"]
        out = draw_matches(args.img, caption, shown[:20], RunFolder(args.save_path).picture(args.img, args.bit))
        print(f"picture: {out}")
        try_display(out)
