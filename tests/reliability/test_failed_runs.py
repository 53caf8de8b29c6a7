"""A failed run leaves an existing model folder byte-identical, and a write that fails (disk full,
file size limit, read-only folder) ends in one line naming the file and the cause, with the
previous checkpoint generation intact.

The disk-full case is real: the run gets `ulimit -f` (RLIMIT_FSIZE) with SIGXFSZ ignored, so its
writes past the limit fail with EFBIG as on a full disk. The read-only case is simulated at the
system call (these tests run as root, which the file permissions do not stop)."""
import errno
import os
import shutil

import pytest

from tests.reliability.common import (TINY, assert_one_line_error, assert_same_folder, file_size_limit, folder_bytes,
                                      run, train)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def good(tiny_lite, tmp_path_factory):
    """A model folder from a good 2-epoch run: model_best/last_16 (+ .prev, .safetensors), config, log, curves."""
    out = tmp_path_factory.mktemp("good")
    code, _, stderr = train(tiny_lite, out, 2)
    assert code == 0, stderr[-2000:]
    assert {"config_16.yaml", "model_last_16.prev.pdparams", "model_best_16.safetensors", "train_16.log",
            "vdl_16"} <= set(os.listdir(out))
    return out


@pytest.fixture
def model_folder(good, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(good, folder)
    return folder


def query_code(tiny_lite, folder, save):
    query = os.path.join(tiny_lite, "images", "test", sorted(os.listdir(os.path.join(tiny_lite, "images", "test")))[0])
    code, stdout, stderr = run("predict.py", "--bit", "16", "--img", query, "--pretrained", str(folder / "model_best_16"),
                               "--data-path", tiny_lite, "--save-path", str(save), "--num-workers", "0")
    assert code == 0, stderr[-2000:]
    return stdout.splitlines()[0].split()[3]


def broken_copy(tiny_lite, root, train_lines):
    os.makedirs(root)
    os.symlink(os.path.join(tiny_lite, "images"), os.path.join(root, "images"))
    for split in ("test", "database", "classes"):
        shutil.copy(os.path.join(tiny_lite, f"{split}.txt"), root)
    with open(os.path.join(root, "train.txt"), "w") as f:
        f.write("\n".join(train_lines) + "\n")
    return root


def test_a_run_that_fails_at_its_first_list_line_leaves_the_folder_as_it_was(good, model_folder, tiny_lite, tmp_path):
    before = folder_bytes(model_folder)
    code_before = query_code(tiny_lite, model_folder, tmp_path / "cache1")
    lines = open(os.path.join(tiny_lite, "train.txt")).read().splitlines()
    path, first_label, other_labels = lines[0].split(" ", 2)
    data = broken_copy(tiny_lite, str(tmp_path / "bad_list"), [f"{path} 2 {other_labels}"] + lines[1:])
    # other preprocessing and width, as in the issue: had the config been written, predict would now differ
    code, _, stderr = train(data, model_folder, 1, "-o", "dataset.resize_size=80", "-o", "dataset.crop_size=72",
                            "-o", "model.fc_dim=32")
    assert_one_line_error(code, stderr, "train.txt:1: label '2' is not 0 or 1")
    assert_same_folder(before, folder_bytes(model_folder))
    assert query_code(tiny_lite, model_folder, tmp_path / "cache2") == code_before


def test_a_run_that_fails_inside_its_first_epoch_leaves_the_folder_as_it_was(model_folder, tiny_lite, tmp_path):
    """It got further: it logged, evaluated the untrained network and trained some steps."""
    before = folder_bytes(model_folder)
    lines = open(os.path.join(tiny_lite, "train.txt")).read().splitlines()
    labels = lines[0].split(" ", 1)[1]
    data = broken_copy(tiny_lite, str(tmp_path / "bad_image"), lines[:-1] + [f"empty.jpg {labels}"])
    open(os.path.join(data, "empty.jpg"), "wb").close()  # found by the list check, fails when decoded
    code, stdout, stderr = train(data, model_folder, 1, "-o", "train.eval_untrained=true")
    assert_one_line_error(code, stderr, "empty.jpg: image file is empty")
    assert "[untrained] mAP@all" in stdout  # the console had the whole story
    assert_same_folder(before, folder_bytes(model_folder))


def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_generation(model_folder, tiny_lite):
    before = folder_bytes(model_folder)
    limit = 1 << 20  # 1 MiB: every .pdparams here is ~9 MiB
    assert os.path.getsize(model_folder / "model_last_16.pdparams") > limit
    code, _, stderr = train(tiny_lite, model_folder, 3, "--resume", str(model_folder / "model_last_16"),
                            preexec_fn=file_size_limit(limit))
    line = assert_one_line_error(code, stderr, "cannot write", "File too large")
    assert line.startswith(f"error: cannot write {model_folder}{os.sep}model_") and ".pdparams: " in line, line
    assert_same_folder(before, folder_bytes(model_folder))  # current and .prev generations, config, log: as they were
    # and the run can go on once there is room
    code, _, stderr = train(tiny_lite, model_folder, 3, "--resume", str(model_folder / "model_last_16"))
    assert code == 0, stderr[-2000:]


def test_disk_full_in_predict_is_one_line_and_leaves_no_cache(good, tiny_lite, tmp_path):
    query = os.path.join(tiny_lite, "images", "test", sorted(os.listdir(os.path.join(tiny_lite, "images", "test")))[0])
    save = tmp_path / "cache"
    code, stdout, stderr = run("predict.py", "--bit", "16", "--img", query, "--pretrained", str(good / "model_best_16"),
                               "--data-path", tiny_lite, "--save-path", str(save), "--num-workers", "0",
                               preexec_fn=file_size_limit(512))  # the codes (.npy) or their fingerprint (.json)
    line = assert_one_line_error(code, stderr, f"cannot write {save}{os.sep}database_code_16.", ": File too large")
    assert line.endswith((".npy: File too large", ".json: File too large")), line
    assert [n for n in os.listdir(save) if not n.endswith(".lock")] == []


def test_a_read_only_folder_names_the_file_and_changes_nothing(good, model_folder, monkeypatch, capsys, tiny_lite):
    import tempfile

    import main_single_gpu

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    before = folder_bytes(model_folder)
    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(SystemExit) as exc:
        main_single_gpu.main(["--data-path", tiny_lite, "--output-dir", str(model_folder), "--epoch", "1", *TINY])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write {model_folder}{os.sep}model_"), err
    assert err[0].endswith(": Read-only file system"), err
    assert_same_folder(before, folder_bytes(model_folder))


def test_disk_full_during_an_export_keeps_the_previous_export(good, tmp_path):
    export_dir = tmp_path / "inference"
    code, _, stderr = run("export_model.py", "--bit", "16", "--pretrained", str(good / "model_best_16"),
                          "--save-inference-dir", str(export_dir))
    assert code == 0, stderr[-2000:]
    before = folder_bytes(export_dir)
    code, _, stderr = run("export_model.py", "--bit", "16", "--pretrained", str(good / "model_last_16"),
                          "--save-inference-dir", str(export_dir), preexec_fn=file_size_limit(1 << 20))
    assert_one_line_error(code, stderr, f"cannot write {export_dir}{os.sep}", "File too large")
    assert_same_folder(before, folder_bytes(export_dir))  # no half-written graph, no temp folder left
