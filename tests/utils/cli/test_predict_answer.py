"""predict.py --radius with nothing within it says how far the nearest database image is (issue 27
item 10: `--radius 2` answered "0 database images" with no hint that the nearest was at distance 4)."""
import os
import re

import paddle
import pytest

from utils.encoding import Encoded
from utils.inference.searcher import Searcher

pytestmark = pytest.mark.slow  # builds a network and encodes a database


def test_an_empty_radius_answer_names_the_nearest_distance(tiny_lite, tmp_path, capsys, monkeypatch):
    import predict
    from models import build_model
    from utils.config import build_config

    # An untrained network gives every lite image nearly the same code (distance 0 to the query's
    # nearest); the query's code with every bit flipped is far from all of them.
    encode = Searcher.encode_images
    monkeypatch.setattr(Searcher, "encode_images",
                        lambda self, images: Encoded(-encode(self, images).features, -encode(self, images).codes))
    paddle.seed(0)
    cfg = build_config(None, {"bit": 16}, ["model.fc_dim=64"])
    paddle.save(build_model(cfg).state_dict(), str(tmp_path / "w.pdparams"))
    base = ["--bit", "16", "--img", os.path.join(tiny_lite, "images", "test", "00000.jpg"), "--pretrained",
            str(tmp_path / "w"), "-o", "model.fc_dim=64", "--data-path", tiny_lite, "--save-path", str(tmp_path),
            "--num-workers", "0"]
    predict.main([*base, "--topk", "1"])
    nearest = int(re.search(r"^ +1 +(\d+) ", capsys.readouterr().out, re.M).group(1))
    assert nearest > 0
    predict.main([*base, "--radius", str(nearest - 1)])
    out = capsys.readouterr().out
    assert (f"0 database images within Hamming radius {nearest - 1} (the nearest of 48 is at distance {nearest}: "
            f"--radius {nearest} reaches it):") in out, out
    predict.main([*base, "--radius", str(nearest)])
    assert re.search(rf"^[1-9]\d* database images within Hamming radius {nearest}:$", capsys.readouterr().out, re.M)
