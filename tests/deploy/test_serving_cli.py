"""The start command: every flag explained, and what it does when the exported model is missing."""
import os

import numpy as np
import pytest
import yaml

from deploy.serving import cli
from tests.deploy.conftest import BIT
from utils.errors import UserError
from utils.inference.encoders import InferenceEncoder
from utils.storage.fileio import file_sha256

pytestmark = pytest.mark.slow


def test_every_flag_has_an_explanation(capsys):
    flags = [a for a in cli.build_parser()._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 20
    assert all(a.help and len(a.help) > 15 for a in flags), [a.dest for a in flags if not a.help]
    args = cli.parse_args([])
    assert args.model_dir == "./output/inference" and args.dataset == "lite" and args.host == "127.0.0.1"
    with pytest.raises(SystemExit):
        cli.parse_args(["--predictors", "0"])
    assert "--predictors must be >= 1" in capsys.readouterr().err


def test_a_missing_model_names_the_export_command(tmp_path):
    model_dir = str(tmp_path / "inference")
    with pytest.raises(UserError, match="no weights .*model_best_64.pdparams.*then run: python export_model.py "
                                        "--bit 64 --pretrained ./output/model_best_64 --save-inference-dir " + model_dir):
        cli.ensure_model(model_dir, None, None, True)
    weights = tmp_path / "w.pdparams"
    weights.write_bytes(b"x")
    with pytest.raises(UserError, match=f"no exported model there; run: python export_model.py --bit 32 "
                                        f"--pretrained {tmp_path / 'w'} "):
        cli.ensure_model(model_dir, 32, str(tmp_path / "w"), False)


def test_auto_export_from_trained_weights(serving_model, tmp_path):
    prefix = os.path.join(os.path.dirname(serving_model), f"untrained_{BIT}")
    model_dir = str(tmp_path / "inference")
    said = []
    cli.ensure_model(model_dir, None, prefix, True, log=said.append)
    assert "exporting" in said[0] and "python export_model.py --bit 64" in said[0]
    info = yaml.safe_load(open(os.path.join(model_dir, "infer_cfg.yml")))
    assert info["weights_sha256"] == file_sha256(prefix + ".pdparams") and info["bit"] == BIT
    images = np.random.default_rng(0).normal(size=(4, 3, 64, 64)).astype(np.float32)
    np.testing.assert_array_equal(InferenceEncoder(model_dir, BIT, cpu_threads=1).encode_batch(images),
                                  InferenceEncoder(serving_model, BIT, cpu_threads=1).encode_batch(images))
    said.clear()
    cli.ensure_model(model_dir, None, prefix, True, log=said.append)  # present and current: nothing to say
    assert said == []
