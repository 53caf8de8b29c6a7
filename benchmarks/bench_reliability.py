"""Side-by-side timings for the reliability README section (noisy shared machine: ratios)."""
import os
import time
import tempfile
import struct
import zlib
from utils.runtime import configure
configure()  # this script is its own entry point: before paddle is imported
from benchmarks.machine import machine_line
import numpy as np
import cv2
import paddle

from utils.data.images import image_size, read_image


def best(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

print(machine_line())
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
import resource
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
