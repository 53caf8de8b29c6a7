"""A PP-ShiTu IndexProcess yaml drives predict.py and the service to the same answers as --radius / k."""
import os
import re

import pytest

import predict
from deploy.serving import cli
from tests.deploy.conftest import BIT, db_list

pytestmark = pytest.mark.slow

INDEX_YAML = """\
Global:
  rec_inference_model_dir: "{model}"
IndexProcess:
  index_method: "FLAT"
  dist_type: "hamming"
  delimiter: "\\t"
  hamming_radius: {radius}
  embedding_size: {bit}
{extra}"""


def index_yaml(tmp_path, model, radius, extra="", name="index.yaml"):
    path = tmp_path / name
    path.write_text(INDEX_YAML.format(model=model, radius=radius, bit=BIT, extra=extra))
    return str(path)


def query_image(data):
    """A database image: it matches itself at distance 0, so a radius search is never empty."""
    with open(db_list(data)) as f:
        return os.path.join(data, f.readline().split()[0])


def answer(argv, capsys):
    predict.main(argv)
    out = capsys.readouterr()
    rows = [tuple(line.split()[:3]) for line in out.out.splitlines() if re.match(r"\s+\d+\s+\d+\s+\S", line)]
    header = [line for line in out.out.splitlines() if "database images within" in line]
    return rows, header, out.err


@pytest.mark.parametrize("radius", [2])
def test_predict_index_config_equals_radius_flag(serving_model, serving_data, tmp_path, capsys, radius):
    common = ["--bit", str(BIT), "--img", query_image(serving_data), "--model-dir", serving_model,
              "--data-path", serving_data, "--num-workers", "0", "--threads", "1", "--save-path", str(tmp_path)]
    by_flag = answer([*common, "--radius", str(radius)], capsys)
    by_yaml = answer([*common, "--index-config", index_yaml(tmp_path, serving_model, radius)], capsys)
    assert by_flag[0] and by_yaml[:2] == by_flag[:2]  # the same matches, distances and header line
    assert all(int(d) <= radius for _, d, _ in by_yaml[0])
    assert "IndexProcess keys not used here: delimiter" in by_yaml[2]
    # return_k: PP-ShiTu's top return_k kept within the radius = the nearest return_k of the radius search
    capped = answer([*common, "--index-config", index_yaml(tmp_path, serving_model, radius, "  return_k: 2\n", "k.yaml")],
                    capsys)
    assert capped[0] == by_flag[0][:2] == answer([*common, "--radius", str(radius), "--topk", "2"], capsys)[0]


def test_service_index_config_equals_radius_requests(serving_model, serving_data, tmp_path):
    data = open(query_image(serving_data), "rb").read()
    base = ["--model-dir", serving_model, "--data-path", serving_data, "--threads", "1", "--predictors", "1",
            "--num-workers", "0", "--store-dir", str(tmp_path / "store")]
    plain = cli.build_service(cli.parse_args([*base, "--cache-dir", str(tmp_path / "codes")]), log=lambda *a: None)
    notes = []
    path = index_yaml(tmp_path, serving_model, 2, f"  return_k: 3\n  index_dir: {tmp_path / 'codes'}\n")
    configured = cli.build_service(cli.parse_args([*base, "--index-config", path]), log=notes.append)
    assert any("IndexProcess keys not used here: delimiter" in n for n in notes)
    got, want = configured.search(data), plain.search(data, k=3, radius=2)
    strip = ("timing_ms",)
    assert {k: v for k, v in got.items() if k not in strip} == {k: v for k, v in want.items() if k not in strip}
    assert got["radius"] == 2 and got["k"] == 3 and got["matches"] and got["within_radius"] >= len(got["matches"])
    override = configured.search(data, k=5, radius=24)  # a request's own k and radius win
    assert override["k"] == 5 and override["radius"] == 24
    assert override["matches"] == plain.search(data, k=5, radius=24)["matches"]
    assert configured.stats()["default_radius"] == 2 and configured.stats()["default_k"] == 3


def one_line_error(capsys, main, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


@pytest.mark.parametrize("change, fragment", [
    ('  index_method: "PQ8"\n', "IndexProcess.index_method: 'PQ8' is not supported"),
    ('  dist_type: "IP"\n', "IndexProcess.dist_type: 'IP' is not supported"),
    ("  hamming_radius: two\n", "IndexProcess.hamming_radius: must be an integer >= 0, got 'two'"),
])
def test_unsupported_values_refused_in_one_line_by_both(serving_model, serving_data, tmp_path, capsys, change,
                                                        fragment):
    text = "IndexProcess:\n" + "".join(f"  {k}: {v}\n" for k, v in
                                       (("index_method", "FLAT"), ("dist_type", "hamming"), ("hamming_radius", 2))
                                       if f"  {k}:" not in change) + change
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    one_line_error(capsys, predict.main, ["--bit", str(BIT), "--img", query_image(serving_data), "--model-dir",
                                          serving_model, "--index-config", str(path)], fragment)
    one_line_error(capsys, cli.main, ["--model-dir", serving_model, "--index-config", str(path), "--port", "0"],
                   fragment)
    embedding = tmp_path / "bits.yaml"
    embedding.write_text("IndexProcess:\n  dist_type: hamming\n  embedding_size: 512\n")
    one_line_error(capsys, predict.main, ["--bit", str(BIT), "--img", query_image(serving_data), "--model-dir",
                                          serving_model, "--index-config", str(embedding)],
                   "IndexProcess.embedding_size: 512, but the model's codes are 64 bits")


def test_predict_with_hnsw32_runs_and_says_the_answer_is_approximate(serving_model, serving_data, tmp_path, capsys):
    """PP-ShiTu's default index_method, HNSW32: predict.py searches faiss IndexBinaryHNSW (M=32) and says on
    standard error that the answer is approximate; on 48 images it finds what the exact index finds."""
    common = ["--bit", str(BIT), "--img", query_image(serving_data), "--model-dir", serving_model,
              "--data-path", serving_data, "--num-workers", "0", "--threads", "1", "--save-path", str(tmp_path)]
    path = tmp_path / "hnsw.yaml"
    path.write_text('IndexProcess:\n  index_method: "HNSW32"\n  dist_type: "hamming"\n  return_k: 5\n')
    rows, _, err = answer([*common, "--index-config", str(path)], capsys)
    assert f"{path}: IndexProcess.index_method HNSW32: approximate search (an HNSW graph, as in PP-ShiTu): the " \
        f"answer may miss nearer database images" in err
    exact_rows = answer([*common, "--topk", "5"], capsys)[0]
    assert len(rows) == 5 and [d for _, d, _ in rows] == [d for _, d, _ in exact_rows] and rows[0][1] == "0"
    within = answer([*common, "--index-config", str(path), "--radius", "20"], capsys)  # return_k caps the radius
    assert within[:2] == answer([*common, "--radius", "20", "--topk", "5"], capsys)[:2]


def test_hnsw32_and_ivf_pick_the_approximate_backend_in_predict_and_the_service(serving_model, serving_data,
                                                                                  tmp_path):
    """The settings both commands build their Searcher from carry the backend the index_method asks for."""
    from utils.cli.predict import search_settings

    for method, backend in (("HNSW32", "hnsw"), ("IVF4,Flat", "ivf"), ("FLAT", "numpy")):
        path = tmp_path / f"{backend}.yaml"
        path.write_text(f'IndexProcess:\n  index_method: "{method}"\n  dist_type: "hamming"\n')
        args = predict.parse_args(["--bit", str(BIT), "--img", query_image(serving_data), "--model-dir", serving_model,
                                   "--data-path", serving_data, "--save-path", str(tmp_path), "--index-backend",
                                   "numpy", "--index-config", str(path)])
        assert search_settings(args).backend == backend
        service = cli.service_settings(cli.parse_args(["--model-dir", serving_model, "--data-path", serving_data,
                                                       "--cache-dir", str(tmp_path), "--index-backend", "numpy",
                                                       "--index-config", str(path)]))
        assert service.search.backend == backend
