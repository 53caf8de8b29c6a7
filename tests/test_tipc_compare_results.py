"""test_tipc/compare_results.py: expected codes of the TIPC lite images against inference logs
(fp32 exact, other precisions within a Hamming budget), its one-line errors, and the stored
expected files of test_tipc/results/."""
import glob
import os
import re
import subprocess

import numpy as np
import pytest

from test_tipc import compare_results  # run as `python -m test_tipc.compare_results`
from tests.commands import python_argv, root_on_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _log(path, codes, folder="/data/lite/images/test"):
    """An inference log as deploy/inference_python/infer.py prints it (with a benchmark tail)."""
    lines = [f"{folder}/{name}\tcode: {bits}\thex: {int(bits, 2):x}" for name, bits in codes.items()]
    lines += ["----------------------- benchmark -----------------------", "peak_memory(MB): 300"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _model_dir(tmp_path, digest):
    folder = tmp_path / f"model_{digest[:4]}"
    folder.mkdir()
    (folder / "infer_cfg.yml").write_text(f"bit: 16\nweights_digest: {digest}\n")
    return str(folder)


def _run(argv, capsys):
    try:
        rc = compare_results.main(argv)
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def codes():
    rng = np.random.default_rng(0)
    return {f"{i:05d}.jpg": "".join(map(str, rng.integers(0, 2, 16))) for i in range(20)}


def _flip(bits, positions):
    return "".join(str(1 - int(b)) if i in positions else b for i, b in enumerate(bits))


def test_write_then_compare_is_exact(tmp_path, codes, capsys):
    log = _log(tmp_path / "run.log", codes)
    gt = str(tmp_path / "results" / "gt.txt")
    model = _model_dir(tmp_path, "ab" * 32)
    rc, out, _ = _run(["--write", "--gt-file", gt, "--log-file", log, "--model-dir", model, "--note", "made here"], capsys)
    assert rc == 0 and "wrote 20 expected codes" in out
    text = open(gt).read()
    assert "# made here" in text and f"# weights_digest: {'ab' * 32}" in text
    assert read_back(gt) == codes
    # the same codes in another order, from another folder: exact
    other = _log(tmp_path / "other.log", dict(reversed(list(codes.items()))), folder="/elsewhere")
    rc, out, _ = _run(["--gt-file", gt, "--log-file", log, "--log-file", other, "--model-dir", model], capsys)
    assert rc == 0, out
    assert out.count("compare_results: ok:") == 2 and "0 differ, max 0 / mean 0.000 bits" in out
    assert "note" not in out


def read_back(gt):
    return compare_results.read_expected(gt)[0]


def test_flipped_bits_fail_fp32_and_pass_within_a_budget(tmp_path, codes, capsys):
    gt = tmp_path / "gt.txt"
    gt.write_text("# header\n" + "".join(f"{n}\t{b}\n" for n, b in codes.items()))
    changed = dict(codes)
    names = list(codes)
    changed[names[3]] = _flip(codes[names[3]], {0, 5})   # 2 bits
    changed[names[7]] = _flip(codes[names[7]], {15})     # 1 bit
    log = _log(tmp_path / "int8.log", changed)
    # reference: Hamming distances counted with numpy
    a = np.array([[int(c) for c in codes[n]] for n in names])
    b = np.array([[int(c) for c in changed[n]] for n in names])
    distances = (a != b).sum(1)
    assert distances.max() == 2 and distances.mean() == pytest.approx(3 / 20)

    rc, out, _ = _run(["--gt-file", str(gt), "--log-file", log], capsys)
    assert rc == 1 and "FAILED" in out and "2 differ, max 2 / mean 0.150 bits" in out
    rc, out, _ = _run(["--gt-file", str(gt), "--log-file", log, "--max-hamming", "2", "--max-mean-hamming", "0.15"],
                      capsys)
    assert rc == 0 and "ok" in out
    rc, out, _ = _run(["--gt-file", str(gt), "--log-file", log, "--max-hamming", "1", "--max-mean-hamming", "1"],
                      capsys)
    assert rc == 1  # one image over the per-image budget
    rc, out, _ = _run(["--gt-file", str(gt), "--log-file", log, "--max-hamming", "16", "--max-mean-hamming", "0.1"],
                      capsys)
    assert rc == 1  # the mean over the budget
    # a glob over several logs: one failing log fails the run, each is reported
    _log(tmp_path / "fp32.log", codes)
    rc, out, _ = _run(["--gt-file", str(gt), "--log-file", str(tmp_path / "*.log")], capsys)
    assert rc == 1 and out.count("compare_results: ok:") == 1 and out.count("FAILED") == 1


def test_another_model_is_named_and_held_to_the_other_model_budget(tmp_path, codes, capsys):
    log = _log(tmp_path / "run.log", codes)
    gt = str(tmp_path / "gt.txt")
    made_here = _model_dir(tmp_path, "ab" * 32)
    _run(["--write", "--gt-file", gt, "--log-file", log, "--model-dir", made_here], capsys)
    rc, out, _ = _run(["--gt-file", gt, "--log-file", log, "--model-dir", _model_dir(tmp_path, "cd" * 32)], capsys)
    assert rc == 0 and "note: " in out and "is not the model the expected codes were made from" in out
    one_bit = _log(tmp_path / "b.log", dict(codes, **{"00000.jpg": _flip(codes["00000.jpg"], {1})}))
    rc, out, _ = _run(["--gt-file", gt, "--log-file", one_bit], capsys)
    assert rc == 1  # the same model (no --model-dir to say otherwise): fp32 is exact
    elsewhere = _model_dir(tmp_path, "ef" * 32)
    rc, out, _ = _run(["--gt-file", gt, "--log-file", one_bit, "--model-dir", elsewhere], capsys)
    assert rc == 0 and "other-model budget (max 2, mean 0.25)" in out  # another CPU's rounding may flip a bit
    rc, out, _ = _run(["--gt-file", gt, "--log-file", one_bit, "--model-dir", made_here], capsys)
    assert rc == 1  # the model the file was made from: exact again
    three_bits = _log(tmp_path / "c.log", dict(codes, **{"00000.jpg": _flip(codes["00000.jpg"], {1, 2, 3})}))
    rc, out, _ = _run(["--gt-file", gt, "--log-file", three_bits, "--model-dir", elsewhere], capsys)
    assert rc == 1  # over the other-model budget of one image
    budget = ["--max-hamming", "1", "--max-mean-hamming", "0.1"]  # int8's own budget, say
    rc, out, _ = _run(["--gt-file", gt, "--log-file", three_bits, "--model-dir", elsewhere, *budget], capsys)
    assert rc == 0 and "other-model budget (max 3, mean 0.35)" in out  # the two add: the triangle inequality
    four_bits = _log(tmp_path / "d.log", dict(codes, **{"00000.jpg": _flip(codes["00000.jpg"], {1, 2, 3, 4})}))
    rc, out, _ = _run(["--gt-file", gt, "--log-file", four_bits, "--model-dir", elsewhere, *budget], capsys)
    assert rc == 1


@pytest.mark.parametrize("case, needle", [
    ("missing_gt", "--gt-file {tmp}/nope.txt: not found"),
    ("no_log_match", "--log-file {tmp}/none_*.log: no file matches"),
    ("missing_log", "--log-file {tmp}/absent.log: not found"),
    ("bad_gt_line", "--gt-file {tmp}/bad.txt:3: expected `<image name>\\t<0/1 bits>`"),
    ("not_a_log", "--log-file {tmp}/empty.log: no `<image>\\tcode: <bits>` lines"),
    ("image_missing", "1 expected images missing (first: 00019.jpg)"),
    ("image_extra", "1 images not expected (first: extra.jpg)"),
    ("short_code", "00000.jpg: a 8-bit code, expected 16 bits"),
    ("mixed_lengths", "codes of different lengths [8, 16]"),
    ("negative_budget", "--max-hamming must be >= 0, got -1"),
    ("no_digest", "records no weights_digest to check --model-dir against"),
    ("model_without_cfg", "no infer_cfg.yml"),
    ("write_two_logs", "--write takes one --log-file, got 2"),
])
def test_bad_input_is_one_line_error(tmp_path, codes, capsys, case, needle):
    tmp = str(tmp_path)
    gt = tmp_path / "gt.txt"
    gt.write_text("".join(f"{n}\t{b}\n" for n, b in codes.items()))
    log = _log(tmp_path / "run.log", codes)
    argv = ["--gt-file", str(gt), "--log-file", log]
    if case == "missing_gt":
        argv = ["--gt-file", f"{tmp}/nope.txt", "--log-file", log]
    elif case == "no_log_match":
        argv = ["--gt-file", str(gt), "--log-file", f"{tmp}/none_*.log"]
    elif case == "missing_log":
        argv = ["--gt-file", str(gt), "--log-file", f"{tmp}/absent.log"]
    elif case == "bad_gt_line":
        (tmp_path / "bad.txt").write_text("# h\na.jpg\t0101\nb.jpg 0101\n")
        argv = ["--gt-file", f"{tmp}/bad.txt", "--log-file", log]
    elif case == "not_a_log":
        (tmp_path / "empty.log").write_text("Traceback (most recent call last):\n")
        argv = ["--gt-file", str(gt), "--log-file", f"{tmp}/empty.log"]
    elif case == "image_missing":
        argv = ["--gt-file", str(gt), "--log-file", _log(tmp_path / "m.log", dict(list(codes.items())[:-1]))]
    elif case == "image_extra":
        argv = ["--gt-file", str(gt), "--log-file", _log(tmp_path / "e.log", dict(codes, **{"extra.jpg": "0" * 16}))]
    elif case == "short_code":
        argv = ["--gt-file", str(gt), "--log-file", _log(tmp_path / "s.log", dict(codes, **{"00000.jpg": "0" * 8}))]
    elif case == "mixed_lengths":
        gt.write_text("a.jpg\t01010101\nb.jpg\t0101010101010101\n")
    elif case == "negative_budget":
        argv += ["--max-hamming", "-1"]
    elif case == "no_digest":
        argv += ["--model-dir", _model_dir(tmp_path, "ab" * 32)]
    elif case == "model_without_cfg":
        argv += ["--model-dir", tmp]
    elif case == "write_two_logs":
        _log(tmp_path / "run2.log", codes)
        argv = ["--write", "--gt-file", f"{tmp}/new.txt", "--log-file", f"{tmp}/run*.log"]
    rc, out, err = _run(argv, capsys)
    assert rc == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle.format(tmp=tmp) in lines[0], err


def test_cli_runs_as_a_script(tmp_path, codes):
    """As the TIPC scripts call it (`python -m test_tipc.compare_results`): a separate process, exit codes 0 / 1 / 2."""
    gt = tmp_path / "gt.txt"
    gt.write_text("".join(f"{n}\t{b}\n" for n, b in codes.items()))
    log = _log(tmp_path / "run.log", codes)
    run = python_argv("-m", "test_tipc.compare_results", "--gt_file", str(gt), "--log_file", log)  # PaddleClas's spelling
    proc = subprocess.run(run, capture_output=True, text=True, cwd=str(tmp_path), env=root_on_path())
    assert proc.returncode == 0 and "compare_results: ok:" in proc.stdout, proc.stderr
    proc = subprocess.run(run[:5] + ["--log_file", str(tmp_path / "x.log")], capture_output=True, text=True,
                          env=root_on_path())
    assert proc.returncode == 2 and proc.stderr.startswith("error: --log-file")


def test_stored_expected_codes_are_well_formed():
    """Every file of test_tipc/results/: the digest header, one code per lite inference image (named
    like the generated ones), of the bit length its model name says."""
    files = sorted(glob.glob(os.path.join(ROOT, "test_tipc", "results", "hashnet_*", "*.txt")))
    assert files, "no expected codes under test_tipc/results/"
    for path in files:
        bit = int(re.search(r"hashnet_(\d+)", path)[1])
        codes, digest = compare_results.read_expected(path)
        assert digest and re.fullmatch(r"[0-9a-f]{64}", digest), path
        images = 100 if "lite_train_lite_infer" in path else 600  # the lite query / database images
        assert sorted(codes) == [f"{i:05d}.jpg" for i in range(images)], path
        assert {len(b) for b in codes.values()} == {bit}, path
        assert re.search(r"_gpus_[^/]+_(fp32|bf16|int8)\.txt$", path), path  # <MODE>_gpus_<entry>_<precision>.txt
