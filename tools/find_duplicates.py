"""Find near-duplicate images in a folder: copies that were cropped, mirrored, rotated a little,
recoloured, resized, re-compressed or captioned.

    python -m tools.find_duplicates --image-root ~/Pictures                     # no model: trains one first
    python -m tools.find_duplicates --image-root ~/Pictures --radius 6 --out output/dups
    python -m tools.find_duplicates --image-root DIR --pretrained output/model_best_64 --bit 64
    python -m tools.find_duplicates --image-root DIR --model-dir output/inference --bit 64

Every image under --image-root (extensions jpg jpeg png webp bmp tif tiff in any case; hidden files and
folders skipped) is decoded once (unreadable ones are skipped and listed), encoded by the model, and every
pair whose codes lie within Hamming --radius is a duplicate pair; pairs that share an image join one group.
With no --pretrained / --model-dir the default method without labels is trained on the folder itself first
(into OUT/model, reused by later runs with the same --out; docs/own_data.md says how long and how well).
Writes OUT/duplicates.csv (group, path, distance to the group's first image), OUT/duplicates.json (the same
plus the skipped files), a contact sheet a group (OUT/sheets/) and OUT/index.html showing them.
"""
if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m tools.find_duplicates [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse

from utils.cli import exit_on_user_error
from utils.cli.duplicates import DEFAULT_OUT, RADIUS_SHARE, check_args, run_find_duplicates
from utils.runtime import configure
from tools.split_common import HelpFormatter


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--image-root", required=True, help="the folder of images (searched with its sub-folders)")
    p.add_argument("--radius", type=int, default=None,
                   help=f"Hamming radius of a duplicate pair (default: {RADIUS_SHARE * 100:.1f}%% of the bits, 8 of 64); "
                        "smaller finds fewer, closer copies")
    p.add_argument("--out", default=DEFAULT_OUT, help="report folder (and, with no model given, the model trained)")
    p.add_argument("--pretrained", default=None, metavar="PREFIX",
                   help="trained weights (e.g. output/model_best_64; their config_<K>.yaml beside them)")
    p.add_argument("--model-dir", default=None, help="an exported model (export_model.py's folder)")
    p.add_argument("--bit", type=int, default=None,
                   help="code length of the model (needed with --pretrained / --model-dir; default 64 otherwise)")
    p.add_argument("--epochs", type=int, default=30, help="with no model given: epochs of the training on the folder")
    p.add_argument("--train-images", type=int, default=5000,
                   help="with no model given: at most this many images (a seeded sample) to train on")
    p.add_argument("--train-steps", type=int, default=360,
                   help="with no model given: at least this many training steps (a small folder gets more epochs)")
    p.add_argument("--max-sheets", type=int, default=200, help="contact sheets for at most this many groups")
    p.add_argument("--batch-size", type=int, default=32, help="images encoded at once")
    p.add_argument("--num-workers", type=int, default=2, help="image decoding processes while encoding")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    return p


@exit_on_user_error
def main(argv=None):
    configure()
    run_find_duplicates(check_args(parser().parse_args(argv)))


if __name__ == "__main__":
    main()
