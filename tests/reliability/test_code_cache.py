"""The database code cache of predict.py: built once under concurrent use, never torn, rebuilt
when its fingerprint does not match, loaded without pickle."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.reliability.common import in_repo, run
from utils.inference.code_cache import cache_paths, cached_or_built, load_cached_codes, save_codes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weights(tiny_lite, tmp_path_factory):
    """Two sets of 16-bit weights (seeds 1 and 2) with the config_16.yaml predict.py reads beside them."""
    import paddle

    from models import build_model
    from utils.config import build_config, save_config

    found = []
    for seed in (1, 2):
        folder = tmp_path_factory.mktemp(f"weights{seed}")
        cfg = build_config(None, {"bit": 16, "dataset": "lite", "data_path": tiny_lite},
                           ["model.fc_dim=64", "dataset.resize_size=64", "dataset.crop_size=64"])
        paddle.seed(seed)
        paddle.save(build_model(cfg).state_dict(), str(folder / "w.pdparams"))
        save_config(cfg, str(folder / "config_16.yaml"))
        found.append(str(folder / "w"))
    return found


def predict_cmd(tiny_lite, weights, cache):
    query = os.path.join(tiny_lite, "images", "test", sorted(os.listdir(os.path.join(tiny_lite, "images", "test")))[0])
    return [sys.executable, in_repo("predict.py"), "--bit", "16", "--img", query, "--pretrained", weights, "--data-path",
            tiny_lite, "--save-path", str(cache), "--num-workers", "0", "--topk", "5"]


def matches(stdout):
    return [line for line in stdout.splitlines() if line.strip()[:1].isdigit()]


def test_two_processes_started_together_build_the_cache_once(tiny_lite, weights, tmp_path):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen(predict_cmd(tiny_lite, weights[0], tmp_path), env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outs]
    built = [o[1] for o in outs if "encoding the database" in o[1]]  # what it does: on stderr
    assert len(built) == 1, [o[1] for o in outs]  # the other one waited on the lock and read the cache
    assert sum("cache up to date" in o[1] for o in outs) == 1
    assert matches(outs[0][0]) == matches(outs[1][0]) and len(matches(outs[0][0])) == 5
    meta = json.load(open(cache_paths(str(tmp_path), 16)[1]))
    codes, reason = load_cached_codes(str(tmp_path), {k: meta[k] for k in ("bit", "model_sha256", "preprocess",
                                                                              "list_sha256", "list", "data_root")})
    assert reason == "up to date" and codes.shape == (48, 16)

    # other weights: the cache is stale and is rebuilt, saying why
    code, stdout, stderr = run(*predict_cmd(tiny_lite, weights[1], tmp_path)[1:])
    assert code == 0, stderr[-1500:]
    assert "encoding the database" in stderr and "fingerprint differs: model_sha256" in stderr, stderr


EXPECTED = {"bit": 16, "model_sha256": "m" * 64, "list_sha256": "l" * 64, "list": "/d/database.txt", "data_root": "/d"}


def test_fingerprint_mismatch_bit_list_or_root_means_rebuild(tmp_path):
    codes = np.where(np.random.default_rng(0).random((5, 16)) > 0.5, 1, -1).astype(np.int8)
    save_codes(str(tmp_path), EXPECTED, codes)
    got, reason = load_cached_codes(str(tmp_path), EXPECTED)
    np.testing.assert_array_equal(got, codes)
    for key, value in (("list_sha256", "x" * 64), ("data_root", "/other"), ("model_sha256", "y" * 64)):
        got, reason = load_cached_codes(str(tmp_path), {**EXPECTED, key: value})
        assert got is None and reason == f"fingerprint differs: {key}"
    # a cache written for 32 bits under the 16-bit name (e.g. copied by hand)
    meta_path = cache_paths(str(tmp_path), 16)[1]
    meta = json.load(open(meta_path))
    json.dump({**meta, "bit": 32}, open(meta_path, "w"))
    assert load_cached_codes(str(tmp_path), EXPECTED) == (None, "fingerprint differs: bit")


def test_codes_that_do_not_belong_to_the_fingerprint_are_rebuilt(tmp_path):
    codes = np.ones((5, 16), np.int8)
    save_codes(str(tmp_path), EXPECTED, codes)
    np.save(cache_paths(str(tmp_path), 16)[0], -codes)  # same shape, other codes: only the sha256 tells
    got, reason = load_cached_codes(str(tmp_path), EXPECTED)
    assert got is None and "codes_sha256" in reason
    messages = []
    rebuilt = cached_or_built(str(tmp_path), EXPECTED, lambda: codes, messages.append)
    np.testing.assert_array_equal(rebuilt, codes)
    assert "codes_sha256" in messages[0] and load_cached_codes(str(tmp_path), EXPECTED)[1] == "up to date"


def test_features_ride_in_the_same_generation_and_are_checked_like_the_codes(tmp_path):
    """Features cached with the codes are read back; other features (same shape) or none are rebuilt when
    features are asked for, while a plain codes read still serves the codes."""
    from utils.encoding import Encoded, sign_codes
    from utils.inference.code_cache import feature_paths, load_cached_features

    feats = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    built = Encoded(feats, sign_codes(feats))
    codes, store = cached_or_built(str(tmp_path), EXPECTED, lambda: built, lambda *a: None, features=True)
    np.testing.assert_array_equal(codes, built.codes)
    assert np.abs(store.dequantize() - feats).max() <= store.scale.max() / 2 + 1e-6
    assert load_cached_features(str(tmp_path), EXPECTED, 5)[1] == "up to date"
    np.save(feature_paths(str(tmp_path), 16)[0], -store.values)
    assert load_cached_features(str(tmp_path), EXPECTED, 5) == (None, "cached features do not match their "
                                                                      "fingerprint (features_sha256)")
    assert load_cached_codes(str(tmp_path), EXPECTED)[1] == "up to date"
    messages = []
    again = cached_or_built(str(tmp_path), EXPECTED, lambda: built, messages.append, features=True)[1]
    assert "features_sha256" in messages[0]
    np.testing.assert_array_equal(again.values, store.values)
    save_codes(str(tmp_path), EXPECTED, built.codes)  # codes only (the service's added images): no features
    assert load_cached_features(str(tmp_path), EXPECTED, 5) == (None, "no features cached")

def test_a_pickled_cache_is_refused_without_running_it(tmp_path):
    save_codes(str(tmp_path), EXPECTED, np.ones((5, 16), np.int8))
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(cache_paths(str(tmp_path), 16)[0], np.array([Evil()], dtype=object), allow_pickle=True)
    got, reason = load_cached_codes(str(tmp_path), EXPECTED)
    assert got is None and "unreadable" in reason
    assert not marker.exists()


def test_torn_cache_files_are_not_trusted(tmp_path):
    save_codes(str(tmp_path), EXPECTED, np.ones((5, 16), np.int8))
    codes_path, meta_path = cache_paths(str(tmp_path), 16)
    data = open(codes_path, "rb").read()
    open(codes_path, "wb").write(data[: len(data) // 2])
    assert load_cached_codes(str(tmp_path), EXPECTED)[0] is None
    open(meta_path, "w").write("{not json")
    assert load_cached_codes(str(tmp_path), EXPECTED) == (None, "cache unreadable (JSONDecodeError)")
    open(meta_path, "w").write("[1, 2]")
    assert load_cached_codes(str(tmp_path), EXPECTED)[0] is None
