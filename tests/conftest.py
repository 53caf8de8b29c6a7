import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import utils  # noqa: E402,F401  (quiet paddle before it is imported)


@pytest.fixture(scope="session")
def tiny_lite(tmp_path_factory):
    """A small generated lite data set shared by the end-to-end tests."""
    from utils.lite_data import generate_lite_dataset

    root = str(tmp_path_factory.mktemp("lite") / "lite")
    generate_lite_dataset(root, seed=3, num_database=48, num_test=12, num_train=32, image_size=72)
    return root
