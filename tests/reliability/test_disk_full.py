"""A full disk never leaves a torn file behind a zero exit (issue 24, defects 1 and 13).

The disk fills up for real: the child runs under `ulimit -f` (RLIMIT_FSIZE) with SIGXFSZ ignored,
so every write past the limit fails with EFBIG ("File too large") as on a full disk or a quota.
The two writers that did not notice: numpy's `tofile` (behind `np.save`) writes its last block at
a close whose error nobody checks, and Paddle's C++ save checks no write at all.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.reliability.common import (ROOT, assert_one_line_error, assert_same_folder, file_size_limit, folder_bytes,
                                      run)


def query_image(tiny_lite):
    folder = os.path.join(tiny_lite, "images", "test")
    return os.path.join(folder, sorted(os.listdir(folder))[0])


def lists_folder(tiny_lite, folder, copies=1):
    """The lite lists in `folder`, the database list repeated `copies` times (a changed database)."""
    os.makedirs(folder)
    for name in ("train.txt", "test.txt", "classes.txt"):
        shutil.copy(os.path.join(tiny_lite, name), folder)
    with open(os.path.join(tiny_lite, "database.txt")) as f:
        lines = f.read()
    with open(os.path.join(folder, "database.txt"), "w") as f:
        f.write(lines * copies)
    return str(folder)


@pytest.mark.slow
def test_defect1_a_full_disk_while_the_code_cache_is_rebuilt_keeps_the_old_cache(tiny16, tiny_lite, tmp_path):
    cache = tmp_path / "cache"

    def predict(lists, **kw):
        return run("predict.py", "--bit", "16", "--img", query_image(tiny_lite), "--pretrained", tiny16,
                   "--data-path", tiny_lite, "--list-dir", lists, "--save-path", str(cache), "--num-workers", "0",
                   **kw)

    code, _, stderr = predict(lists_folder(tiny_lite, tmp_path / "lists"))
    assert code == 0, stderr[-2000:]
    before = folder_bytes(cache)
    # the database list changes: 384 images, a 6,272-byte .npy. numpy writes its first 4 KiB of codes
    # at once and buffers the last 2 KiB until its close, whose error it does not check: a limit of
    # 5 KiB falls there (the fingerprint .json stays below it)
    changed = lists_folder(tiny_lite, tmp_path / "changed", copies=8)
    code, stdout, stderr = predict(changed, preexec_fn=file_size_limit(5120))
    assert_one_line_error(code, stderr, f"cannot write {cache}{os.sep}database_code_16.npy", "File too large")
    assert_same_folder(before, folder_bytes(cache))  # the old codes and their fingerprint, as they were
    code, _, stderr = predict(changed)  # with room again: rebuilt, and it loads
    assert code == 0 and "encoding the database" in stderr, stderr[-2000:]
    assert np.load(cache / "database_code_16.npy").shape == (384, 16)


@pytest.mark.slow
def test_defect13_quantize_on_a_full_disk_is_one_line_and_keeps_the_previous_model(tiny16, tiny_lite, tmp_path):
    out = tmp_path / "int8"
    out.mkdir()
    (out / "infer_cfg.yml").write_text("bit: 16\n")  # what a previous model left: must stay as it is
    before = folder_bytes(out)
    # 1 MiB: the 12 MB weights Paddle's C++ save writes are cut short there, silently
    code, _, stderr = run("quantize.py", "--bit", "16", "--pretrained", tiny16, "--save-inference-dir", str(out),
                          "--calib-images", "4", "--calib-batch-size", "4", "--evaluate", "False",
                          "--data-path", tiny_lite, "--dataset", "lite", preexec_fn=file_size_limit(1 << 20))
    assert_one_line_error(code, stderr, f"cannot write {out}{os.sep}inference_16.pdiparams", "File too large")
    assert_same_folder(before, folder_bytes(out))  # and no work folder left behind


def test_the_atomic_writer_reads_back_what_np_save_wrote(tmp_path):
    """The writer itself, in a child with a 5 KiB file size limit: np.save of 6,528 bytes through
    atomic_open (the limit falls in numpy's last buffered block) raises WriteError, and the file it
    would have replaced is untouched."""
    target = tmp_path / "codes.npy"
    np.save(target, np.zeros((3, 4), np.int8))
    before = target.read_bytes()
    script = f"""
import sys
sys.path.insert(0, {ROOT!r})
import numpy as np
from utils.errors import WriteError
from utils.storage.fileio import atomic_open
try:
    with atomic_open({str(target)!r}, "wb") as f:
        np.save(f, np.ones((400, 16), np.int8), allow_pickle=False)
except WriteError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         preexec_fn=file_size_limit(5120))
    assert out.stdout.strip() == f"cannot write {target}: File too large", out.stdout + out.stderr
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["codes.npy"]


def test_paddle_files_cut_short_anywhere_are_caught(tmp_path):
    """library_writes walks a .pdiparams tensor by tensor: every cut inside a tensor is found; a cut
    between two tensors leaves a file that stops at the limit and cannot grow: refused too."""
    import paddle

    from utils.storage import library_writes

    layer = paddle.nn.Linear(8, 3)
    static = paddle.jit.to_static(layer, input_spec=[paddle.static.InputSpec([None, 8], "float32", "x")],
                                  full_graph=True)
    paddle.jit.save(static, str(tmp_path / "m"))
    data = (tmp_path / "m.pdiparams").read_bytes()
    assert library_writes.pdiparams_tensors(data) == 2
    library_writes.check_library_files([(str(tmp_path / "m.pdiparams"), "a"), (str(tmp_path / "m.json"), "b")])
    results = {}
    for n in range(1, len(data)):
        try:
            results[n] = library_writes.pdiparams_tensors(data[:n])
        except library_writes._Short:
            results[n] = "short"
    whole = [n for n, result in results.items() if result != "short"]
    assert len(whole) == 1 and results[whole[0]] == 1, whole  # the one cut between the two tensors
    cut = tmp_path / "cut.pdiparams"
    cut.write_bytes(data[:whole[0]])
    script = f"""
import sys
sys.path.insert(0, {ROOT!r})
from utils.errors import WriteError
from utils.storage.library_writes import check_library_files
try:
    check_library_files([({str(cut)!r}, "out/m.pdiparams")])
except WriteError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         preexec_fn=file_size_limit(whole[0]))
    assert out.stdout.strip() == "cannot write out/m.pdiparams: File too large", out.stdout + out.stderr
    assert cut.read_bytes() == data[:whole[0]]
    json_cut = tmp_path / "cut.json"
    json_cut.write_bytes((tmp_path / "m.json").read_bytes()[:-3])
    try:
        library_writes.check_library_files([(str(json_cut), "out/m.json")])
        raise AssertionError("a cut .json was taken for whole")
    except Exception as exc:
        assert str(exc).startswith("cannot write out/m.json: the file was cut short"), exc


def test_stale_temp_files_of_dead_writers_go_at_the_next_write(tmp_path):
    from utils.storage.fileio import atomic_write_bytes

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "a.json"
    stale = tmp_path / f".a.json.{dead.pid}-x1y2z3.tmp"  # a writer killed with SIGKILL mid-write
    alive = tmp_path / f".a.json.{os.getppid()}-q8r9s0.tmp"  # a writer still running
    other = tmp_path / f".b.json.{dead.pid}-x1y2z3.tmp"  # another file's
    for path in (stale, alive, other):
        path.write_bytes(b"half")
    atomic_write_bytes(str(target), b"{}")
    assert sorted(os.listdir(tmp_path)) == sorted(["a.json", alive.name, other.name])
    # an export's work folder left by a killed export goes at the next export
    from utils.storage.fileio import remove_stale_temp_dirs

    (tmp_path / f".export-{dead.pid}-abc").mkdir()
    (tmp_path / f".export-{os.getppid()}-def").mkdir()
    remove_stale_temp_dirs(str(tmp_path), ".export-")
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith(".export-")) == [f".export-{os.getppid()}-def"]
