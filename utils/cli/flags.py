"""The training flags shared by main_single_gpu.py and main_multi_gpu.py, and the checks of flags
that the other entry points share (docs/architecture.md: the interface contract)."""
import argparse
import os

from utils.config import SUPPORTED_BITS, build_config, saved_config
from utils.errors import ConfigError


def _flag(parser, *names, **kw):
    """Hyphenated flags, with the reference's underscore spelling accepted as an alias."""
    aliases = ["--" + n[2:].replace("-", "_") for n in names if n.startswith("--") and "-" in n[2:]]
    parser.add_argument(*names, *aliases, **kw)


def train_parser(description):
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("-c", "--config", default=None,
                   help="YAML config; default: configs/hashnet_<dataset>.yaml when it exists")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key, e.g. -o train.lr=0.002 -o loss.alpha=0.2 (repeatable)")
    _flag(p, "--dataset", default=None, help="data set name: lite (built-in, generated when absent), coco, nuswide_21, ...")
    _flag(p, "--data-path", default=None, help="image root; list paths are relative to it (lite default: ./datasets/lite/)")
    _flag(p, "--list-dir", default=None, help="folder with train.txt/test.txt/database.txt (default: data/<dataset>/)")
    _flag(p, "--bit", type=int, default=None, help="code length K (16, 32, 48, 64, ...)")
    _flag(p, "--epoch", "--epochs", dest="epoch", type=int, default=None, help="number of training epochs")
    _flag(p, "--batch-size", type=int, default=None, help="batch size per device/process")
    _flag(p, "--lr", type=float, default=None, help="learning rate at a global batch of train.base_batch (64)")
    _flag(p, "--seed", type=int, default=None, help="random seed (weights, data order, augmentation, dropout)")
    _flag(p, "--num-workers", type=int, default=None, help="DataLoader worker processes")
    _flag(p, "--output-dir", default=None, help="where weights, logs, VisualDL curves and the resolved config go")
    _flag(p, "--pretrained", default=None, metavar="PREFIX",
          help="start from (or, with --eval, evaluate) these weights: PREFIX.pdparams")
    _flag(p, "--pretrained-backbone", default=None, metavar="PATH",
          help="ImageNet AlexNet weights: a local .pdparams, or 'imagenet' to download paddle.vision's (online only)")
    _flag(p, "--resume", default=None, metavar="PREFIX",
          help="continue an interrupted run from PREFIX.pdparams + PREFIX.pdopt (e.g. output/model_last_64)")
    _flag(p, "--eval", action="store_const", const=True, default=None, help="only evaluate --pretrained weights")
    _flag(p, "--plots", action="store_const", const=True, default=None,
          help="after evaluation, write pr_curve_<K>.png and precision_at_n_<K>.png (matplotlib) to the output dir")
    _flag(p, "--device", default=None, choices=["auto", "cpu", "gpu"], help="default: gpu when available, else cpu")
    _flag(p, "--threads", type=int, default=None, help="CPU threads per process (0: cores / processes)")
    _flag(p, "--skip-bad-images", action="store_const", const=True, default=None,
          help="skip missing/unreadable images (counted and reported at the end) instead of stopping at the first")
    _flag(p, "--allow-outside-data-root", action="store_const", const=True, default=None,
          help="accept list paths that are absolute or lead out of --data-path with ../ (refused by default)")
    return p


def str2bool(text):
    """True/False for flags like --use-gpu; anything else is an argparse error (not a silent False)."""
    if text.lower() in ("1", "true", "yes", "y", "on"):
        return True
    if text.lower() in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def check_range(name, value, low, high=None, what="an integer"):
    """value within [low, high] or a ConfigError (one line) naming the flag."""
    if value is not None and (value < low or (high is not None and value > high)):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(f"{name} must be {what} {bound}, got {value}")
    return value


def check_bit(bit, flag="--bit"):
    if bit not in SUPPORTED_BITS:
        raise ConfigError(f"{flag} {bit} is not a supported code length {SUPPORTED_BITS}")
    return bit


def check_output_dir(path, flag="--output-dir"):
    """A folder we can write to (created if absent), or a ConfigError (one line)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"{flag} {path}: exists and is not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: cannot create folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: folder is not writable")
    return path


def add_image_run_flags(parser, batch_help="images per run", threads_help="CPU math threads"):
    """The flags the deployment CLIs share (deploy/inference_python, deploy/onnxruntime_python)."""
    parser.add_argument("--img-path", "--img_path", required=True, help="an image, or a folder of images")
    parser.add_argument("--batch-size", "--batch_size", type=int, default=1, help=batch_help)
    parser.add_argument("--cpu-threads", "--cpu_threads", type=int, default=2, help=threads_help)
    parser.add_argument("--benchmark", type=str2bool, default=False, help="print a timing report")
    parser.add_argument("--warmup", type=int, default=2, help="untimed warm-up batches with --benchmark")


def check_image_run_flags(args):
    check_bit(args.bit)
    check_range("--batch-size", args.batch_size, 1, 4096)
    check_range("--cpu-threads", args.cpu_threads, 1, 1024)
    check_range("--warmup", args.warmup, 0)
    if args.model_dir is not None and not os.path.isdir(args.model_dir):
        raise ConfigError(f"--model-dir: folder not found: {args.model_dir}")
    return args


def config_from_args(args):
    flags = {k: getattr(args, k) for k in ("dataset", "data_path", "list_dir", "bit", "epoch", "batch_size", "lr",
                                           "seed", "num_workers", "output_dir", "pretrained", "pretrained_backbone",
                                           "resume", "eval", "plots", "device", "threads", "skip_bad_images",
                                           "allow_outside_data_root")}
    config = args.config
    if config is None and args.eval and args.pretrained:  # evaluate with the settings that trained the weights
        config = saved_config(args.pretrained, args.bit)
    cfg = build_config(config, flags, args.override)
    check_output_dir(cfg["output_dir"])
    return cfg
