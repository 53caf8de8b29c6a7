"""Shared by the service tests: a private copy of the tiny lite data and an exported untrained model."""
import os
import shutil

import pytest

BIT = 64
# The lite architecture, narrowed like tests/test_pipeline.py's, on 64x64 crops of the 72 px images.
TINY = ["model.fc_dim=256", "dataset.resize_size=72", "dataset.crop_size=64"]


@pytest.fixture(scope="session")
def serving_data(tiny_lite, tmp_path_factory):
    """A copy of tiny_lite the service tests may add files to (symlinks, a secret outside)."""
    root = str(tmp_path_factory.mktemp("serving") / "data")
    shutil.copytree(tiny_lite, root)
    return root


@pytest.fixture(scope="session")
def serving_model(serving_data, tmp_path_factory):
    """An exported untrained 64-bit model: deterministic codes, exported exactly as trained weights are."""
    from deploy.serving.demo_model import export_untrained_model

    return export_untrained_model(str(tmp_path_factory.mktemp("serving_model")), serving_data, bit=BIT, overrides=TINY)


def db_list(data_root):
    return os.path.join(data_root, "database.txt")
