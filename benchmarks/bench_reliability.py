"""Reliability in numbers, on this machine (the first line names the CPU).

    python -m benchmarks.bench_reliability            # the fault campaign: a few minutes on 2 cores
    python -m benchmarks.bench_reliability --quick    # without the training, export and quantize runs
    python -m benchmarks.bench_reliability --timings  # also what the guards cost (ratios: shared machines are noisy)

The campaign (benchmarks/fault_run.py) runs the real entry points in child processes with a full
disk (`ulimit -f`, SIGXFSZ ignored, several limits per write), SIGKILL / SIGINT / SIGTERM at exact
points, and hostile configs, files and requests, and prints: faults injected, bad inputs tried,
tracebacks seen (goal 0), bytes of data lost (goal 0), and any case that broke a rule; it exits 1
when there is one. The timings: the image-header check against a decode, a PNG bomb refused from its
header against decoded, a checkpoint write and weight loading against bare paddle.save / load.
"""

if not __package__:  # run by path (python <folder>/<file>.py): the package imports below would fail
    import sys

    print("error: run it from the repository root as a module: python -m benchmarks.bench_reliability [flags]", file=sys.stderr)
    raise SystemExit(2)
import argparse
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="skip the training, export and quantize runs of the campaign")
    p.add_argument("--timings", action="store_true", help="also time the guards (header check, bomb, checkpoints)")
    p.add_argument("--no-campaign", action="store_true", help="with --timings: only the timings")
    return p.parse_args(argv)


def best(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)


def timings():
    import resource
    import struct
    import tempfile
    import zlib

    import cv2
    import numpy as np
    import paddle

    from utils.data.images import image_size, read_image

    tmp = tempfile.mkdtemp()
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), (640, 480))  # COCO-sized photo-ish
    ok, jpg = cv2.imencode(".jpg", img)
    path = os.path.join(tmp, "a.jpg"); jpg.tofile(path)
    buf = np.fromfile(path, np.uint8)
    t_header = best(lambda: image_size(buf.data), 2000)
    t_decode = best(lambda: cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB), 200)
    t_read = best(lambda: read_image(path), 200)
    print(f"640x480 JPEG ({len(jpg)} B): header size {t_header*1e6:.1f} us, cv2.imdecode {t_decode*1e3:.2f} ms, "
          f"read_image (header check + decode) {t_read*1e3:.2f} ms -> header check is {t_header/t_decode*100:.2f}% of a decode")

    # a real bomb: 20000x20000 black PNG (1.2 GB decoded), a few hundred kB on disk
    w = h = 20000
    row = b"\x00" + b"\x00" * (3 * w)
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    bomb = os.path.join(tmp, "bomb.png"); open(bomb, "wb").write(png)
    def guarded():
        try:
            read_image(bomb)
        except Exception as e:
            return str(e)
    t_guard = best(guarded, 20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter(); out = cv2.imdecode(np.fromfile(bomb, np.uint8), cv2.IMREAD_COLOR_RGB); t_unguarded = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"bomb PNG {w}x{h} ({len(png)/1e6:.2f} MB file): refused from the header in {t_guard*1e3:.2f} ms; "
          f"unguarded cv2.imdecode: {t_unguarded:.2f} s, peak RSS +{(after-before)/1024:.0f} MB, result {None if out is None else out.shape}")
    del out

    # checkpoint write: full AlexNet-64 (fc 4096) weights, plain paddle.save vs our save_checkpoint (fsync + sha + links)
    from models import build_model
    from utils.config import build_config
    from utils.storage.run_folder import RunFolder, released_path, weights_path
    from utils.storage.weights import load_weights
    from utils.training.checkpoint import save_checkpoint
    cfg = build_config(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "hashnet_coco.yaml"), {"bit": 64})
    model = build_model(cfg)
    size = sum(int(np.prod(p.shape)) for p in model.state_dict().values()) * 4
    state = {"epoch": 0, "bit": 64}
    t_plain = best(lambda: paddle.save(model.state_dict(), os.path.join(tmp, "plain.pdparams")), 3)
    run = RunFolder(tmp)
    t_ckpt = best(lambda: save_checkpoint(run.last(64), model, state), 3)
    t_release = best(lambda: save_checkpoint(run.best(64), model, state, release=True), 3)
    print(f"AlexNet-64 weights {size/1e6:.0f} MB: paddle.save {t_plain:.2f} s; save_checkpoint (atomic, fsync, sha256, "
          f"previous generation kept) {t_ckpt:.2f} s; with .safetensors too {t_release:.2f} s")
    t_pd = best(lambda: load_weights(model, weights_path(run.best(64))), 3)
    t_st = best(lambda: load_weights(model, released_path(run.best(64))), 3)
    print(f"load_weights: .pdparams {t_pd:.2f} s, .safetensors {t_st:.2f} s")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    args = parse_args(argv)  # --help ends here, before anything runs
    from utils.runtime import configure

    configure()  # this script is its own entry point: before paddle is imported
    from benchmarks.machine import machine_line

    print(machine_line(), flush=True)
    if args.timings:
        timings()
    if args.no_campaign:
        return 0
    from benchmarks.fault_run import campaign

    tally = campaign(quick=args.quick)
    print(tally.report(), flush=True)
    return 1 if tally.tracebacks or tally.lost or tally.broken else 0


if __name__ == "__main__":
    sys.exit(main())
