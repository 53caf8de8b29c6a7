"""Mixed-precision training (`train.amp`): fp16 on GPU through paddle.amp (auto_cast level O1: the
convolutions and matrix products in fp16, the rest in fp32) with dynamic loss scaling (GradScaler),
and the loss computed in fp32 from the network's outputs cast back to fp32. The TIPC fleet/AMP
chain (test_tipc/configs/hashnet_<K>/train_linux_gpu_fleet_amp_infer_python_linux_gpu_cpu.txt)
turns it on with `-o train.amp=fp16`. GPU only: a CPU run with it is refused in one line (fp16
kernels are GPU kernels; there is no CPU speed to gain)."""
import paddle

from utils.errors import DeviceError

AMP_MODES = (None, "fp16")  # null: fp32 training


def check_amp_device(mode, device):
    if mode == "fp16" and device != "gpu":
        raise DeviceError(f"train.amp fp16 trains on a GPU (this run's device is {device}): drop -o train.amp=fp16 "
                          "or train with --device gpu on paddlepaddle-gpu")


def _fp32(outputs):
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_fp32(o) for o in outputs)
    return outputs.astype("float32") if outputs.dtype != paddle.float32 else outputs


class Fp16Step:
    """One fp16 mixed-precision SGD step, the same contract as utils.training.engine.train_step."""

    def __init__(self, init_loss_scaling=32768.0):
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=init_loss_scaling, use_dynamic_loss_scaling=True)

    def __call__(self, model, criterion, optimizer, images, labels, indices, loss_scale=1):
        with paddle.amp.auto_cast(enable=True, dtype="float16", level="O1"):
            outputs = model(images)
        loss = criterion(_fp32(outputs), labels, indices)
        self.scaler.scale(loss * loss_scale if loss_scale != 1 else loss).backward()
        self.scaler.step(optimizer)  # skips the update (and lowers the scale) when a gradient is inf/nan
        self.scaler.update()
        optimizer.clear_grad()
        return loss
