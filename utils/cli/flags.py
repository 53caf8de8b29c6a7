"""The training flags shared by main_single_gpu.py and main_multi_gpu.py, and the checks of flags
that the other entry points share (docs/architecture.md: the interface contract)."""
import argparse
import os

from utils.config import DEFAULTS, FLAG_KEYS, SUPPORTED_BITS, build_config, default_config_path, saved_config
from utils.config.load import flag_defaults
from utils.config.spec import add_flags
from utils.errors import ConfigError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds `(default: X)` where there is a default to tell: not after a help text that already says
    its default, nor for a flag with no value (None), an on/off flag or a repeatable one starting empty."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (default is None or default is argparse.SUPPRESS or default is False or default == []
                or "default" in text.lower() or "%(default)" in text or not action.option_strings):
            return text
        return super()._get_help_string(action)


def train_parser(description):
    """main_*.py's flags: -c and -o, then one flag per config key that has one (utils.config.spec)."""
    default_config = default_config_path(DEFAULTS["dataset"]["name"])
    p = argparse.ArgumentParser(
        description=description, formatter_class=HelpFormatter,
        epilog=f"The defaults shown are a run's with no -c and no --dataset: configs/{os.path.basename(default_config)} "
               "over the built-in ones (utils/config/spec.py); -c (or --dataset's config) sets its own, flags "
               "override the config, -o any key.")
    p.add_argument("-c", "--config", default=None,
                   help="YAML config (default: configs/hashnet_<dataset>.yaml when it exists)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key, e.g. -o train.lr=0.002 -o loss.alpha=0.2 (repeatable)")
    add_flags(p, shown=flag_defaults(DEFAULTS, default_config))
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
    flags = {k: getattr(args, k) for k in FLAG_KEYS}
    config = args.config
    if config is None and args.eval and args.pretrained:  # evaluate with the settings that trained the weights
        config = saved_config(args.pretrained, args.bit)
    cfg = build_config(config, flags, args.override)
    check_output_dir(cfg["output_dir"])
    return cfg
