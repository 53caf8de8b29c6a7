"""Query by image: the database images nearest to IMG in Hamming distance.

Encodes the database once and caches its codes in <save-path> (with a fingerprint of the model and
list; a stale cache is rebuilt). The database is the data set's database list, or with --database-dir
every image under a folder (no lists, no labels; later runs encode only new or changed files). Works from trained weights (--pretrained) or from an exported model
(--model-dir), which give identical codes and share the cache. With neither, it uses the main job's
best weights in <save-path>, else the exported model in <save-path>/inference. The answer goes to
standard output; which model, the cache and progress go to standard error.
"""
import argparse

from utils.cli import exit_on_user_error
from utils.cli.flags import HelpFormatter, str2bool
from utils.cli.predict import check_predict_args, run_predict
from utils.retrieval import backend_names
from utils.retrieval.rescore import TIE_CAP_FACTOR
from utils.runtime import configure
from utils.storage.run_folder import DEFAULT_OUTPUT, RunFolder

BEST = RunFolder("<save-path>").best("<K>")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length K of the model")
    p.add_argument("--img", required=True, help="the query image")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--pretrained", default=None, metavar="PREFIX",
                     help=f"trained weights PREFIX(.safetensors|.pdparams) (dygraph); default, with no --model-dir "
                          f"either: {BEST} when it exists")
    src.add_argument("--model-dir", "--model_dir", default=None,
                     help="exported model folder (export_model.py), run with Paddle Inference; default, with no "
                          "--pretrained either and no trained weights: <save-path>/inference")
    p.add_argument("--dataset", default=None,
                   help="data set whose database is searched (default: the one the weights were trained on, "
                        "from the config saved beside them; else lite)")
    p.add_argument("--data-path", "--data_path", default=None, help="image root of the data set")
    p.add_argument("--list-dir", "--list_dir", default=None, help="folder of database.txt (default: data/<dataset>/)")
    p.add_argument("--database-dir", "--database_dir", default=None, metavar="DIR",
                   help="search every image under DIR instead of the data set's database list (no lists or labels "
                        "needed; not with --data-path or --list-dir); the codes are cached in <save-path>, keyed by "
                        "DIR's path, and a later run encodes only the images added or changed since; nothing is "
                        "written into DIR. --dataset and -c still pick the model's config; --rescore, --radius, "
                        "--index-config work as with a list (docs/retrieval.md)")
    p.add_argument("--verbose", action="store_true",
                   help="with --database-dir: list every file left out (not readable as an image) on standard error")
    p.add_argument("--topk", type=int, default=argparse.SUPPRESS,  # unset is told apart from 10: radius_cap
                   help="number of matches to return (default: 10, or the --index-config's return_k); with "
                        "--radius: at most this many, the nearest")
    p.add_argument("--radius", type=int, default=None,
                   help="return every database image within this Hamming distance (inclusive) instead of top-k")
    p.add_argument("--rescore", type=int, default=0, metavar="N",
                   help=f"re-rank the top-k among the N nearest codes and the codes tied with the N-th (at most "
                        f"{TIE_CAP_FACTOR} x N) by the cosine similarity of the images' real-valued features (kept "
                        "as int8 beside the code cache); 0: off (docs/retrieval.md)")
    p.add_argument("--index-config", "--index_config", default=None, metavar="FILE.yaml",
                   help="PP-ShiTu index settings: a yaml with an IndexProcess section (index_method FLAT, dist_type "
                        "hamming; hamming_radius N as --radius N, return_k as --topk, image_root as --data-path, "
                        "index_dir: where the database codes are cached); flags given here win (docs/retrieval.md)")
    p.add_argument("--index-backend", "--index_backend", default="auto", choices=backend_names(),
                   help="Hamming index backend (utils.retrieval.HammingIndex, docs/retrieval.md); auto: the "
                        "fastest exact path measured; milvus: a milvus-lite file in <save-path>")
    p.add_argument("--save-path", "--save_path", default=DEFAULT_OUTPUT,
                   help="folder for the code cache and pictures, and where the default model is looked for")
    p.add_argument("--show", action="store_true", help="write (and display, when possible) the query beside its matches")
    p.add_argument("--batch-size", "--batch_size", type=int, default=32, help="batch size for encoding the database")
    p.add_argument("--num-workers", "--num_workers", type=int, default=2, help="image decoding worker processes")
    p.add_argument("--use-mkldnn", "--use_mkldnn", type=str2bool, default=True,
                   help="oneDNN for the exported model on CPU")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("-c", "--config", default=None, help="training config (default: the one saved beside the weights)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    return check_predict_args(p.parse_args(argv))


@exit_on_user_error
def main(argv=None):
    configure()
    return run_predict(parse_args(argv))


if __name__ == "__main__":
    main()
