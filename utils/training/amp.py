"""Mixed-precision training (`train.amp`): fp16 on GPU through paddle.amp (auto_cast level O1: the
convolutions and matrix products in fp16, the rest in fp32) with dynamic loss scaling (GradScaler),
and the loss computed in fp32 from the network's outputs cast back to fp32; bf16 the same way
without loss scaling (bf16 has fp32's exponent range). The code layer (`hash_layer`) runs in fp32 in
both (keep_code_layer_fp32): the sign of its outputs is the code.

bf16 on CPU is not paddle.amp: in PaddlePaddle 3.3.1 paddle.amp.auto_cast is switched off on CPU
places ("amp_guard can only be enabled on CUDAPlace, XPUPlace, and CustomPlace"), and conv2d and
matmul have no CPU bf16 kernels (a bf16 tensor into either: "kernel ... (CPU, bfloat16) ... is not
registered"). So on CPU `train.amp: bf16` runs the convolutions in bf16 through the project's oneDNN
convolution (utils.runtime.onednn_conv, bf16=True: bf16 inputs, fp32 accumulation, float32 outputs,
gradients and master weights), where the CPU has avx512_bf16 or amx_bf16; the fully connected
layers, the code layer and the loss stay fp32. Without those flags, or with train.onednn_conv off,
it is refused in one line."""
import paddle

from utils.errors import ConfigError, DeviceError
from utils.runtime.cpuinfo import BF16_FLAGS, bf16_flags

AMP_MODES = (None, "fp16", "bf16")  # null: fp32 training


def check_amp_device(mode, device, onednn_conv="auto", fields=None):
    """A one-line error when train.amp `mode` cannot train on `device`; `fields`: a cpuinfo() dict
    to read the CPU flags from instead of /proc/cpuinfo (tests)."""
    if mode == "fp16" and device != "gpu":
        raise DeviceError(f"train.amp fp16 trains on a GPU (this run's device is {device}): drop -o train.amp=fp16 "
                          "or train with --device gpu on paddlepaddle-gpu")
    if mode == "bf16" and device != "gpu":
        if not bf16_flags(fields):
            raise DeviceError(f"train.amp bf16 on CPU needs bf16 instructions (neither {' nor '.join(BF16_FLAGS)} in "
                              "/proc/cpuinfo flags): drop -o train.amp=bf16, or train on a bf16 GPU")
        if onednn_conv is False:
            raise ConfigError("train.amp bf16 on CPU computes the convolutions in bf16 through the oneDNN "
                              "convolution: it needs train.onednn_conv auto or true, not false")
        from utils.runtime import dnnl

        if dnnl.library() is None:
            raise DeviceError("train.amp bf16 on CPU needs the oneDNN library of the paddle wheel "
                              "(utils/runtime/dnnl.py could not load it; see the log)")


def amp_step(mode, device):
    """The step function of train.amp `mode` on `device` (checked): on CPU, bf16 is the plain step
    (the oneDNN convolutions compute in bf16 themselves, utils.runtime.cpu.apply_training_options)."""
    if mode == "bf16" and device != "gpu":
        return None
    return AMP_STEPS[mode]()


def keep_code_layer_fp32(model):
    """Run the network's code layer (`hash_layer`, when it has one) in fp32 under auto_cast: its input
    cast to fp32, auto_cast off inside. Parameters, names and state_dict are untouched (the layer's
    own forward is wrapped). Returns whether there was a code layer."""
    layer = getattr(model, "hash_layer", None)
    if layer is None:
        return False
    inner = layer.forward

    def forward(x, *args, **kwargs):
        with paddle.amp.auto_cast(enable=False):
            return inner(x.astype("float32") if x.dtype != paddle.float32 else x, *args, **kwargs)

    layer.forward = forward
    return True


def _fp32(outputs):
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_fp32(o) for o in outputs)
    return outputs.astype("float32") if outputs.dtype != paddle.float32 else outputs


class Fp16Step:
    """One fp16 mixed-precision SGD step, the same contract as utils.training.engine.train_step."""

    dtype = "float16"

    def __init__(self, init_loss_scaling=32768.0):
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=init_loss_scaling, use_dynamic_loss_scaling=True)

    def __call__(self, model, criterion, optimizer, images, labels, indices, loss_scale=1):
        with paddle.amp.auto_cast(enable=True, dtype=self.dtype, level="O1"):
            outputs = model(images)
        loss = criterion(_fp32(outputs), labels, indices)
        self.scaler.scale(loss * loss_scale if loss_scale != 1 else loss).backward()
        self.scaler.step(optimizer)  # skips the update (and lowers the scale) when a gradient is inf/nan
        self.scaler.update()
        optimizer.clear_grad()
        return loss


class Bf16Step:
    """One bf16 mixed-precision SGD step (GPU): auto_cast O1 in bf16, the loss in fp32, no loss scaling."""

    def __call__(self, model, criterion, optimizer, images, labels, indices, loss_scale=1):
        with paddle.amp.auto_cast(enable=True, dtype="bfloat16", level="O1"):
            outputs = model(images)
        loss = criterion(_fp32(outputs), labels, indices)
        (loss * loss_scale if loss_scale != 1 else loss).backward()
        optimizer.step()
        optimizer.clear_grad()
        return loss


AMP_STEPS = {"fp16": Fp16Step, "bf16": Bf16Step}
