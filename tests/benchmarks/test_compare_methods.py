"""benchmarks/compare_methods.py end to end on tiny lite data: one method + the baselines, one bit,
two seeds, one epoch; the table's mean/std must be those of the per-seed values it logged."""
import json
import math
import os

import pytest

pytestmark = pytest.mark.benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_script():
    from benchmarks import compare_methods

    return compare_methods


def reference_mean_std(values):
    """Plain loops: the mean and the sample standard deviation."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def test_table_matches_the_logged_per_seed_values(tiny_lite, tmp_path, capsys):
    config_dir = tmp_path / "methods"
    config_dir.mkdir()
    (config_dir / "broken_lite.yaml").write_text("_base_: %s\nloss:\n  name: no_such_loss\n"
                                                  % os.path.join(ROOT, "configs", "hashnet_lite.yaml"))
    out = tmp_path / "out"
    plot = tmp_path / "map.png"
    code = load_script().main(["--methods", "hashnet", "broken", "lsh", "itq", "--bits", "16", "--seeds", "0", "1",
                               "--epochs", "1", "--data-path", tiny_lite, "--config-dir", str(config_dir),
                               "--output-dir", str(out), "--plot", str(plot), "-o", "dataset.num_workers=0",
                               "-o", "model.fc_dim=64"])  # small checkpoints: each run saves its weights
    printed = capsys.readouterr().out
    assert code == 1  # the broken method failed, the others ran
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert [(r["method"], r["seed"]) for r in runs] == [(m, s) for m in ("hashnet", "broken", "lsh", "itq") for s in (0, 1)]
    assert all("no_such_loss" in r["error"] for r in runs if r["method"] == "broken")
    table = printed[printed.index("method  "):].splitlines()
    assert table[0].split() == ["method", "bits", "mAP@all", "precision@r2", "train", "s/epoch"]
    assert set(table[1]) <= {"-", " "}
    rows = {line.split()[0]: line.split() for line in table[2:6]}
    assert list(rows) == ["hashnet", "broken", "lsh", "itq"]
    for method in ("hashnet", "lsh", "itq"):
        ok = [r for r in runs if r["method"] == method]
        assert len(ok) == 2 and all(0 <= r["map"] <= 1 and 0 <= r["precision_r2"] <= 1 for r in ok)
        for column, key in ((2, "map"), (5, "precision_r2")):
            mean, std = reference_mean_std([r[key] for r in ok])
            assert rows[method][column:column + 3] == [f"{mean:.4f}", "+-", f"{std:.4f}"], (method, key)
    seconds = [r["epoch_seconds"] for r in runs if r["method"] == "hashnet"]
    assert all(s > 0 for s in seconds) and rows["hashnet"][-1] == f"{sum(seconds) / 2:.1f}"
    assert rows["lsh"][-1] == "-" and rows["broken"][2:4] == ["failed", "failed"]
    assert "failed: broken 16 bits seed 0: ConfigError" in printed  # a UserError subclass: the bad loss.name
    assert "Schedule: 1 epoch per run" in printed and "--seeds 0 1 --epochs 1" in printed and rows["hashnet"][1] == "16"
    # the markdown copy holds the same rows; the plot was drawn
    markdown = (out / "compare_methods.md").read_text()
    assert f"| hashnet | 16 | {rows['hashnet'][2]} +- {rows['hashnet'][4]} |" in markdown
    assert plot.stat().st_size > 1000


def test_run_once_reports_a_failing_run_in_one_line_and_keeps_its_traceback(tmp_path):
    from benchmarks.compare_methods import run_once
    from utils.errors import Interrupted

    def fails():
        raise ValueError("bad config\nsecond line")

    record = run_once({"method": "x"}, fails, str(tmp_path / "run"))
    assert record["error"] == "ValueError: bad config" and record["seconds"] >= 0 and "map" not in record
    saved = (tmp_path / "run" / "error.txt").read_text()
    assert "Traceback" in saved and "in fails" in saved
    assert run_once({}, lambda: {"map": 0.5}, str(tmp_path / "ok"))["map"] == 0.5 and not (tmp_path / "ok").exists()

    def stopped():
        raise Interrupted("interrupted at epoch 1 step 2", 15)

    with pytest.raises(Interrupted):
        run_once({}, stopped, str(tmp_path / "stopped"))
    assert not (tmp_path / "stopped").exists()
