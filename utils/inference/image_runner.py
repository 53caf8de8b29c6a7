"""What the deployment CLIs (deploy/inference_python/infer.py, deploy/onnxruntime_python/infer.py)
share: the images of --img-path, one output line per image, and the --benchmark report; any
Encoder (utils.inference.encoders) does the coding, so both print the same lines for the same codes."""
import os
import time

import numpy as np

from utils.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def image_files(path):
    """An image file as a one-item list, or every image of a folder in name order."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise DataError(f"--img-path: no images ({'/'.join(IMAGE_EXTENSIONS)}) in {path}")
        return files
    if not os.path.isfile(path):
        raise DataError(f"--img-path: not found: {path}")
    return [path]


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def code_batches(encoder, files, batch_size, warmup=0, times=None):
    """Yield, batch by batch, the `<path>\\tcode: <bits>\\thex: <hex>` lines of the files' codes; adds
    the preprocess / inference / postprocess seconds to `times` after `warmup` untimed batches."""
    from utils.data.transforms import preprocess_image
    from utils.retrieval import format_code

    if warmup:  # oneDNN primitives / onnxruntime kernels are prepared on the first runs
        warm = np.stack([preprocess_image(files[0], **encoder.preprocess)] * batch_size)
        for _ in range(warmup):
            encoder.encode_batch(warm)
    times = {} if times is None else times
    for key in ("preprocess", "inference", "postprocess"):
        times.setdefault(key, 0.0)
    for start in range(0, len(files), batch_size):
        batch = files[start:start + batch_size]
        t0 = time.perf_counter()
        images = np.stack([preprocess_image(f, **encoder.preprocess) for f in batch])
        t1 = time.perf_counter()
        codes = encoder.encode_batch(images)
        t2 = time.perf_counter()
        lines = []
        for path, code in zip(batch, codes):
            bits, hexcode = format_code(code)
            lines.append(f"{path}\tcode: {bits}\thex: {hexcode}")
        times["preprocess"] += t1 - t0
        times["inference"] += t2 - t1
        times["postprocess"] += time.perf_counter() - t2
        yield "\n".join(lines)


def benchmark_report(bit, n, batch_size, device, cpu_threads, backend, times):
    """The --benchmark lines; `backend` is the engine's own settings (`mkldnn: True`, `onnxruntime: 1.31.1`)."""
    return "\n".join([
        "----------------------- benchmark -----------------------",
        f"model: inference_{bit}  images: {n}  batch_size: {batch_size}  device: {device}  "
        f"cpu_threads: {cpu_threads}  {backend}",
        f"preprocess_time(ms/img): {1000 * times['preprocess'] / n:.2f}  "
        f"inference_time(ms/img): {1000 * times['inference'] / n:.2f}  "
        f"postprocess_time(ms/img): {1000 * times['postprocess'] / n:.2f}",
        f"peak_memory(MB): {peak_rss_mb():.0f}",
    ])


def print_codes(encoder, files, args, device, backend):
    """What both infer CLIs do with their flags: print every image's line (one batch at a time) and,
    with --benchmark, time them after --warmup untimed batches and print the report."""
    times = {}
    for lines in code_batches(encoder, files, args.batch_size, args.warmup if args.benchmark else 0, times):
        print(lines)
    if args.benchmark:
        print(benchmark_report(args.bit, len(files), args.batch_size, device, args.cpu_threads, backend, times))
