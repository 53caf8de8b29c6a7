"""benchmarks.quality_unsupervised end to end, tiny (also through benchmarks.quality_real --no-labels): a method
trained on the digits' database listed without labels and a shallow one, one seed, one epoch; the table has
the untrained network and the LSH / ITQ floors of the same features; --reuse takes finished runs."""
import importlib
import json

import pytest

from utils.errors import UserError


def load(name):
    return importlib.import_module(f"benchmarks.{name}")


@pytest.mark.benchmark
def test_table_floors_and_reuse(tmp_path, capsys):
    common = ["--bits", "16", "--seeds", "0", "--epochs", "1", "--data-dir", str(tmp_path / "digits"),
              "-o", "model.fc_dim=64", "-o", "dataset.num_workers=0", "--threads", "2"]
    assert load("quality_real").main(["--no-labels", "--methods", "bihalf", "pcah", "--output-dir",
                                      str(tmp_path / "a"), *common]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("CPU: ") and "Command: python -m benchmarks.quality_unsupervised --methods bihalf" in printed
    train = (tmp_path / "digits" / "no_labels" / "train.txt").read_text().splitlines()
    assert len(train) == 1597 and all(" " not in line for line in train)  # the database's paths, no labels
    runs = [json.loads(line) for line in (tmp_path / "a" / "runs.jsonl").read_text().splitlines()]
    assert [r["method"] for r in runs] == ["bihalf", "pcah"]
    for r in runs:
        assert 0 < r["map"] <= 1 and 0 < r["lsh"] <= 1 and 0 < r["itq"] <= 1
    assert 0 < runs[0]["untrained"] <= 1 and runs[1]["untrained"] is None  # a shallow method has no untrained state
    row = next(line for line in printed.splitlines() if line.startswith("bihalf ") and "+-" in line)
    assert f"{runs[0]['map']:.4f} +- 0.0000" in row and f"{runs[0]['itq']:.4f}" in row
    assert load("quality_unsupervised").main(["--methods", "bihalf", "--output-dir", str(tmp_path / "b"),
                                              "--reuse", str(tmp_path / "a" / "runs.jsonl"), *common]) == 0
    printed = capsys.readouterr().out
    assert "(1 taken from earlier runs.jsonl: --reuse)" in printed and "bihalf 16 bits seed 0: mAP" not in printed


def test_a_supervised_method_is_refused():
    with pytest.raises(UserError, match="'dsh' learns from labels"):
        load("quality_unsupervised").parse_args(["--methods", "dsh"])
