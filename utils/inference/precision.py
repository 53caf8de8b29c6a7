"""Which numeric precision Paddle Inference runs an exported model in, and whether this CPU can.

fp32: the export as it is. bf16: the same fp32 export, with oneDNN's bf16 kernels
(Config.enable_onednn_bfloat16); only on CPUs whose /proc/cpuinfo flags have avx512_bf16 or
amx_bf16 (the instructions oneDNN's bf16 kernels are built on), decided from the flags, never
guessed. int8: a quantised model (quantize.py, PTQ or QAT) in Paddle's classic program format,
run by the classic-IR oneDNN int8 passes: Paddle 3.3's PIR inference has no CPU int8 passes.
"""
from utils.errors import ConfigError, DeviceError
from utils.runtime.cpuinfo import bf16_flags

PRECISIONS = ("fp32", "bf16", "int8")
# the ops oneDNN int8 quantises. pool2d only since AlexNet's 1x1 -> 6x6 adaptive pool became a repeat in
# inference (models/alexnet.py): an int8 adaptive pool has no kernel and the lite predictor failed
INT8_OPS = {"conv2d", "fused_conv2d", "fc", "matmul_v2", "matmul", "pool2d"}


def check_precision(precision, model_precision="fp32", use_gpu=False, use_mkldnn=True, fields=None):
    """Raise the one-line error that says why `precision` cannot run this model here; None when it can.
    model_precision: what the model folder holds (its description's `precision`, fp32 when absent)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if model_precision == "int8" and precision != "int8":
        raise ConfigError(f"--precision {precision}: this model folder holds an int8 (quantised) model; "
                          "run it with --precision int8, or give the fp32 export's folder")
    if precision == "int8" and model_precision != "int8":
        raise ConfigError("--precision int8: this model folder holds an fp32 export; make an int8 model with "
                          "python quantize.py --method ptq (or qat) and give its folder as --model-dir")
    if precision == "fp32":
        return
    if use_gpu:
        raise DeviceError(f"--precision {precision}: runs on CPU through oneDNN only (use --use-gpu False)")
    if not use_mkldnn:
        raise ConfigError(f"--precision {precision}: needs oneDNN (--use-mkldnn True)")
    if precision == "bf16" and not bf16_flags(fields):
        raise DeviceError("--precision bf16: this CPU has no bf16 instructions (neither avx512_bf16 nor "
                          "amx_bf16 in /proc/cpuinfo flags); use --precision fp32 or int8")


def apply_precision(config, precision):
    """Set a paddle.inference.Config (oneDNN already on) for a checked `precision`."""
    if precision == "bf16":
        config.enable_onednn_bfloat16()
    elif precision == "int8":
        config.enable_new_ir(False)  # the int8 passes are classic-IR passes
        config.enable_onednn_int8(INT8_OPS)
