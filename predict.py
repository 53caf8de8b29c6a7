"""Query by image: the database images nearest to IMG in Hamming distance.

Encodes the database once and caches its codes in <save-path>/database_code_<K>.npy (with a
fingerprint of the model and list; a stale cache is rebuilt). Works from trained weights
(--pretrained) or from an exported model (--model-dir), which give identical codes and share
the cache. With neither, it uses the main job's <save-path>/model_best_<K>, else the exported
model in <save-path>/inference. The answer goes to standard output; which model, the cache
and progress go to standard error.
"""
import argparse
import os
import sys

from utils.cli.flags import check_bit, check_range, str2bool
from utils.cli import exit_on_user_error
from utils.errors import UserError
from utils.retrieval import backend_names
from utils.runtime import configure


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length K of the model")
    p.add_argument("--img", required=True, help="the query image")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--pretrained", default=None, metavar="PREFIX",
                     help="trained weights PREFIX(.safetensors|.pdparams) (dygraph); default, with no --model-dir "
                          "either: <save-path>/model_best_<K> when it exists")
    src.add_argument("--model-dir", "--model_dir", default=None,
                     help="exported model folder (export_model.py), run with Paddle Inference; default, with no "
                          "--pretrained either and no trained weights: <save-path>/inference")
    p.add_argument("--dataset", default="lite", help="data set whose database is searched")
    p.add_argument("--data-path", "--data_path", default=None, help="image root of the data set")
    p.add_argument("--list-dir", "--list_dir", default=None, help="folder of database.txt (default: data/<dataset>/)")
    p.add_argument("--topk", type=int, default=argparse.SUPPRESS,  # unset is told apart from 10: see radius_cap
                   help="number of matches to return (default: 10, or the --index-config's return_k); with "
                        "--radius: at most this many, the nearest")
    p.add_argument("--radius", type=int, default=None,
                   help="return every database image within this Hamming distance (inclusive) instead of top-k")
    p.add_argument("--index-config", "--index_config", default=None, metavar="FILE.yaml",
                   help="PP-ShiTu index settings: a yaml with an IndexProcess section (index_method FLAT, dist_type "
                        "hamming; hamming_radius N as --radius N, return_k as --topk, image_root as --data-path, "
                        "index_dir: where the database codes are cached); flags given here win (docs/retrieval.md)")
    p.add_argument("--index-backend", "--index_backend", default="auto", choices=backend_names(),
                   help="Hamming index backend (utils.retrieval.HammingIndex, docs/retrieval.md); auto: the "
                        "fastest exact path measured; milvus: a milvus-lite file <save-path>/milvus_<K>.db")
    p.add_argument("--save-path", "--save_path", default="./output",
                   help="folder for the code cache and pictures, and where the default model is looked for")
    p.add_argument("--show", action="store_true", help="write (and display, when possible) the query beside its matches")
    p.add_argument("--batch-size", "--batch_size", type=int, default=32, help="batch size for encoding the database")
    p.add_argument("--num-workers", "--num_workers", type=int, default=2, help="image decoding worker processes")
    p.add_argument("--use-mkldnn", "--use_mkldnn", type=str2bool, default=True,
                   help="oneDNN for the exported model on CPU")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("-c", "--config", default=None, help="training config (default: the one saved beside the weights)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = p.parse_args(argv)
    check_bit(args.bit)
    args.topk = getattr(args, "topk", None)
    args.index_settings = None
    if args.index_config is not None:
        from utils.retrieval.index_config import read_index_config

        settings = args.index_settings = read_index_config(args.index_config).check_bit(args.bit)
        args.radius = settings.radius if args.radius is None else args.radius
        args.topk = settings.topk if args.topk is None else args.topk
        args.data_path = settings.image_root if args.data_path is None else args.data_path
    args.radius_cap = args.topk  # with a radius: at most this many (PP-ShiTu's return_k), None: all
    args.topk = 10 if args.topk is None else args.topk
    check_range("--topk", args.topk, 1)
    check_range("--radius", args.radius, 0, args.bit)  # beyond K bits every image is within the radius
    check_range("--batch-size", args.batch_size, 1)
    check_range("--num-workers", args.num_workers, 0, 64)
    check_range("--threads", args.threads, 0, 1024)
    if args.model_dir is not None and not os.path.isdir(args.model_dir):
        raise UserError(f"--model-dir: folder not found: {args.model_dir}")
    if args.data_path is not None and not os.path.isdir(args.data_path) and args.dataset != "lite":
        given = args.index_settings is None or args.data_path != args.index_settings.image_root
        raise UserError(f"{'--data-path' if given else 'IndexProcess.image_root'}: folder not found: {args.data_path}")
    if os.path.exists(args.save_path) and not os.path.isdir(args.save_path):
        raise UserError(f"--save-path {args.save_path}: exists and is not a folder")
    return args


def status(message):
    """What predict.py is doing (which model, the cache): standard error, so stdout is the answer alone."""
    print(message, file=sys.stderr, flush=True)


def label_text(label_row, names):
    return ",".join(names[i] for i in label_row.nonzero()[0]) or "-"


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from utils.cli.flags import check_output_dir
    from utils.config import config_for_weights
    from utils.inference.model_files import default_model
    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()

    if args.pretrained is None and args.model_dir is None:
        kind, path, said = default_model(args.save_path, args.bit)
        setattr(args, kind, path)
        status(said)
    check_output_dir(args.save_path, "--save-path")
    cache_dir = args.save_path
    if args.index_settings is not None:
        if args.index_settings.index_dir is not None:
            cache_dir = check_output_dir(args.index_settings.index_dir, "IndexProcess.index_dir")
        if args.index_settings.note():
            status(args.index_settings.note())

    cfg = config_for_weights(args.pretrained, args.bit, args.config, args.dataset, args.data_path, args.override)
    if args.list_dir:
        cfg["dataset"]["list_dir"] = args.list_dir
    if not os.path.isfile(args.img):
        raise UserError(f"--img: image not found: {args.img}")

    import numpy as np

    from utils.data.images import read_image
    from utils.data.lists import class_names, labels_of, parse_list
    from utils.data.transforms import build_transform

    query_image = read_image(args.img)  # a bad query fails before any model or database work

    from utils.config import dataset_lists
    from utils.inference.code_cache import list_codes
    from utils.inference.encoders import DygraphEncoder, InferenceEncoder
    from utils.retrieval import HammingIndex, format_code
    from utils.runtime.device import setup_device

    if args.model_dir:
        encoder = InferenceEncoder(args.model_dir, args.bit, use_mkldnn=args.use_mkldnn,
                                   cpu_threads=args.threads or os.cpu_count())
        setup_device("cpu", args.threads)
    else:
        setup_device(cfg["device"], args.threads)
        encoder = DygraphEncoder(cfg, args.pretrained)

    data_root = cfg["dataset"]["data_path"]
    db_list = dataset_lists(cfg)["database"]
    db_codes = list_codes(encoder, db_list, data_root, cache_dir, args.batch_size, args.num_workers,
                          "encode database", log=status)
    db_paths, db_labels = parse_list(db_list)
    lists = dataset_lists(cfg)
    q_labels = labels_of(args.img, data_root, (lists["test"], lists["database"]))
    names = class_names(data_root, db_labels.shape[1])

    query = build_transform(False, **encoder.preprocess)(query_image)[None]
    code = encoder.encode_batch(query)
    bits, hexcode = format_code(code[0])
    print(f"query {args.img}  code {hexcode}  ({args.bit} bits: {bits})")
    options = {}
    if args.index_backend == "milvus":  # a fresh collection of the current codes, in a local milvus-lite file
        options = {"uri": os.path.join(os.path.abspath(args.save_path), f"milvus_{args.bit}.db"), "drop": True}
    index = HammingIndex(args.bit, args.index_backend, threads=args.threads or None, **options)
    index.add(db_codes)
    if args.radius is not None:
        distances, indices = index.range_search(code, args.radius)[0]
        within = len(indices)
        distances, indices = distances[:args.radius_cap], indices[:args.radius_cap]
        shown = f", the nearest {len(indices)}" if len(indices) < within else ""
        print(f"{within} database images within Hamming radius {args.radius}{shown}:")
    else:
        distances, indices = (a[0] for a in index.search(code, args.topk))
        print(f"top {len(indices)} of {len(db_codes)} database images:")
    judge = q_labels is not None and q_labels.size > 0  # unlabelled lists: nothing to judge matches by
    if judge:
        print(f"query labels: {label_text(q_labels, names)} (relevant = shares a label)")
    print(f"{'rank':>4} {'distance':>8}  {'image':<40} labels" + ("  relevant" if judge else ""))
    matches = []
    for rank, (d, i) in enumerate(zip(distances, indices), 1):
        text = label_text(db_labels[i], names)
        relevant = bool((q_labels * db_labels[i]).sum() > 0) if judge else None
        print(f"{rank:>4} {int(d):>8}  {db_paths[i]:<40} {text}" + (f"  {'yes' if relevant else 'no'}" if judge else ""))
        matches.append((os.path.join(data_root, db_paths[i]), int(d), text, relevant))
    if args.show:
        from utils.evaluation.pictures import draw_matches, try_display

        stem = os.path.splitext(os.path.basename(args.img))[0]
        caption = [label_text(q_labels, names) if judge else f"{args.bit} bits"]
        out = draw_matches(args.img, caption, matches[:20],
                           os.path.join(args.save_path, f"retrieval_{stem}_{args.bit}.jpg"))
        print(f"picture: {out}")
        try_display(out)
    return np.asarray(indices)


if __name__ == "__main__":
    main()
