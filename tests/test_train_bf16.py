"""train.amp bf16 on CPU (the convolutions in bf16 through oneDNN, utils/training/amp.py): it trains on
tiny lite data, logs that it does, and stays close to the fp32 run (epoch losses within 2% relative,
mAP@all within 0.05). On a CPU without avx512_bf16/amx_bf16 the run is refused in one line instead."""
import re

import numpy as np
import paddle
import pytest

from tests.test_pipeline import BIT, train
from utils.runtime.cpuinfo import bf16_flags

pytestmark = pytest.mark.slow


def _log(out):
    text = (out / f"train_{BIT}.log").read_text()
    losses = [float(v) for v in re.findall(r"epoch \d+/\d+ loss ([0-9.]+) ", text)]
    maps = re.findall(r"\[epoch \d+\] mAP@all: ([0-9.]+)", text)
    return text, losses, float(maps[-1])


def test_bf16_training_is_close_to_fp32(tiny_lite, tmp_path, capsys):
    extra = ["--epoch", "2", "-o", "train.eval_untrained=False"]
    if not bf16_flags():
        with pytest.raises(SystemExit) as exc:
            train(tiny_lite, tmp_path / "bf16", *extra, "-o", "train.amp=bf16")
        assert exc.value.code == 2 and "avx512_bf16 nor amx_bf16" in capsys.readouterr().err
        return
    train(tiny_lite, tmp_path / "fp32", *extra)
    train(tiny_lite, tmp_path / "bf16", *extra, "-o", "train.amp=bf16")
    text32, loss32, map32 = _log(tmp_path / "fp32")
    text16, loss16, map16 = _log(tmp_path / "bf16")
    assert "oneDNN convolution in bf16 (5 layers)" in text16 and "in bf16" not in text32
    assert len(loss16) == len(loss32) == 2
    # bf16 really ran (the fp32 run is deterministic): the weights differ. Not the epoch losses: logged at 4
    # decimals, they can coincide (a Zen 4 EPYC gave [0.349, 0.3478] for both)
    last32, last16 = (paddle.load(str(tmp_path / run / f"model_last_{BIT}.pdparams")) for run in ("fp32", "bf16"))
    assert last16.keys() == last32.keys()
    assert any(not np.array_equal(last16[k].numpy(), last32[k].numpy()) for k in last32)
    for a, b in zip(loss16, loss32):
        assert abs(a - b) <= 0.02 * b, (loss16, loss32)
    assert abs(map16 - map32) <= 0.05, (map16, map32)
