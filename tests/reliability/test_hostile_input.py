"""Hostile configs and files end in one short line (issue 24, defects 3, 10, 11, 12): YAML alias
bombs, nesting thousands of levels deep, NUL bytes in paths, configs that are not UTF-8."""
import json
import os
import time

import pytest

import main_single_gpu
import predict
from tests.reliability.common import TINY, one_line_exit
from utils.errors import RetrievalError
from utils.inference.code_cache import cache_paths, load_cached_codes
from utils.retrieval import HammingIndex

DEEP = 3000  # levels: past Python's recursion limit (1000)


def alias_bomb(levels=8, width=9):
    """A few hundred bytes of YAML whose last anchor expands to width**levels strings (43 million)."""
    lines = ["- &a0 [" + ",".join(["lol"] * width) + "]"]
    lines += [f"- &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return lines, f"*a{levels - 1}"


@pytest.fixture
def query(tiny_lite):
    return os.path.join(tiny_lite, "images", "test", "00000.jpg")


def test_defect3_an_alias_bomb_is_refused_at_once_in_an_index_config_and_a_config(capsys, tmp_path, tiny_lite,
                                                                                  query):
    lines, bomb = alias_bomb()
    index_config = tmp_path / "index.yaml"
    index_config.write_text("anchors:\n" + "\n".join("  " + line for line in lines) +
                            f"\nIndexProcess:\n  dist_type: hamming\n  return_k: {bomb}\n")
    assert len(index_config.read_bytes()) < 500  # the was 340 bytes
    start = time.perf_counter()
    one_line_exit(capsys, predict.main, ["--bit", "16", "--img", query, "--index-config", str(index_config)],
                  str(index_config), "aliases")
    from deploy.serving import cli

    one_line_exit(capsys, cli.main, ["--index-config", str(index_config), "--port", "0"], str(index_config), "aliases")
    config = tmp_path / "bomb.yaml"
    config.write_text("train:\n  lr:\n" + "\n".join("    " + line for line in lines) + f"\n    - {bomb}\n")
    one_line_exit(capsys, main_single_gpu.main, ["-c", str(config), "--output-dir", str(tmp_path / "o")],
                  str(config), "aliases")
    assert time.perf_counter() - start < 30


def test_defect10_nesting_thousands_of_levels_deep_is_one_line(capsys, tmp_path, tiny_lite):
    deep = "[" * DEEP + "]" * DEEP
    base = ["--data-path", tiny_lite, "--output-dir", str(tmp_path / "o"), *TINY]
    one_line_exit(capsys, main_single_gpu.main, [*base, "-o", f"train.lr={deep}"], "train.lr=[[[",
                  "nested deeper than")
    config = tmp_path / "deep.yaml"
    config.write_text(f"train:\n  lr: {deep}\n")
    one_line_exit(capsys, main_single_gpu.main, [*base, "-c", str(config)], str(config), "nested deeper than")
    # the code cache's fingerprint: not trusted, so rebuilt
    codes_path, meta_path = cache_paths(str(tmp_path), 16)
    with open(codes_path, "wb") as f:
        import numpy as np

        np.save(f, np.ones((2, 16), np.int8))
    with open(meta_path, "w") as f:
        f.write(deep)
    codes, reason = load_cached_codes(str(tmp_path), {"bit": 16})
    assert codes is None and reason.startswith("cache unreadable"), reason
    # the index file's JSON header
    index = HammingIndex(16, "numpy")
    index.add(np.ones((3, 16), np.int8))
    path = tmp_path / "db.hidx"
    index.save(str(path))
    data = path.read_bytes()
    magic, size = data[:8], int.from_bytes(data[8:12], "little")
    header = json.loads(data[12:12 + size])
    blob = (json.dumps(header)[:-1] + ', "plan": ' + deep + "}").encode()  # json.dumps itself would recurse
    path.write_bytes(magic + len(blob).to_bytes(4, "little") + blob + data[12 + size:])
    with pytest.raises(RetrievalError, match="corrupt header"):
        HammingIndex.load(str(path))


def test_defect11_a_nul_byte_in_a_path_is_one_line(capsys, tmp_path, tiny_lite, query):
    base = ["--output-dir", str(tmp_path / "o"), *TINY]
    for key in ("dataset.data_path", "output_dir", "dataset.list_dir", "pretrained"):
        one_line_exit(capsys, main_single_gpu.main, [*base, "--data-path", tiny_lite, "-o", f'{key}="a\\0b"'], key,
                      "must be a path")
    config = tmp_path / "nul.yaml"
    config.write_text('dataset:\n  data_path: "lite\\0data"\n')
    one_line_exit(capsys, main_single_gpu.main, [*base, "-c", str(config)], "dataset.data_path", "must be a path")
    for key in ("index_dir", "image_root"):
        index_config = tmp_path / f"{key}.yaml"
        index_config.write_text(f'IndexProcess:\n  dist_type: hamming\n  {key}: "out\\0put"\n')
        one_line_exit(capsys, predict.main, ["--bit", "16", "--img", query, "--index-config", str(index_config)],
                      f"IndexProcess.{key}", "NUL")


def test_defect12_a_config_that_is_not_utf8_is_one_line(capsys, tmp_path, tiny_lite):
    config = tmp_path / "latin1.yaml"
    config.write_bytes("train:\n  lr: 0.01  # r\u00e9glage\n".encode("latin-1"))
    one_line_exit(capsys, main_single_gpu.main, ["-c", str(config), "--data-path", tiny_lite,
                                                 "--output-dir", str(tmp_path / "o")],
                  f"{config}:2: not UTF-8 text")


def test_an_integer_of_5000_digits_is_one_line(capsys, tmp_path, tiny_lite):
    """Found by benchmarks/bench_reliability.py: Python refuses int() of more than 4300 digits with a
    ValueError, which PyYAML let through."""
    one_line_exit(capsys, main_single_gpu.main, ["--data-path", tiny_lite, "--output-dir", str(tmp_path), *TINY,
                                                 "-o", "train.lr=" + "9" * 5000], "integer too long")
