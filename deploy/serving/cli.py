"""Start the image-search service: `python -m deploy.serving [--model-dir DIR] [--data-path DIR] ...`

Serves an exported model (export_model.py) over a data set's database list, or with --database-dir
over every image under a folder (no lists or labels), with a web page at http://HOST:PORT/. With no
flags, after the main job (`python main_single_gpu.py`) it serves the main job's export
(./output/inference) over the lite data; when that folder holds no exported model it exports the
main job's best weights there first (the same as export_model.py; --no-auto-export turns that off
and prints the command instead). Database codes are cached in
--cache-dir (shared with predict.py), images added with POST /items are kept in --store-dir.

Who may talk to it (deploy/serving/README.md, "Limits and safety"): requests must name the
service by an allowed Host (localhost, the --host address, --allowed-hosts); state-changing
requests from another site's page are refused; with --token (or the HASHNET_SERVING_TOKEN
environment variable, which `ps` does not show) POST /items needs `Authorization: Bearer TOKEN`.
"""
import argparse
import os
import socket

from deploy.serving.guard import TOKEN_ENV
from utils.cli import exit_on_user_error
from utils.cli.flags import HelpFormatter
from utils.errors import ConfigError, UserError, WeightsError
from utils.retrieval import backend_names
from utils.retrieval.rescore import TIE_CAP_FACTOR
from utils.runtime import configure
from utils.storage.run_folder import DEFAULT_OUTPUT, ExportFolder, RunFolder, resolve_weights

DEFAULT_BIT = 64
RUN = RunFolder(DEFAULT_OUTPUT)  # the main job's output folder: the default model, cache and store


class _HelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


def build_parser():
    """The service's flags; over 60 lines because it is one add_argument per flag."""
    p = argparse.ArgumentParser(prog="python -m deploy.serving", description=__doc__,
                                formatter_class=_HelpFormatter)
    m = p.add_argument_group("model")
    m.add_argument("--model-dir", "--model_dir", default=RUN.export.path,
                   help="exported model folder: the graph and its description (export_model.py)")
    m.add_argument("--bit", type=int, default=None,
                   help=f"code length; default: the exported model's ({DEFAULT_BIT} when exporting)")
    m.add_argument("--pretrained", default=None, metavar="PREFIX",
                   help=f"trained weights to export when --model-dir holds no model (default: {RUN.best('<K>')})")
    m.add_argument("--auto-export", action=argparse.BooleanOptionalAction, default=True,
                   help="export --pretrained into --model-dir when it holds no model (else: print the command)")
    m.add_argument("--predictors", type=int, default=2,
                   help="Paddle predictors, each used by one request at a time (1 serializes inference); "
                        "benchmarks/bench_serving.py compares settings")
    m.add_argument("--threads", type=int, default=1,
                   help="CPU math threads per predictor (0: cores / predictors); one was fastest in "
                        "benchmarks/bench_serving.py on 2 cores")
    m.add_argument("--use-mkldnn", action=argparse.BooleanOptionalAction, default=True,
                   help="oneDNN on CPU (several times faster)")
    d = p.add_argument_group("database")
    d.add_argument("--dataset", default=None, help="data set whose database list is searched (default: lite, built in)")
    d.add_argument("--database-dir", "--database_dir", default=None, metavar="DIR",
                   help="search every image under DIR instead of a data set's database list (not with --dataset, "
                        "--data-path or --list-dir; no labels): the codes are cached in --cache-dir, keyed by DIR's "
                        "path, a restart encodes only the images added or changed since, nothing is written into DIR; "
                        f"added images go to {RUN.serving_store('folder_<key>')} by default")
    d.add_argument("--data-path", "--data_path", default=None,
                   help="image root of the data set (default: the config's, ./datasets/lite/ for lite)")
    d.add_argument("--list-dir", "--list_dir", default=None, help="folder of database.txt (default: data/<dataset>/)")
    d.add_argument("--cache-dir", "--cache_dir", default=argparse.SUPPRESS,  # unset is told apart from the default
                   help=f"database code cache {os.path.basename(RUN.code_cache('<K>'))}.npy/.json (the same as "
                        f"predict.py --save-path) (default: {RUN.path}, or the --index-config's index_dir)")
    d.add_argument("--store-dir", "--store_dir", default=None,
                   help=f"images added with POST /items, their list and codes (default: {RUN.serving_store('<dataset>')})")
    d.add_argument("--read-only", action="store_true", help="refuse POST /items (403)")
    d.add_argument("--index-backend", "--index_backend", default="auto",
                   choices=[b for b in backend_names() if b != "milvus"],
                   help="Hamming index backend (utils.retrieval.HammingIndex)")
    d.add_argument("--index-config", "--index_config", default=None, metavar="FILE.yaml",
                   help="PP-ShiTu index settings: a yaml with an IndexProcess section (index_method FLAT, dist_type "
                        "hamming; hamming_radius: the radius and return_k: the k of a search that gives none, "
                        "image_root as --data-path, index_dir as --cache-dir); flags given here win")
    d.add_argument("--rescore", type=int, default=0, metavar="N",
                   help="re-rank each top-k search among the N nearest codes (and the codes tied with the N-th, "
                        f"at most {TIE_CAP_FACTOR} x N) by the cosine similarity of the images' real-valued features, kept as int8 beside the codes; "
                        "matches then carry their 'score'; a request with a radius is refused; 0: off "
                        "(docs/retrieval.md)")
    d.add_argument("--batch-size", "--batch_size", type=int, default=32, help="batch size for encoding the database")
    d.add_argument("--num-workers", "--num_workers", type=int, default=2,
                   help="image decoding processes for encoding the database")
    s = p.add_argument_group("HTTP")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    s.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port; the log says which)")
    s.add_argument("--max-upload-mb", type=float, default=10.0, help="largest uploaded image file, in MiB")
    s.add_argument("--max-pixels", type=int, default=40_000_000, help="largest uploaded image, width x height")
    s.add_argument("--max-request-pixels", type=int, default=40_000_000,
                   help="largest total width x height of the images of one request")
    s.add_argument("--max-decodes", type=int, default=2,
                   help="requests decoding images at once (with --max-request-pixels: bounds the memory they take)")
    s.add_argument("--upload-timeout", type=float, default=60.0,
                   help="seconds a request body may take to arrive (a stalled upload gets 408)")
    s.add_argument("--max-k", type=int, default=100, help="most matches one search may ask for")
    s.add_argument("--allowed-hosts", default="", metavar="NAME[,NAME...]",
                   help="host names this service may be reached by, beyond localhost and the --host address "
                        "(a leading dot allows subdomains, * any name: then DNS rebinding is not stopped)")
    s.add_argument("--token", default=None,
                   help=f"require 'Authorization: Bearer TOKEN' for POST /items (default: the {TOKEN_ENV} "
                        "environment variable; unset: no token)")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (info logs every request)")
    return p


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    for name in ("predictors", "batch_size", "max_pixels", "max_k", "max_request_pixels", "max_decodes"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.rescore < 0:
        p.error(f"--rescore must be >= 0 (0: off), got {args.rescore}")
    if args.threads < 0 or args.num_workers < 0 or not 0 <= args.port <= 65535 or args.max_upload_mb <= 0:
        p.error("--threads and --num-workers must be >= 0, --port 0..65535, --max-upload-mb > 0")
    if not args.upload_timeout > 0:
        p.error(f"--upload-timeout must be > 0, got {args.upload_timeout}")
    args.allowed_hosts = tuple(h.strip() for h in args.allowed_hosts.split(",") if h.strip())
    args.token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    args.cache_dir = getattr(args, "cache_dir", None)
    if args.database_dir is not None:
        given = [flag for flag, value in (("--dataset", args.dataset), ("--data-path", args.data_path),
                                          ("--list-dir", args.list_dir)) if value is not None]
        if given:
            p.error(f"--database-dir searches a folder instead of a data set's database list: drop {given[0]}")
        if not os.path.isdir(args.database_dir):
            p.error(f"--database-dir: folder not found: {args.database_dir}")
    args.dataset = "lite" if args.dataset is None else args.dataset
    args.index_settings = None
    if args.index_config is not None:  # a bad file fails before the port or the model is touched
        from utils.retrieval.index_config import read_index_config

        args.index_settings = read_index_config(args.index_config)
        if args.database_dir is None:  # the flag wins over the file's image_root
            args.data_path = args.index_settings.image_root if args.data_path is None else args.data_path
        args.cache_dir = args.index_settings.index_dir if args.cache_dir is None else args.cache_dir
        if args.rescore and args.index_settings.radius is not None:
            p.error(f"--rescore re-ranks a top-k search; it does not apply with {args.index_config}'s "
                    f"IndexProcess.hamming_radius (a radius search)")
    args.cache_dir = RUN.path if args.cache_dir is None else args.cache_dir
    return args


def ensure_model(model_dir, bit, pretrained, auto_export, log=print):
    """Make sure model_dir holds an exported model; export `pretrained` there when allowed."""
    if os.path.isfile(ExportFolder(model_dir).infer_cfg):
        _note_other_weights(model_dir, bit, pretrained, log)
        return
    if bit is None and pretrained is not None and os.path.isfile(resolve_weights(pretrained)):
        bit = _weights_bit(pretrained)  # a 16-bit model is exported as 16 bits, not as the default 64
    bit = bit or DEFAULT_BIT
    prefix = pretrained or RUN.best(bit)
    command = RUN.export_command(bit, prefix, model_dir)
    if not os.path.isfile(resolve_weights(prefix)):
        raise WeightsError(f"--model-dir {model_dir}: no exported model there ({os.path.basename(ExportFolder(model_dir).infer_cfg)}), "
                           f"and no weights {resolve_weights(prefix)} to export from: train (python main_single_gpu.py "
                           f"--bit {bit}), then run: {command}")
    if not auto_export:
        raise WeightsError(f"--model-dir {model_dir}: no exported model there; run: {command}")
    log(f"no exported model in {model_dir}: exporting {prefix} (the same as: {command})")
    from utils.cli.flags import check_output_dir
    from utils.config import config_for_weights
    from utils.inference.export import export_model

    check_output_dir(model_dir, "--model-dir")
    export_model(config_for_weights(prefix, bit), prefix, model_dir)


def _weights_bit(prefix):
    """The code length of trained weights (their hash layer's width), or None when it cannot be read."""
    from utils.storage.weights import read_weights

    try:
        state, _ = read_weights(prefix)
    except UserError:
        return None  # the export that follows says what is wrong with the file
    widths = [value.shape[-1] for key, value in state.items() if key.startswith("hash_layer.") and key.endswith("weight")]
    return int(widths[0]) if widths else None


def _note_other_weights(model_dir, bit, pretrained, log):
    """Say so when the export in model_dir was made from other weights than `pretrained` (default: the
    main job's best, and only for the main job's export folder: a user's own --model-dir has nothing
    to do with ./output), comparing the digests of the tensors, whichever file holds them."""
    from utils.inference.model_files import read_infer_cfg
    from utils.storage.weights import read_weights, weights_digest

    if pretrained is None and os.path.abspath(model_dir) != os.path.abspath(RUN.export.path):
        return

    info = read_infer_cfg(ExportFolder(model_dir).infer_cfg)  # safe loader, values checked: one line for a damaged file
    prefix = pretrained or RUN.best(bit or info.get("bit"))
    if not os.path.isfile(resolve_weights(prefix)):
        return
    try:
        state, path = read_weights(prefix)
    except UserError as exc:
        log(f"note: cannot compare {model_dir} with {prefix}: {exc}")
        return
    if info.get("weights_digest") != weights_digest(state):
        log(f"note: {model_dir} was exported from other weights than {path}; to serve those, run: "
            f"{RUN.export_command(info.get('bit'), prefix, model_dir)}")


def service_settings(args):
    """The ServiceSettings of the flags: the export, the data set's database list (the lite data made
    when absent) and its code cache, the store of added images, the limits."""
    from deploy.serving.service import ServiceSettings
    from deploy.serving.uploads import Limits
    from utils.inference.searcher import SearchSettings
    from utils.runtime.device import cpu_threads

    backend, options = args.index_backend, {}
    index_settings = getattr(args, "index_settings", None)
    if index_settings is not None:  # PP-ShiTu's index_method HNSW<M> / IVF<n> pick an approximate backend
        backend, options = index_settings.index_choice(backend, options)
    search = SearchSettings(bit=args.bit, model_dir=args.model_dir, database=database_source(args),
                            cache_dir=args.cache_dir, backend=backend, index_options=options,
                            threads=cpu_threads(args.threads, args.predictors), predictors=args.predictors,
                            use_mkldnn=args.use_mkldnn, batch_size=args.batch_size, num_workers=args.num_workers,
                            rescore=args.rescore)
    limits = Limits(max_bytes=int(args.max_upload_mb * (1 << 20)), max_pixels=args.max_pixels, max_k=args.max_k,
                    max_request_pixels=args.max_request_pixels, max_decodes=args.max_decodes)
    return ServiceSettings(search, store_dir(args), limits, args.read_only, index_settings)


def database_source(args):
    """The folder of --database-dir, else the data set's database list (the lite data made when absent)."""
    if getattr(args, "database_dir", None) is not None:
        from utils.inference.folder_source import FolderSource

        return FolderSource(args.database_dir, args.cache_dir)
    from utils.config import build_config
    from utils.inference.searcher import config_database

    return config_database(build_config(None, {"dataset": args.dataset, "data_path": args.data_path,
                                               "list_dir": args.list_dir}), args.cache_dir)


def store_dir(args):
    """--store-dir, else the output folder's store for the data set (or for the folder: its own key)."""
    if args.store_dir:
        return args.store_dir
    if getattr(args, "database_dir", None) is not None:
        return RUN.serving_store(f"folder_{RunFolder.folder_key(args.database_dir)}")
    return RUN.serving_store(args.dataset)


def listen(host, port):
    """A bound listening socket (so --port 0 works and the real port can be printed)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None
    sock.listen(128)
    return sock


def build_service(args, log=print):
    from deploy.serving.service import SearchService
    from utils.cli.flags import check_output_dir

    if not args.read_only:  # a store the service cannot write fails now, not at every POST /items
        check_output_dir(store_dir(args), "--store-dir")
    ensure_model(args.model_dir, args.bit, args.pretrained, args.auto_export, log)
    settings = service_settings(args)
    if settings.index_settings is not None and settings.index_settings.note():
        log(settings.index_settings.note())
    return SearchService(settings, log)


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    sock = listen(args.host, args.port)  # a busy port fails before the model is loaded
    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()  # e.g. faiss's loader: which CPU build it loaded, five INFO lines
    service = build_service(args)
    import uvicorn

    from deploy.serving.app import create_app
    from deploy.serving.guard import Access

    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"{len(service)} images, {service.bit}-bit codes, {service.pool.size} predictor(s) x "
          f"{service.pool.threads} thread(s); serving on http://{shown}:{port}/", flush=True)
    access = Access(bound_host=args.host, allowed_hosts=args.allowed_hosts, token=args.token)
    app = create_app(service, access, upload_timeout=args.upload_timeout)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=5))
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
