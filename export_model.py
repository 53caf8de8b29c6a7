"""Export trained weights to a static inference graph for Paddle Inference.

Writes DIR/inference_<K>.json + DIR/inference_<K>.pdiparams (Paddle 3 PIR format) and
DIR/infer_cfg.yml (preprocessing and bit count). The graph outputs the +-1 code. The weights
also go to DIR/model_<K>.safetensors: the form to hand to others (loading it runs no code).
"""
import argparse
import os

from utils.errors import UserError, exit_on_user_error


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
    from utils.cli import check_bit, check_output_dir

    check_bit(args.bit)
    check_output_dir(args.save_inference_dir, "--save-inference-dir")
    return args


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    from utils.cli import config_for_weights
    from utils.logger import quiet_library_logging

    quiet_library_logging()
    cfg = config_for_weights(args.pretrained, args.bit, args.config, args.dataset, overrides=args.override)
    import paddle
    import yaml

    from models import CodeHead, build_model
    from utils.checkpoint import load_weights
    from utils.env import setup_device
    from utils.fileio import atomic_open
    from utils.inference import file_sha256, preprocess_settings, weights_digest

    setup_device("cpu", cfg["threads"])
    model = build_model(cfg)
    weights = load_weights(model, args.pretrained)
    head = CodeHead(model)
    head.eval()
    crop = cfg["dataset"]["crop_size"]
    static = paddle.jit.to_static(head, input_spec=[paddle.static.InputSpec([None, 3, crop, crop], "float32", "x")],
                                  full_graph=True)
    os.makedirs(args.save_inference_dir, exist_ok=True)
    prefix = os.path.join(args.save_inference_dir, f"inference_{args.bit}")
    try:
        paddle.jit.save(static, prefix)
    except OSError as exc:
        raise UserError(f"--save-inference-dir {args.save_inference_dir}: cannot write ({exc.strerror})") from None
    from utils.weights import save_safetensors

    released = save_safetensors(model.state_dict(),
                                os.path.join(args.save_inference_dir, f"model_{args.bit}.safetensors"),
                                {"bit": args.bit, "backbone": cfg["model"]["backbone"]})
    # weights_digest: the model fingerprint predict.py and the service compare, the same as the
    # dygraph weights' (utils.inference); model_files_sha256 says the exported files are still these
    info = {"bit": args.bit, "backbone": cfg["model"]["backbone"], **preprocess_settings(cfg["dataset"]),
            "output": "code, float32 +1/-1 per bit", "weights": os.path.abspath(weights),
            "weights_sha256": file_sha256(weights), "weights_digest": weights_digest(model.state_dict()),
            "model_files_sha256": file_sha256(prefix + ".json", prefix + ".pdiparams"),
            "safetensors": os.path.basename(released)}
    with atomic_open(os.path.join(args.save_inference_dir, "infer_cfg.yml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(info, f, sort_keys=False)
    print(f"exported {args.bit}-bit model to {prefix}.json / .pdiparams (+ infer_cfg.yml)")


if __name__ == "__main__":
    main()
