"""PP-ShiTu's IndexProcess section read as this project's index settings (utils/retrieval/index_config.py)."""
import pytest

from utils.errors import ConfigError
from utils.retrieval.index_config import parse_index_process, read_index_config

# The layout of PaddleClas's deploy/configs/inference_general_binary.yaml (values of this project's lite model)
PP_SHITU_YAML = """\
Global:
  rec_inference_model_dir: "./models/general_PPLCNet_x2_5_lite_binary_v1.0_infer"
  batch_size: 1
  use_gpu: False
RecPostProcess:
  main_indicator: Binarize
  Binarize:
    method: "sign"
IndexProcess:
  index_method: "Flat"  # supported: HNSW32, Flat
  image_root: "./gallery/"
  index_dir: "./index_bin"
  data_file:  "./gallery/labels.txt"
  index_operation: "new"
  delimiter: "\\t"
  dist_type: "hamming"
  embedding_size: 64
  batch_size: 32
  return_k: 5
  hamming_radius: 2
"""


def write(tmp_path, text, name="index.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_pp_shitu_binary_config_selects_the_exact_index_and_radius(tmp_path):
    path = write(tmp_path, PP_SHITU_YAML)
    s = read_index_config(path)
    assert (s.radius, s.topk, s.embedding_size, s.index_dir, s.image_root) == (2, 5, 64, "./index_bin", "./gallery/")
    assert s.unused == ("delimiter", "data_file", "index_operation", "batch_size")
    assert s.check_bit(64) is s
    assert s.note() == (f"{path}: IndexProcess keys not used here: delimiter, data_file, index_operation, "
                        f"batch_size (PP-ShiTu's gallery building and float scores; the database is the data "
                        f"set's database.txt)")


@pytest.mark.parametrize("method", ["FLAT", "Flat", "flat", None])
def test_flat_in_any_case_or_absent(method):
    section = {"dist_type": "hamming"} if method is None else {"index_method": method, "dist_type": "Hamming"}
    s = parse_index_process(section)
    assert (s.radius, s.topk, s.unused, s.note()) == (None, None, (), None)


@pytest.mark.parametrize("change, key, fragment", [
    ({"index_method": "PQ8"}, "index_method", "'PQ8' is not supported: use FLAT (exact), HNSW<M> such as HNSW32"),
    ({"index_method": "HNSW"}, "index_method", "'HNSW' is not supported"),
    ({"index_method": "HNSW1"}, "index_method", "'HNSW1': an HNSW graph needs at least 2 links per node"),
    ({"index_method": "IVF0,Flat"}, "index_method", "'IVF0,Flat': IVF needs at least 1 list"),
    ({"index_method": "IVF64,PQ8"}, "index_method", "'IVF64,PQ8' is not supported"),
    ({"index_method": 32}, "index_method", "32 is not supported"),
    ({"dist_type": "IP"}, "dist_type", "'IP' is not supported"),
    ({"dist_type": "L2"}, "dist_type", "'L2' is not supported"),
    ({"dist_type": None}, "dist_type", "missing; set dist_type: hamming"),
    ({"hamming_radius": -1}, "hamming_radius", "must be an integer >= 0, got -1"),
    ({"hamming_radius": "two"}, "hamming_radius", "must be an integer >= 0, got 'two'"),
    ({"hamming_radius": 2.5}, "hamming_radius", "must be an integer >= 0, got 2.5"),
    ({"hamming_radius": True}, "hamming_radius", "must be an integer >= 0, got True"),
    ({"return_k": 0}, "return_k", "must be an integer >= 1, got 0"),
    ({"embedding_size": "64"}, "embedding_size", "must be an integer >= 1"),
    ({"index_dir": ""}, "index_dir", "must be a non-empty string"),
    ({"delimiter": 9}, "delimiter", "must be a non-empty string"),
    ({"index_operation": "merge"}, "index_operation", "must be new, append or remove"),
    ({"batch_size": 0}, "batch_size", "must be an integer >= 1"),
    ({"score_thres": "high"}, "score_thres", "must be a number"),
    ({"hamming_raduis": 2}, "hamming_raduis", "unknown key; PP-ShiTu's keys are index_method, dist_type"),
    ({"build": {"dist_type": "IP"}}, "build", "PaddleClas 2.2's nested layout is not read"),
])
def test_unsupported_or_malformed_values_name_the_key(change, key, fragment):
    section = {"index_method": "FLAT", "dist_type": "hamming", "hamming_radius": 2}
    section.update(change)
    section = {k: v for k, v in section.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        parse_index_process(section, "cfg.yaml")
    message = str(info.value)
    assert message.startswith(f"cfg.yaml: IndexProcess.{key}: ") and fragment in message and "\n" not in message


def test_the_model_bit_count_bounds_the_settings():
    s = parse_index_process({"dist_type": "hamming", "embedding_size": 512, "hamming_radius": 100}, "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: IndexProcess.embedding_size: 512, but the model's codes are 64"):
        s.check_bit(64)
    s = parse_index_process({"dist_type": "hamming", "hamming_radius": 17}, "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: IndexProcess.hamming_radius must be an integer in \[0, 16\]"):
        s.check_bit(16)


@pytest.mark.parametrize("text, fragment", [
    (None, "file not found"),
    ("IndexProcess: [unclosed\n", "not valid YAML (line"),
    ("Global:\n  batch_size: 1\n", "no IndexProcess section"),
    ("IndexProcess:\n  - dist_type\n", "IndexProcess must be a mapping"),
])
def test_bad_files_are_one_line_errors(tmp_path, text, fragment):
    path = str(tmp_path / "none.yaml") if text is None else write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_index_config(path)
    assert fragment in str(info.value) and path in str(info.value) and "\n" not in str(info.value)


def test_the_shipped_example():
    import os

    from tests.conftest import ROOT

    s = read_index_config(os.path.join(ROOT, "deploy", "configs", "index_hamming.yaml")).check_bit(64)
    assert (s.radius, s.topk, s.embedding_size, s.image_root, s.index_dir, s.unused) == (
        2, 10, 64, "./datasets/lite/", "./output", ("delimiter",))


@pytest.mark.parametrize("method, backend, options", [
    ("HNSW32", "hnsw", {"m": 32}), ("hnsw16", "hnsw", {"m": 16}),
    ("IVF1024,Flat", "ivf", {"nlist": 1024}), ("IVF64", "ivf", {"nlist": 64}), ("ivf", "ivf", {}),
])
def test_approximate_methods_map_to_the_approximate_backends_and_say_so(tmp_path, method, backend, options):
    """PP-ShiTu's HNSW32 and IVF<n>,Flat (build_gallery.py: faiss.index_binary_factory("B" + method))."""
    path = write(tmp_path, PP_SHITU_YAML.replace('index_method: "Flat"', f'index_method: "{method}"'))
    s = read_index_config(path)
    assert s.approximate and s.backend == backend and s.method == method
    assert s.index_choice("auto", {"threads_unused": 1}) == (backend, options)  # the file's method wins over auto
    lines = s.note().splitlines()
    assert lines[0].startswith(f"{path}: IndexProcess keys not used here")
    assert lines[1] == (f"{path}: IndexProcess.index_method {method}: approximate search "
                        f"({'an HNSW graph' if backend == 'hnsw' else 'inverted lists'}, as in PP-ShiTu): the answer "
                        f"may miss nearer database images; FLAT is exact")


def test_flat_keeps_the_command_line_backend_and_milvus_takes_ivf_as_bin_ivf_flat():
    flat = parse_index_process({"dist_type": "hamming"}, "x.yaml")
    assert not flat.approximate and flat.index_choice("mih", {"a": 1}) == ("mih", {"a": 1})
    ivf = parse_index_process({"dist_type": "hamming", "index_method": "IVF256,Flat"}, "x.yaml")
    assert ivf.index_choice("milvus", {"uri": "u.db"}) == ("milvus", {"uri": "u.db", "index_type": "BIN_IVF_FLAT",
                                                                      "nlist": 256})
    hnsw = parse_index_process({"dist_type": "hamming", "index_method": "HNSW32"}, "x.yaml")
    with pytest.raises(ConfigError, match=r"^x.yaml: IndexProcess.index_method: 'HNSW32' has no Milvus form"):
        hnsw.index_choice("milvus", {})


def test_hammingindex_for_settings_builds_the_approximate_index(tmp_path):
    """What predict.py calls: the yaml's HNSW32 gives an approximate faiss HNSW index that says so."""
    import numpy as np

    from utils.retrieval import HammingIndex

    path = write(tmp_path, PP_SHITU_YAML.replace('index_method: "Flat"', 'index_method: "HNSW32"'))
    index = HammingIndex.for_settings(read_index_config(path), 64, "auto", threads=1)
    assert (index.backend, index.exact, index._impl.m) == ("hnsw", False, 32)
    assert index.plan(k=5).startswith("approximate: faiss IndexBinaryHNSW (M=32")
    plain = HammingIndex.for_settings(None, 64, "numpy")
    assert (plain.backend, plain.exact) == ("numpy", True)
    codes = np.random.default_rng(0).choice([-1, 1], (50, 64))
    index.add(codes)
    assert index.search(codes[:3], 1)[1][:, 0].tolist() == [0, 1, 2]  # each code finds itself
