import os
import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

# hypothesis caches constants and examples in ./.hypothesis by default; keep the work tree clean
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), f"hashnet-hypothesis-{os.getuid()}"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny16(tiny_lite, tmp_path_factory):
    """Untrained 16-bit weights `<folder>/w` (.pdparams + .safetensors) of the narrow 64 px test
    network, with the config_16.yaml predict.py, export_model.py and quantize.py read beside them."""
    import paddle

    from models import build_model
    from utils.config import build_config, save_config
    from utils.storage.weights import save_safetensors

    folder = tmp_path_factory.mktemp("tiny16")
    cfg = build_config(None, {"bit": 16, "dataset": "lite", "data_path": tiny_lite},
                       ["model.fc_dim=64", "dataset.resize_size=64", "dataset.crop_size=64"])
    paddle.seed(5)
    state = build_model(cfg).state_dict()
    paddle.save(state, str(folder / "w.pdparams"))
    save_safetensors(state, str(folder / "w.safetensors"), {"bit": 16, "backbone": cfg["model"]["backbone"]})
    save_config(cfg, str(folder / "config_16.yaml"))
    return str(folder / "w")
