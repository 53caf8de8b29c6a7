"""quantize.py's work: the config of the weights, PTQ or QAT to an int8 model folder, and the fp32
vs int8 comparison it prints."""
import os

from utils.errors import ConfigError
from utils.storage.run_folder import INFER_CFG, RunFolder


def quantize_config(args):
    """The config of the weights, as quantize.py runs them: starting from --pretrained, training (QAT)
    at --lr (default: the config's train.lr / 10); a new validated config, so --lr is checked as
    train.lr is."""
    from utils.config import config_for_weights, replace_config

    overrides = list(args.override) + ["train.eval_untrained=False"]
    if args.method == "qat":
        if args.batch_size is not None:
            overrides.append(f"train.batch_size={args.batch_size}")
    cfg = config_for_weights(args.pretrained, args.bit, args.config, args.dataset, args.data_path, overrides)
    changes = {"pretrained": args.pretrained, "eval_only": False}
    if args.method == "qat":
        lr = args.lr if args.lr is not None else cfg["train"]["lr"] / 10
        if lr <= 0:
            raise ConfigError(f"--lr: must be positive, got {lr}")
        changes["train.lr"] = lr
    return replace_config(cfg, changes, "quantize.py")


def run_quantize(args):
    from utils.inference.encoders import DygraphEncoder, InferenceEncoder
    from utils.inference.quality import encoder_quality
    from utils.inference.quantize import ptq_int8, qat_weights
    from utils.runtime.device import setup_device
    from utils.runtime.log import quiet_library_logging, setup_logger

    quiet_library_logging()
    setup_device("cpu", args.threads)
    cfg = quantize_config(args)
    out = args.save_inference_dir
    if args.method == "ptq":
        prefix = ptq_int8(cfg, args.pretrained, out, args.calib_images, args.algo, args.calib_batch_size,
                          seed=cfg["train"]["seed"])
        what = f"PTQ ({args.algo}, {args.calib_images} calibration images)"
    else:
        from utils.training.qat import qat_finetune

        logger = setup_logger(out, filename=RunFolder.log_name("qat", args.bit))
        qat, network, losses = qat_finetune(cfg, args.epoch, logger)
        info = {"method": "qat", "epochs": args.epoch, "lr": cfg["train"]["lr"],
                "losses": [round(v, 6) for v in losses], "start_weights": os.path.abspath(args.pretrained),
                "conversion": f"ptq {args.algo}"}
        prefix = ptq_int8(cfg, qat_weights(cfg, network), out, args.calib_images, args.algo,
                          args.calib_batch_size, seed=cfg["train"]["seed"], info=info)
        what = f"QAT ({args.epoch} epochs, lr {cfg['train']['lr']:g}), converted by PTQ {args.algo}"
    print(f"int8 model ({what}): {prefix}.pdmodel / .pdiparams (+ {INFER_CFG})")
    if args.evaluate:
        encoders = {"fp32": DygraphEncoder(cfg, args.pretrained),
                    "int8": InferenceEncoder(out, args.bit, cpu_threads=args.threads, precision="int8")}
        q = encoder_quality(encoders, cfg)
        topk = cfg["dataset"]["topk"]
        label = "all" if topk in (None, -1) else topk
        print(f"mAP@{label}: fp32 {q['fp32']['map']:.4f}  int8 {q['int8']['map']:.4f}  "
              f"(difference {q['int8']['map'] - q['fp32']['map']:+.4f}); mean Hamming distance fp32 vs int8 codes: "
              f"{q['int8']['hamming_to_first']:.3f} of {args.bit} bits")
