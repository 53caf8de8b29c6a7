"""Weights in safetensors (no pickle on load) and checkpoint generations with fallback."""
import os

import numpy as np
import paddle
import pytest

import export_model
from models import build_model
from tools.convert_weights import convert
from utils.storage.weights import load_weights, resolve_weights
from utils.training.checkpoint import load_checkpoint, save_checkpoint
from utils.config import build_config, save_config
from utils.errors import UserError
from utils.storage.weights import load_safetensors, save_safetensors


def tiny_model(bit=16, seed=0, **model):
    overrides = ["model.fc_dim=64", "dataset.resize_size=64", "dataset.crop_size=64"]
    overrides += [f"model.{k}={v}" for k, v in model.items()]
    paddle.seed(seed)
    cfg = build_config(None, {"bit": bit}, overrides)
    return build_model(cfg), cfg


def numpy_state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def assert_same(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_safetensors_round_trip_and_preference(tmp_path):
    model, _ = tiny_model(seed=1)
    other, _ = tiny_model(seed=2)
    paddle.save(other.state_dict(), str(tmp_path / "w.pdparams"))  # different weights under the same prefix
    save_safetensors(model.state_dict(), str(tmp_path / "w.safetensors"), {"bit": 16, "backbone": "alexnet"})
    state, meta = load_safetensors(str(tmp_path / "w.safetensors"))
    assert meta == {"format": "hashnet-paddle-weights", "bit": "16", "backbone": "alexnet"}
    target, _ = tiny_model(seed=3)
    assert load_weights(target, str(tmp_path / "w")) == str(tmp_path / "w.safetensors")  # preferred
    assert_same(numpy_state(target), numpy_state(model))
    assert load_weights(target, str(tmp_path / "w.pdparams")) == str(tmp_path / "w.pdparams")  # asked by name
    assert_same(numpy_state(target), numpy_state(other))


def test_safetensors_of_another_bit_count_or_width_or_corrupt(tmp_path):
    model32, _ = tiny_model(bit=32)
    save_safetensors(model32.state_dict(), str(tmp_path / "w32.safetensors"), {"bit": 32})
    model16, _ = tiny_model(bit=16)
    with pytest.raises(UserError, match=r"w32\.safetensors holds a 32-bit model but --bit is 16"):
        load_weights(model16, str(tmp_path / "w32"))
    wide, _ = tiny_model(bit=16, fc_dim=128)
    save_safetensors(wide.state_dict(), str(tmp_path / "wide.safetensors"))
    with pytest.raises(UserError, match=r"wide\.safetensors: tensor \S+ has shape .*model\.fc_dim"):
        load_weights(model16, str(tmp_path / "wide"))
    data = open(tmp_path / "w32.safetensors", "rb").read()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(UserError, match=r"cut\.safetensors cannot be read .*corrupt or not safetensors"):
        load_weights(model16, str(tmp_path / "cut"))
    (tmp_path / "pickle.safetensors").write_bytes(open(tmp_path / "w32.safetensors", "rb").read()[:8] + b"\x80\x04")
    with pytest.raises(UserError, match="cannot be read"):
        load_weights(model16, str(tmp_path / "pickle.safetensors"))


def test_convert_tool(tmp_path):
    model, cfg = tiny_model(seed=4)
    paddle.save(model.state_dict(), str(tmp_path / "model_best_16.pdparams"))
    save_config(cfg, str(tmp_path / "config_16.yaml"))
    out, meta = convert(str(tmp_path / "model_best_16"))
    assert out == str(tmp_path / "model_best_16.safetensors") and meta == {"bit": 16, "backbone": "alexnet"}
    state, _ = load_safetensors(out)
    assert_same(state, numpy_state(model))


@pytest.mark.slow
def test_export_writes_safetensors(tmp_path):
    model, cfg = tiny_model(seed=5)
    paddle.save(model.state_dict(), str(tmp_path / "w.pdparams"))
    save_config(cfg, str(tmp_path / "config_16.yaml"))
    export_model.main(["--bit", "16", "--pretrained", str(tmp_path / "w"),
                       "--save-inference-dir", str(tmp_path / "inf")])
    state, meta = load_safetensors(str(tmp_path / "inf" / "model_16.safetensors"))
    assert meta["bit"] == "16"
    assert_same(state, numpy_state(model))


STATE = {"epoch": 0, "bit": 16, "backbone": "alexnet", "best": {"map": 0.1}, "history": {}}


def test_checkpoint_generations_and_fallback(tmp_path):
    prefix = str(tmp_path / "model_last_16")
    for name in ("model_last_16.prev.pdparams", "model_last_16.prev.pdopt"):  # left by some older run
        (tmp_path / name).write_bytes(b"stale")
    model, _ = tiny_model(seed=1)
    save_checkpoint(prefix, model, {**STATE, "epoch": 0})
    assert not os.path.exists(prefix + ".prev.pdparams")  # never fall back to another run's checkpoint
    first = numpy_state(model)
    model2, _ = tiny_model(seed=2)
    save_checkpoint(prefix, model2, {**STATE, "epoch": 1}, release=True)
    assert os.path.isfile(prefix + ".safetensors") and resolve_weights(prefix) == prefix + ".safetensors"
    target, _ = tiny_model(seed=9)
    state, used = load_checkpoint(target, prefix)
    assert (state["epoch"], used) == (1, prefix)
    assert_same(numpy_state(target), numpy_state(model2))
    with open(prefix + ".pdopt", "r+b") as f:
        f.truncate(50)
    state, used = load_checkpoint(target, prefix)  # falls back, says so on stderr
    assert (state["epoch"], used) == (0, prefix + ".prev")
    assert_same(numpy_state(target), first)
    with open(prefix + ".prev.pdparams", "r+b") as f:
        f.truncate(50)
    with pytest.raises(UserError) as exc:
        load_checkpoint(target, prefix)
    assert "model_last_16.pdopt cannot be read" in str(exc.value)
    assert "previous checkpoint is unusable too" in str(exc.value)
    os.unlink(prefix + ".prev.pdparams")
    with pytest.raises(UserError, match="no previous checkpoint .*model_last_16.prev.pdparams to fall back to"):
        load_checkpoint(target, prefix)


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pdparams_that_would_run_code_is_refused_unread(tmp_path):
    import pickle

    marker = str(tmp_path / "ran")
    model, _ = tiny_model()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    state["backbone._fc6.bias"] = RunsCode(marker)
    (tmp_path / "evil.pdparams").write_bytes(pickle.dumps(state, protocol=4))
    with pytest.raises(UserError, match=r"evil\.pdparams is refused: its pickle refers to io\.open"):
        load_weights(model, str(tmp_path / "evil"))
    assert not os.path.exists(marker)
    with pytest.raises(UserError, match="refused"):
        convert(str(tmp_path / "evil"))
    assert not os.path.exists(marker)
    with pytest.raises(NotImplementedError):  # what the check prevents: paddle.load runs the code, then fails
        paddle.load(str(tmp_path / "evil.pdparams"))
    assert os.path.exists(marker)


@pytest.mark.slow
@pytest.mark.parametrize("failing", ["model_best_16.pdparams", "model_best_16.pdopt", "model_best_16.safetensors",
                                     "config_16.yaml"])
def test_a_failed_write_anywhere_in_a_generation_changes_nothing(tmp_path, monkeypatch, failing):
    """The whole generation (weights, state, released weights, config) is written before any file is
    replaced, and the current pair becomes .prev only then."""
    import errno

    from tests.reliability.common import assert_same_folder, folder_bytes
    from utils.storage import fileio
    from utils.training import checkpoint
    from utils.errors import WriteError

    prefix = str(tmp_path / "model_best_16")
    config = {str(tmp_path / "config_16.yaml"): b"first\n"}
    for epoch, seed in ((0, 1), (1, 2)):  # two generations: the current one and .prev
        save_checkpoint(prefix, tiny_model(seed=seed)[0], {**STATE, "epoch": epoch}, release=True, files=config)
    before = folder_bytes(tmp_path)
    real = fileio.stage_bytes

    def disk_full_at(path, data):
        if os.path.basename(path) == failing:
            with fileio.staged_open(path, "wb") as (f, _):
                f.write(data[:10])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data)

    monkeypatch.setattr(checkpoint, "stage_bytes", disk_full_at)
    with pytest.raises(WriteError, match=f"cannot write .*{failing}: No space left on device"):
        save_checkpoint(prefix, tiny_model(seed=3)[0], {**STATE, "epoch": 2}, release=True,
                        files={str(tmp_path / "config_16.yaml"): b"second\n"})
    assert_same_folder(before, folder_bytes(tmp_path))  # no temp file left, nothing replaced or relinked
    state, used = load_checkpoint(tiny_model(seed=9)[0], prefix)
    assert state["epoch"] == 1 and used == prefix
