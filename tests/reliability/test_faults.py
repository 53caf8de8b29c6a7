"""SIGKILL at random points of a training run, then --resume: the same weights as a run never
interrupted; no checkpoint is ever torn; a corrupt checkpoint is named and the previous one used.

Crashes are placed by tests/reliability/faults.py, which wraps one product function in the child
process (the process SIGKILLs itself at an exact point; the product has no test hooks), not with timers: a kill "during a checkpoint write" must
land inside a write every time, and a kill during an epoch or an evaluation is placed by
counting decoded images (32 per training epoch, 12 + 48 per evaluation here). The count and
the write that is hit are drawn at random (seed printed on failure; RELIABILITY_SEED fixes it).
"""
import os
import random
import shutil
import signal

import paddle
import pytest

from tests.reliability.common import assert_same_weights, train

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("RELIABILITY_SEED", random.SystemRandom().randrange(1 << 30)))
EPOCHS = 2
TRAIN, EVAL = 32, 12 + 48  # images decoded by one training epoch / one evaluation (tiny_lite)


@pytest.fixture(scope="module")
def reference(tiny_lite, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    code, stdout, stderr = train(tiny_lite, out, EPOCHS)
    assert code == 0, stderr[-2000:]
    return out


def crash_then_resume(tiny_lite, out, fault):
    code, _, stderr = train(tiny_lite, out, EPOCHS, fault=fault)
    assert code == -signal.SIGKILL, f"fault {fault} (seed {SEED}) did not kill the run (exit {code}): {stderr[-1500:]}"
    for name in os.listdir(out):  # no file under its final name is torn: each one loads
        if name.endswith((".pdparams", ".pdopt")):
            paddle.load(str(out / name))
    code, _, stderr = train(tiny_lite, out, EPOCHS, "--resume", str(out / "model_last_16"))
    assert code == 0, f"resume after {fault} failed: {stderr[-2000:]}"
    return stderr


def points():
    rng = random.Random(SEED)
    epoch2 = rng.randint(TRAIN + EVAL + 1, TRAIN + EVAL + TRAIN)  # inside the 2nd training epoch
    eval2 = rng.randint(2 * TRAIN + EVAL + 1, 2 * TRAIN + 2 * EVAL)  # inside the 2nd evaluation
    write = rng.choice(["write_partial:model_last_16.pdparams", "write_partial:model_last_16.pdopt",
                        "before_rename:model_last_16.pdparams"])  # before_rename of the .pdopt: the test below
    cases = [("during epoch 2", f"read_image::{epoch2}"), ("during evaluation 2", f"read_image::{eval2}"),
             ("during checkpoint write", f"{write}:2")]
    return [pytest.param(where, fault, id=f"{where} [fault={fault}, RELIABILITY_SEED={SEED}]")
            for where, fault in cases]


@pytest.mark.parametrize("where,fault", points())
def test_sigkill_then_resume_gives_the_uninterrupted_weights(reference, tiny_lite, tmp_path, where, fault):
    crash_then_resume(tiny_lite, tmp_path, fault)
    for kind in ("last", "best"):
        assert_same_weights(reference / f"model_{kind}_16.pdparams", tmp_path / f"model_{kind}_16.pdparams")
    assert sorted(os.listdir(tmp_path)) == sorted(os.listdir(reference)), (SEED, fault)  # no temp file left behind


def test_torn_pair_is_detected_and_the_previous_checkpoint_used(reference, tiny_lite, tmp_path):
    """The kill lands after the new .pdparams replaced the old one but before the .pdopt did."""
    crash_then_resume(tiny_lite, tmp_path, "before_rename:model_last_16.pdopt:2")
    for kind in ("last", "best"):
        assert_same_weights(reference / f"model_{kind}_16.pdparams", tmp_path / f"model_{kind}_16.pdparams")
    log = open(tmp_path / "train_16.log").read()
    assert "model_last_16.pdparams does not belong to" in log and "falling back to the previous checkpoint" in log
    assert "model_last_16.prev.pdparams (epoch 1)" in log, log


def test_corrupt_checkpoint_names_the_file_and_falls_back(reference, tiny_lite, tmp_path):
    for name in os.listdir(reference):
        if name.startswith("model_"):
            shutil.copy(reference / name, tmp_path / name)
    with open(tmp_path / "model_last_16.pdparams", "r+b") as f:  # a disk error in the newest weights
        f.truncate(1000)
    # continue the finished 2-epoch run to epoch 2 again: it must redo epoch 2 from the epoch-1 checkpoint
    code, _, stderr = train(tiny_lite, tmp_path, EPOCHS, "--resume", str(tmp_path / "model_last_16"))
    assert code == 0, stderr[-2000:]
    log = open(tmp_path / "train_16.log").read()
    assert f"{tmp_path / 'model_last_16.pdparams'}" in log and "falling back" in log, log
    assert_same_weights(reference / "model_last_16.pdparams", tmp_path / "model_last_16.pdparams")
