"""Helpers shared by the split tool tests."""
import hashlib
import os
import shutil
import subprocess
import sys

import numpy as np

from utils.data.lists import parse_list

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUTPUT_FILES = ("train.txt", "test.txt", "database.txt", "classes.txt", "SHA256SUMS", "summary.txt")


def outputs(out_dir):
    """{file name: bytes} of everything a tool wrote (no stray temp files allowed)."""
    names = sorted(os.listdir(out_dir))
    assert names == sorted(OUTPUT_FILES), names
    return {name: open(os.path.join(out_dir, name), "rb").read() for name in names}


def lists(out_dir):
    """{split: (paths, labels)} read back with the project's own list parser."""
    return {split: parse_list(os.path.join(out_dir, f"{split}.txt")) for split in ("train", "test", "database")}


def labels_by_path(out_dir):
    table = {}
    for paths, labels in lists(out_dir).values():
        for p, row in zip(paths, labels):
            table[p] = tuple(np.flatnonzero(row).tolist())
    return table


def check_sha256sums(out_dir):
    text = open(os.path.join(out_dir, "SHA256SUMS"), encoding="utf-8").read()
    entries = [line.split("  ", 1) for line in text.splitlines()]
    assert sorted(name for _, name in entries) == ["database.txt", "test.txt", "train.txt"]
    for digest, name in entries:
        assert hashlib.sha256(open(os.path.join(out_dir, name), "rb").read()).hexdigest() == digest
    if shutil.which("sha256sum"):
        proc = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out_dir, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def check_partition(out_dir, expected_pool, train_in_database=True):
    """test and database are disjoint and cover the pool; train is in (or outside) the database."""
    got = {split: paths for split, (paths, _) in lists(out_dir).items()}
    test, db, train = set(got["test"]), set(got["database"]), set(got["train"])
    assert len(test) == len(got["test"]) and len(db) == len(got["database"]) and len(train) == len(got["train"])
    assert not test & db and not test & train
    if train_in_database:
        assert train <= db and test | db == set(expected_pool)
    else:
        assert not train & db and test | db | train == set(expected_pool)
    for paths, labels in lists(out_dir).values():
        assert (labels.sum(axis=1) >= 1).all()  # no image without a label


def run_tool(module, *argv):
    """Run a tool as its own process: (exit code, stdout, stderr)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": ROOT}  # from the test's own working folder
    proc = subprocess.run([sys.executable, "-m", f"tools.{module}", *map(str, argv)], capture_output=True,
                          text=True, timeout=120, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def assert_cli_error(module, *argv, fragment):
    code, _, err = run_tool(module, *argv)
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
