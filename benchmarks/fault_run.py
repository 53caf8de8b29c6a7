"""The fault campaign of benchmarks/bench_reliability.py: real entry points in child processes, with
a full disk (`ulimit -f` with SIGXFSZ ignored, several limits per write), SIGKILL / SIGINT / SIGTERM
at exact points (tests/reliability/faults.py), and bad inputs (hostile YAML and JSON, damaged
exports and weights, bad requests to the service). For each case it checks what must hold:

- a run that fails ends with one `error:` line and no traceback, and leaves the files it would
  have replaced byte for byte as they were;
- a run that succeeds leaves complete files (the code cache loads and matches its fingerprint, a
  checkpoint loads, an export's files match the sha256 its description records).

Tallies: faults injected, bad inputs tried, tracebacks seen, bytes of data lost (a protected file
changed by a failed run, or left torn by any run), and the cases that broke a rule.
"""
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np

from utils.storage.run_folder import RunFolder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--bit", "16", "--batch-size", "8", "--seed", "1", "-o", "model.fc_dim=64", "-o", "dataset.resize_size=64",
        "-o", "dataset.crop_size=64", "-o", "dataset.num_workers=0", "-o", "train.eval_every=1",
        "-o", "train.eval_untrained=false"]


class Tally:
    def __init__(self):
        self.faults = self.inputs = self.tracebacks = self.lost = 0
        self.broken = []

    def report(self):
        lines = [f"faults injected: {self.faults}", f"bad inputs tried: {self.inputs}",
                 f"tracebacks seen: {self.tracebacks} (goal 0)", f"bytes of data lost: {self.lost} (goal 0)",
                 f"cases that broke a rule: {len(self.broken)}"]
        return "\n".join(lines + [f"  {case}" for case in self.broken])


def snapshot(folder):
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found


def changed_bytes(before, folder):
    """Bytes of the files in `before` that are no longer there as they were."""
    after = snapshot(folder)
    return sum(len(data) for name, data in before.items() if after.get(name) != data)


def size_limit(limit):
    def apply():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def run(tally, case, argv, *, limit=None, fault=None, cwd=None, expect=None):
    """Run `python argv` (a script of the repository) as a child; count a traceback; check that a
    failure is one error line (and, with `expect`, that it says so). Returns (exit code, stderr)."""
    script = os.path.join(ROOT, argv[0])
    if fault:
        from tests.reliability import faults

        cmd = faults.command(fault, script, *argv[1:])
    else:
        cmd = [sys.executable, script, *argv[1:]]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": ROOT}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
                          preexec_fn=size_limit(limit) if limit else None)
    if "Traceback" in proc.stderr:
        tally.tracebacks += 1
        tally.broken.append(f"{case}: traceback")
    elif proc.returncode != 0 and proc.returncode > 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        if len(errors) != 1 or (expect and expect not in errors[0]):
            tally.broken.append(f"{case}: exit {proc.returncode} without the one expected error line: "
                                f"{proc.stderr.strip()[-300:]!r}")
    return proc.returncode, proc.stderr


def in_process(tally, case, main, argv, expect=None):
    """A bad input given to an entry point's main() in this process: one error line, exit 2."""
    tally.inputs += 1
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main(argv)
        tally.broken.append(f"{case}: accepted")
    except SystemExit as exc:
        lines = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
        if exc.code == 0 or len(lines) != 1 or len(lines[0]) > 1200 or (expect and expect not in lines[0]):
            tally.broken.append(f"{case}: exit {exc.code}, {err.getvalue().strip()[-300:]!r}")
    except Exception as exc:  # noqa: BLE001 - what the campaign counts
        tally.tracebacks += 1
        tally.broken.append(f"{case}: {type(exc).__name__}: {str(exc)[:200]}")


# ---------------------------------------------------------------------------------------------- setup


def setup(work):
    import paddle

    from models import build_model
    from utils.config import build_config, save_config
    from utils.data.lite import generate_lite_dataset
    from utils.storage.weights import save_safetensors

    data = generate_lite_dataset(os.path.join(work, "lite"), seed=3, num_database=48, num_test=12, num_train=32,
                                 image_size=72)
    folder = os.path.join(work, "weights")
    os.makedirs(folder)
    cfg = build_config(None, {"bit": 16, "dataset": "lite", "data_path": data},
                       ["model.fc_dim=64", "dataset.resize_size=64", "dataset.crop_size=64"])
    paddle.seed(5)
    state = build_model(cfg).state_dict()
    paddle.save(state, os.path.join(folder, "w.pdparams"))
    save_safetensors(state, os.path.join(folder, "w.safetensors"), {"bit": 16, "backbone": cfg["model"]["backbone"]})
    save_config(cfg, os.path.join(folder, "config_16.yaml"))
    return data, os.path.join(folder, "w")


def query(data):
    return os.path.join(data, "images", "test", "00000.jpg")


# ---------------------------------------------------------------------------------------------- faults


def cache_is_whole(cache):
    from utils.inference.code_cache import cache_paths, load_cached_codes

    codes_path, meta_path = cache_paths(cache, 16)
    if not os.path.isfile(meta_path):
        return not os.path.exists(codes_path)
    meta = json.load(open(meta_path))
    expected = {k: meta[k] for k in ("bit", "model_sha256", "preprocess", "list_sha256", "list", "data_root")}
    return load_cached_codes(cache, expected)[0] is not None


def disk_full_code_cache(tally, data, weights, work):
    """predict.py rebuilding the code cache (a database list 8 times longer) under 8 file size limits."""
    lists = os.path.join(work, "lists_long")
    os.makedirs(lists)
    for name in ("train.txt", "test.txt", "classes.txt"):
        shutil.copy(os.path.join(data, name), lists)
    with open(os.path.join(data, "database.txt")) as f, open(os.path.join(lists, "database.txt"), "w") as out:
        out.write(f.read() * 8)
    for limit in (512, 1024, 2048, 3000, 4224, 5120, 6000, 6271):
        cache = os.path.join(work, f"cache_{limit}")
        argv = ["predict.py", "--bit", "16", "--img", query(data), "--pretrained", weights, "--data-path", data,
                "--save-path", cache, "--num-workers", "0"]
        run(tally, "a good cache", argv)
        before = snapshot(cache)
        tally.faults += 1
        code, _ = run(tally, f"disk full ({limit} B) while predict.py rebuilds the code cache",
                      argv + ["--list-dir", lists], limit=limit, expect="cannot write")
        lost = changed_bytes(before, cache) if code != 0 else (0 if cache_is_whole(cache) else
                                                                sum(map(len, snapshot(cache).values())))
        if lost:
            tally.broken.append(f"disk full ({limit} B), code cache: {lost} bytes lost (exit {code})")
        tally.lost += lost


def disk_full_checkpoint_and_export(tally, data, weights, work):
    out = os.path.join(work, "run")
    code, err = run(tally, "a good 1-epoch run", ["main_single_gpu.py", "--data-path", data, "--output-dir", out,
                                                  "--epoch", "1", *TINY])
    for limit in (1 << 16, 1 << 20, 4 << 20, 12 << 20):
        before = snapshot(out)
        tally.faults += 1
        code, _ = run(tally, f"disk full ({limit} B) while a checkpoint is written",
                      ["main_single_gpu.py", "--data-path", data, "--output-dir", out, "--epoch", "2", *TINY,
                       "--resume", RunFolder(out).last(16)], limit=limit, expect="cannot write")
        if code == 0:
            break  # a run that got through moved the folder on: larger limits would test nothing new
        lost = changed_bytes(before, out)
        tally.lost += lost
        if lost:
            tally.broken.append(f"disk full ({limit} B), checkpoint: {lost} bytes changed by a failed run")
    export = os.path.join(work, "export")
    run(tally, "a good export", ["export_model.py", "--bit", "16", "--pretrained", weights,
                                 "--save-inference-dir", export])
    for limit in (1 << 12, 1 << 16, 1 << 20, 6 << 20, 12 << 20):
        before = snapshot(export)
        tally.faults += 1
        code, _ = run(tally, f"disk full ({limit} B) during an export",
                      ["export_model.py", "--bit", "16", "--pretrained", RunFolder(out).best(16),
                       "--save-inference-dir", export], limit=limit, expect="cannot write")
        tally.lost += changed_bytes(before, export) if code != 0 else 0
    for limit in (1 << 16, 1 << 20, 3 << 20):
        int8 = os.path.join(work, f"int8_{limit}")
        tally.faults += 1
        code, _ = run(tally, f"disk full ({limit} B) during quantize.py",
                      ["quantize.py", "--bit", "16", "--pretrained", weights, "--save-inference-dir", int8,
                       "--calib-images", "4", "--calib-batch-size", "4", "--evaluate", "False", "--data-path", data,
                       "--dataset", "lite"], limit=limit, expect="cannot write")
        left = snapshot(int8) if os.path.isdir(int8) else {}
        if code != 0 and left:
            tally.lost += sum(map(len, left.values()))
            tally.broken.append(f"quantize.py under {limit} B left files: {sorted(left)}")


def signals_and_kills(tally, data, work):
    """SIGINT / SIGTERM during a backward pass and a decode; SIGKILL half-way through a checkpoint write."""
    import paddle

    for fault, status in (("signal_backward:SIGINT:6", 130), ("signal_backward:SIGTERM:7", 143),
                          ("signal_image:SIGINT:100", 130), ("write_partial:model_last_16.pdparams:2", -9),
                          ("before_rename:model_last_16.pdopt:2", -9)):
        out = os.path.join(work, "sig_" + fault.split(":")[0] + fault.split(":")[1].replace(".", "_"))
        tally.faults += 1
        code, err = run(tally, fault, ["main_single_gpu.py", "--data-path", data, "--output-dir", out, "--epoch", "3",
                                       *TINY], fault=fault, expect="interrupted at epoch")
        if code != status:
            tally.broken.append(f"{fault}: exit {code}, expected {status}")
        for name in os.listdir(out):  # every file under its final name is whole
            if name.endswith((".pdparams", ".pdopt")):
                try:
                    paddle.load(os.path.join(out, name))
                except Exception:  # noqa: BLE001 - a torn checkpoint is what is counted
                    tally.lost += os.path.getsize(os.path.join(out, name))
                    tally.broken.append(f"{fault}: {name} torn")
        code, _ = run(tally, f"--resume after {fault}", ["main_single_gpu.py", "--data-path", data, "--output-dir",
                                                         out, "--epoch", "3", *TINY, "--resume",
                                                         RunFolder(out).last(16)])
        if code != 0:
            tally.broken.append(f"--resume after {fault}: exit {code}")


# ---------------------------------------------------------------------------------------------- bad inputs


def _write(path, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


def bad_configs(tally, data, work):
    import main_single_gpu
    import predict

    bomb = ["- &a0 [" + ",".join(["lol"] * 9) + "]"] + [f"- &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]"
                                                        for i in range(1, 8)]
    deep = "[" * 3000 + "]" * 3000
    out = ["--output-dir", os.path.join(work, "o"), "--data-path", data]
    configs = {
        "alias bomb": "train:\n  lr:\n" + "\n".join("    " + line for line in bomb) + "\n    - *a7\n",
        "3000 levels deep": f"train:\n  lr: {deep}\n",
        "not UTF-8": "train:\n  lr: 0.01  # r\u00e9glage\n".encode("latin-1"),
        "NUL in a path": 'dataset:\n  data_path: "a\\0b"\n',
        "a python tag": "train:\n  lr: !!python/object/apply:os.system ['true']\n",
        "_base_ a list": "_base_: [a, b]\n",
        "not a mapping": "- 1\n- 2\n",
        "a folder": None,
    }
    for case, text in configs.items():
        path = os.path.join(work, "config_dir") if text is None else _write(os.path.join(work, "c.yaml"), text)
        os.makedirs(path, exist_ok=True) if text is None else None
        in_process(tally, f"-c {case}", main_single_gpu.main, ["-c", path, *out, *TINY[:2]])
    for value in (deep, '"a\\0b"', "&a [*a]", "[" * 99 + "]" * 99, "9" * 5000, "{a: b}"):
        in_process(tally, f"-o dataset.data_path={value[:20]}", main_single_gpu.main,
                   [*out, *TINY[:2], "-o", f"dataset.data_path={value}"])
        in_process(tally, f"-o train.lr={value[:20]}", main_single_gpu.main,
                   [*out, *TINY[:2], "-o", f"train.lr={value}"])
    index_configs = {
        "alias bomb": "anchors:\n" + "\n".join("  " + line for line in bomb) +
                      "\nIndexProcess:\n  dist_type: hamming\n  return_k: *a7\n",
        "deep": f"IndexProcess:\n  dist_type: hamming\n  return_k: {deep}\n",
        "NUL index_dir": 'IndexProcess:\n  dist_type: hamming\n  index_dir: "a\\0b"\n',
        "NUL image_root": 'IndexProcess:\n  dist_type: hamming\n  image_root: "a\\0b"\n',
        "not UTF-8": b"IndexProcess:\n  dist_type: \xff\n",
        "HNSW": "IndexProcess:\n  index_method: HNSW32\n  dist_type: hamming\n",
    }
    for case, text in index_configs.items():
        path = _write(os.path.join(work, "index.yaml"), text)
        in_process(tally, f"--index-config {case}", predict.main, ["--bit", "16", "--img", query(data),
                                                                   "--index-config", path])


def damaged_models(tally, data, weights, work):
    import export_model
    import predict
    from utils.config import config_for_weights
    from utils.inference.export import export_model as export
    from utils.storage.weights import load_safetensors, save_safetensors

    from deploy.inference_python import infer
    from utils.storage.run_folder import ExportFolder
    good = os.path.join(work, "good_export")
    export(config_for_weights(weights, 16), weights, good)

    def damage(name, edit):
        folder = os.path.join(work, "damaged", name)
        shutil.copytree(good, folder)
        edit(folder)
        return folder

    def cut(file, keep):
        return lambda folder: os.truncate(os.path.join(folder, file), int(os.path.getsize(os.path.join(folder, file))
                                                                          * keep))

    def cfg_edit(old, new):
        def edit(folder):
            path = ExportFolder(folder).infer_cfg
            text = open(path).read()
            open(path, "w").write(text.replace(old, new) if old else text + new)
        return edit

    cases = {"truncated .pdiparams": cut("inference_16.pdiparams", 0.5), "empty .pdiparams": cut("inference_16.pdiparams", 0),
             "truncated .json": cut("inference_16.json", 0.7), "python tag": cfg_edit("", "x: !!python/name:os.system\n"),
             "resize 100000": cfg_edit("resize_size: 64", "resize_size: 100000"),
             "bit 7": cfg_edit("bit: 16", "bit: 7"), "std 0": cfg_edit("std:\n- 0.229", "std:\n- 0.0"),
             "not YAML": lambda folder: _write(ExportFolder(folder).infer_cfg, "{unclosed"),
             "alias in infer_cfg": cfg_edit("", "a: &x [1]\nb: *x\n")}
    for case, edit in cases.items():
        folder = damage(case.replace(" ", "_"), edit)
        in_process(tally, f"infer.py, {case}", infer.main, ["--bit", "16", "--model-dir", folder, "--img-path",
                                                           query(data)])
        in_process(tally, f"predict.py --model-dir, {case}", predict.main,
                   ["--bit", "16", "--img", query(data), "--model-dir", folder, "--data-path", data,
                    "--save-path", os.path.join(work, "cache_damaged")])
    state, meta = load_safetensors(weights + ".safetensors")
    variants = {"float16": lambda: save_safetensors({k: v.astype(np.float16) for k, v in state.items()}, "P.safetensors",
                                                    meta),
                "NaN": lambda: save_safetensors({k: (v * np.nan if k.startswith("hash") else v)
                                                 for k, v in state.items()}, "P.safetensors", meta),
                "inf": lambda: save_safetensors({k: (v + np.inf if k.endswith("bias") else v)
                                                 for k, v in state.items()}, "P.safetensors", meta),
                "truncated": lambda: _write("P.safetensors", open(weights + ".safetensors", "rb").read()[:5000])}
    for case, make in variants.items():
        folder = os.path.join(work, "weights_" + case)
        os.makedirs(folder)
        shutil.copy(os.path.join(os.path.dirname(weights), "config_16.yaml"), folder)
        with contextlib.chdir(folder):
            make()
            os.rename("P.safetensors", "w.safetensors")
        prefix = os.path.join(folder, "w")
        in_process(tally, f"predict.py, {case} weights", predict.main, ["--bit", "16", "--img", query(data),
                                                                         "--pretrained", prefix, "--data-path", data,
                                                                         "--save-path", os.path.join(work, "c2")])
        in_process(tally, f"export_model.py, {case} weights", export_model.main,
                   ["--bit", "16", "--pretrained", prefix, "--save-inference-dir", os.path.join(work, "e_" + case)])


def bad_requests(tally, data, work):
    """The service in this process (fastapi TestClient): hostile requests get 4xx, never 500."""
    from fastapi.testclient import TestClient

    from deploy.serving.app import create_app
    from deploy.serving.demo_model import export_untrained_model
    from deploy.serving.service import SearchService, ServiceSettings
    from utils.inference.searcher import ListSource, SearchSettings

    model = export_untrained_model(os.path.join(work, "serving_model"), data, bit=64,
                                   overrides=["model.fc_dim=256", "dataset.resize_size=72", "dataset.crop_size=64"])
    search = SearchSettings(bit=None, model_dir=model, predictors=1, threads=1, num_workers=0,
                            database=ListSource(os.path.join(data, "database.txt"), data, os.path.join(work, "scache")))
    service = SearchService(ServiceSettings(search, os.path.join(work, "store")), log=lambda *a: None)
    client = TestClient(create_app(service), base_url="http://localhost", raise_server_exceptions=False)
    jpeg = open(query(data), "rb").read()
    requests = [("POST", "/items", {"labels": label}, {"origin": None}) for label in
                ("\u00b2", "\u2460", "9" * 4301, "-1", "1e3", "red_circle,nope", "x" * 100000)]
    requests += [("POST", "/items", {}, {"origin": "http://evil.example"}),
                 ("POST", "/items", {}, {"referer": "http://127.0.0.1:1/x"}),
                 ("POST", "/search", {}, {"host": "evil.example"}), ("GET", "/stats", {}, {"host": "evil.example"}),
                 ("POST", "/search", {"k": "99999999999999999999"}, {}), ("POST", "/search", {"radius": "-5"}, {}),
                 ("GET", "/images/../../etc/passwd", {}, {}), ("GET", "/added/%00", {}, {})]
    for method, path, form, headers in requests:
        tally.inputs += 1
        headers = {k: v for k, v in headers.items() if v is not None}
        files = {"files" if path == "/items" else "file": ("q.jpg", jpeg, "image/jpeg")} if method == "POST" else None
        response = client.request(method, path, files=files, data=form, headers=headers)
        if response.status_code == 500 and "internal error" in response.text or "Internal Server Error" in response.text:
            tally.tracebacks += 1  # an exception escaped the routes: its traceback is in the service's log
        if response.status_code >= 500 or response.status_code == 200 and path == "/items":
            tally.broken.append(f"service {method} {path} {str(form or headers)[:60]}: {response.status_code}")
    if client.get("/stats").json()["database_size"] != 48:
        tally.broken.append("service: a refused request changed the database")


def campaign(quick=False):
    """Run every part; returns the Tally."""
    tally = Tally()
    work = tempfile.mkdtemp(prefix="fault-run-")
    try:
        data, weights = setup(work)
        with contextlib.chdir(work):
            bad_configs(tally, data, work)
            damaged_models(tally, data, weights, work)
            bad_requests(tally, data, work)
            disk_full_code_cache(tally, data, weights, work)
            if not quick:
                disk_full_checkpoint_and_export(tally, data, weights, work)
                signals_and_kills(tally, data, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tally
