"""Mixed-precision training (`train.amp`): fp16 on GPU through paddle.amp (auto_cast level O1: the
convolutions and matrix products in fp16, the rest in fp32) with dynamic loss scaling (GradScaler),
and the loss computed in fp32 from the network's outputs cast back to fp32; bf16 the same way
without loss scaling (bf16 has fp32's exponent range). The code layer (`hash_layer`) runs in fp32 in
both (keep_code_layer_fp32): the sign of its outputs is the code.

bf16 on CPU is refused, not run: in PaddlePaddle 3.3.1 paddle.amp.auto_cast is switched off on CPU
places ("amp_guard can only be enabled on CUDAPlace, XPUPlace, and CustomPlace"), and conv2d and
matmul have no CPU bf16 kernels (a bf16 tensor into either: "kernel ... (CPU, bfloat16) ... is not
registered"), so a bf16 run would train in fp32 under a bf16 label. CPU bf16 is for inference
(deploy/inference_python/infer.py --precision bf16, through oneDNN). The TIPC fleet/AMP
chain (test_tipc/configs/hashnet_<K>/train_linux_gpu_fleet_amp_infer_python_linux_gpu_cpu.txt)
turns it on with `-o train.amp=fp16`. GPU only: a CPU run with it is refused in one line (fp16
kernels are GPU kernels; there is no CPU speed to gain)."""
import paddle

from utils.errors import DeviceError

AMP_MODES = (None, "fp16", "bf16")  # null: fp32 training


def check_amp_device(mode, device):
    if mode == "fp16" and device != "gpu":
        raise DeviceError(f"train.amp fp16 trains on a GPU (this run's device is {device}): drop -o train.amp=fp16 "
                          "or train with --device gpu on paddlepaddle-gpu")
    if mode == "bf16" and device != "gpu":
        raise DeviceError(f"train.amp bf16: PaddlePaddle {paddle.__version__} has no bf16 training on {device} "
                          "(paddle.amp.auto_cast is off on CPU and conv2d/matmul have no CPU bf16 kernels): drop "
                          "-o train.amp=bf16, or train on a bf16 GPU; CPU bf16 inference: infer.py --precision bf16")


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
