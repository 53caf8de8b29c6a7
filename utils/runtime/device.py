"""Device and CPU-thread set-up shared by every entry point."""
import os

from utils.errors import DeviceError


def cpu_threads(requested=0, local_processes=1):
    """Threads per process: what was asked for, else the cores shared among local processes."""
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_processes))


GPU_INSTALL_HINT = "install paddlepaddle-gpu for your CUDA version (https://www.paddlepaddle.org.cn/install)"


def require_gpu_build(flag):
    """Refuse a GPU request on a CPU-only PaddlePaddle build (which would quietly run on the CPU)."""
    import paddle

    if not paddle.device.is_compiled_with_cuda():
        raise DeviceError(f"{flag}: this PaddlePaddle build is CPU-only ({GPU_INSTALL_HINT}, or leave {flag.split()[0]} "
                          "out to run on the CPU)")


def resolve_device(device="auto"):
    """auto -> gpu when this paddle build has CUDA and sees a GPU, else cpu."""
    import paddle

    has_gpu = paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0
    if device == "auto":
        return "gpu" if has_gpu else "cpu"
    if device == "gpu" and not has_gpu:
        raise DeviceError("--device gpu: this PaddlePaddle build has no CUDA or sees no GPU "
                        f"({GPU_INSTALL_HINT}, or use --device cpu)")
    return device


def setup_device(device="auto", threads=0, local_processes=1, device_id=None):
    """Pick cpu/gpu and the CPU thread count; returns the device string used."""
    import paddle

    device = resolve_device(device)
    # paddle forces OMP_NUM_THREADS=1 when unset; set the math-library threads explicitly instead.
    paddle.base.core.set_num_threads(cpu_threads(threads, local_processes))
    place = device if device == "cpu" or device_id is None else f"gpu:{device_id}"
    paddle.set_device(place)
    return device
