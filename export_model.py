"""Export trained weights to a static inference graph for Paddle Inference.

Writes DIR/inference_<K>.json + DIR/inference_<K>.pdiparams (Paddle 3 PIR format) and
DIR/infer_cfg.yml (preprocessing and bit count). The graph outputs the +-1 code. The weights
also go to DIR/model_<K>.safetensors: the form to hand to others (loading it runs no code).
Everything is written in full before any file of a previous export in DIR is replaced, so a
failed write (disk full) leaves that export as it was.
"""
import argparse
import os

from utils.cli import exit_on_user_error
from utils.runtime import configure


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length of the weights")
    p.add_argument("--pretrained", required=True, metavar="PREFIX", help="trained weights PREFIX(.pdparams)")
    p.add_argument("--save-inference-dir", "--save_inference_dir", default="./output/inference",
                   help="folder for inference_<K>.json/.pdiparams and infer_cfg.yml")
    p.add_argument("-c", "--config", default=None,
                   help="config of the training run (default: config_<K>.yaml beside the weights, "
                        "else configs/hashnet_<dataset>.yaml)")
    p.add_argument("--dataset", default=None, help="picks configs/hashnet_<dataset>.yaml when no config is found")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = p.parse_args(argv)
    from utils.cli.flags import check_bit, check_output_dir

    check_bit(args.bit)
    check_output_dir(args.save_inference_dir, "--save-inference-dir")
    return args


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from utils.cli.flags import config_for_weights
    from utils.runtime.log import quiet_library_logging

    quiet_library_logging()
    cfg = config_for_weights(args.pretrained, args.bit, args.config, args.dataset, overrides=args.override)
    import shutil
    import tempfile

    import paddle
    import yaml

    from models import CodeHead, build_model
    from utils.errors import WriteError
    from utils.inference import preprocess_settings
    from utils.runtime.device import setup_device
    from utils.storage.fileio import Staged, file_sha256, stage_bytes, staged_generation
    from utils.storage.weights import load_weights, safetensors_bytes, weights_digest

    setup_device("cpu", cfg["threads"])
    model = build_model(cfg)
    weights = load_weights(model, args.pretrained)
    head = CodeHead(model)
    head.eval()
    crop = cfg["dataset"]["crop_size"]
    static = paddle.jit.to_static(head, input_spec=[paddle.static.InputSpec([None, 3, crop, crop], "float32", "x")],
                                  full_graph=True)
    out_dir = args.save_inference_dir
    name = f"inference_{args.bit}"
    prefix = os.path.join(out_dir, name)
    try:
        work = tempfile.mkdtemp(prefix=".export-", dir=out_dir)  # the new export, beside the old one
    except OSError as exc:
        raise WriteError(prefix + ".json", exc) from None
    try:
        with staged_generation(out_dir) as staged:
            try:
                paddle.jit.save(static, os.path.join(work, name))
            except OSError as exc:
                raise WriteError(f"{prefix}.json/.pdiparams", exc) from None
            staged += [Staged(os.path.join(work, f), os.path.join(out_dir, f)) for f in sorted(os.listdir(work))]
            released = os.path.join(out_dir, f"model_{args.bit}.safetensors")
            staged.append(stage_bytes(released, safetensors_bytes(
                model.state_dict(), {"bit": args.bit, "backbone": cfg["model"]["backbone"]})))
            # weights_digest: the model fingerprint predict.py and the service compare, the same as the
            # dygraph weights' (utils.inference); model_files_sha256 says the exported files are still these
            graph = [os.path.join(work, name + ext) for ext in (".json", ".pdiparams")]
            info = {"bit": args.bit, "backbone": cfg["model"]["backbone"], **preprocess_settings(cfg["dataset"]),
                    "output": "code, float32 +1/-1 per bit", "weights": os.path.abspath(weights),
                    "weights_sha256": file_sha256(weights), "weights_digest": weights_digest(model.state_dict()),
                    "model_files_sha256": file_sha256(*graph), "safetensors": os.path.basename(released)}
            text = yaml.safe_dump(info, sort_keys=False).encode("utf-8")
            staged.append(stage_bytes(os.path.join(out_dir, "infer_cfg.yml"), text))  # last: it describes the rest
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"exported {args.bit}-bit model to {prefix}.json / .pdiparams (+ infer_cfg.yml)")


if __name__ == "__main__":
    main()
