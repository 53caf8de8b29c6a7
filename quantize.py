"""Quantise trained weights to an int8 model for Paddle Inference (oneDNN int8 on CPU).

    python quantize.py --bit 64 --pretrained PREFIX --method ptq --algo KL    # PREFIX: trained weights (README)
    python quantize.py --bit 64 --pretrained PREFIX --method qat --epoch 2
    python -m deploy.inference_python.infer --bit 64 --model-dir output/inference_int8 --precision int8 --img-path x.jpg

ptq: post-training quantisation, activation ranges calibrated on --calib-images training images
(KL, hist, abs_max, avg or mse), weights per channel. qat: quantisation-aware fine-tuning of the
weights for --epoch epochs with paddle.quantization.QAT, then the same PTQ conversion of the
fine-tuned weights (QAT's own converted graph gives wrong codes under oneDNN int8 in Paddle 3.3.1:
utils/inference/quantize.py). Both write
DIR/inference_<K>.pdmodel/.pdiparams + the description (precision: int8) in full before anything of a
previous model in DIR is replaced, then (--evaluate True) print the mAP of the fp32 weights and of
the int8 model on the query/database lists, and the mean Hamming distance between their codes.
"""
import argparse

from utils.cli import exit_on_user_error
from utils.runtime import configure
from utils.storage.run_folder import RunFolder


def parse_args(argv=None):
    from utils.cli.flags import str2bool
    from utils.inference.quantize import PTQ_ALGOS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bit", type=int, required=True, help="code length of the weights")
    p.add_argument("--pretrained", required=True, metavar="PREFIX", help="trained fp32 weights PREFIX(.pdparams)")
    p.add_argument("--method", choices=["ptq", "qat"], default="ptq", help="ptq (default) or qat")
    p.add_argument("--save-inference-dir", "--save_inference_dir", default=RunFolder().int8_export.path,
                   help=f"folder for the int8 model (default {RunFolder().int8_export.path})")
    p.add_argument("-c", "--config", default=None,
                   help="config of the training run (default: config_<K>.yaml beside the weights)")
    p.add_argument("--dataset", default=None, help="picks configs/hashnet_<dataset>.yaml when no config is found")
    p.add_argument("--data-path", "--data_path", default=None, help="image root of the lists (default: the config's)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--algo", default=None, choices=PTQ_ALGOS,
                   help="activation calibration: KL (ptq default), hist, abs_max (qat default), avg, mse")
    p.add_argument("--calib-images", "--calib_images", type=int, default=128,
                   help="training images to calibrate on (default 128)")
    p.add_argument("--calib-batch-size", "--calib_batch_size", type=int, default=16,
                   help="calibration batch size (default 16)")
    p.add_argument("--epoch", "--epochs", dest="epoch", type=int, default=2, help="qat: fine-tuning epochs (default 2)")
    p.add_argument("--lr", type=float, default=None,
                   help="qat: learning rate at a global batch of 64 (default: the config's train.lr / 10)")
    p.add_argument("--batch-size", "--batch_size", type=int, default=None, help="qat: batch size (default: config's)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    p.add_argument("--evaluate", type=str2bool, default=True,
                   help="print fp32 vs int8 mAP and mean Hamming distance (default True)")
    args = p.parse_args(argv)
    if args.algo is None:
        args.algo = "KL" if args.method == "ptq" else "abs_max"
    from utils.cli.flags import check_bit, check_output_dir, check_range

    check_bit(args.bit)
    check_range("--calib-images", args.calib_images, 1)
    check_range("--calib-batch-size", args.calib_batch_size, 1)
    check_range("--epoch", args.epoch, 1)
    check_range("--threads", args.threads, 1, 1024)
    check_range("--batch-size", args.batch_size, 1)
    check_output_dir(args.save_inference_dir, "--save-inference-dir")
    return args


@exit_on_user_error
def main(argv=None):
    configure()
    args = parse_args(argv)
    from utils.cli.quantize import run_quantize

    run_quantize(args)


if __name__ == "__main__":
    main()
