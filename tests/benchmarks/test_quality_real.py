"""benchmarks/quality_real.py end to end, tiny: HashNet and the two floors on the digits, one seed,
one epoch; the table is the logged runs', and --reuse takes finished runs instead of redoing them."""
import json
import os

import pytest

pytestmark = pytest.mark.benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_script():
    from benchmarks import quality_real

    return quality_real


def test_table_and_reuse(tmp_path, capsys):
    script = load_script()
    common = ["--bits", "16", "--seeds", "0", "--epochs", "1", "--data-dir", str(tmp_path / "digits"),
              "-o", "model.fc_dim=64", "-o", "dataset.num_workers=0", "--threads", "2"]
    assert script.main(["--methods", "hashnet", "lsh", "itq", "--output-dir", str(tmp_path / "a"), *common]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("CPU: ") and "Command: python -m benchmarks.quality_real --methods hashnet" in printed
    runs = [json.loads(line) for line in (tmp_path / "a" / "runs.jsonl").read_text().splitlines()]
    assert [r["method"] for r in runs] == ["hashnet", "lsh", "itq"] and all(0 < r["map"] <= 1 for r in runs)
    row = next(line for line in printed.splitlines() if line.startswith("hashnet ") and "+-" in line)
    assert f"{runs[0]['map']:.4f} +- 0.0000" in row and row.rstrip().endswith("%")
    # its untrained network, evaluated before the first step (the floors train nothing: "-")
    assert 0 < runs[0]["untrained"] <= 1 and f"{runs[0]['untrained']:.4f}" in row and "untrained" not in runs[1]
    # a second call reuses the hashnet run (same epochs and -o) and runs only the new row
    assert script.main(["--methods", "hashnet", "lsh", "--output-dir", str(tmp_path / "b"),
                        "--reuse", str(tmp_path / "a" / "runs.jsonl"), *common]) == 0
    printed = capsys.readouterr().out
    assert "(2 taken from earlier runs.jsonl: --reuse)" in printed
    assert f"{runs[0]['map']:.4f} +- 0.0000" in next(line for line in printed.splitlines()
                                                      if line.startswith("hashnet ") and "+-" in line)
    assert "hashnet 16 bits seed 0: mAP" not in printed  # not trained again


def test_model_selection_is_named_in_the_header_and_keys_reuse(tmp_path, capsys):
    """--selection final (default) reports the last epoch; query picks the best query-set epoch and says it
    peeks; a run made under one selection is never reused for another."""
    script = load_script()
    common = ["--methods", "hashnet", "--bits", "16", "--seeds", "0", "--epochs", "2", "--data-dir",
              str(tmp_path / "digits"), "-o", "model.fc_dim=64", "-o", "dataset.num_workers=0", "--threads", "2"]
    assert script.main([*common, "--output-dir", str(tmp_path / "final")]) == 0
    printed = capsys.readouterr().out
    assert "model selection: none, the network after the last epoch" in printed
    final = json.loads((tmp_path / "final" / "runs.jsonl").read_text())
    assert final["selection"] == "final" and final["best_epoch"] == 2
    assert script.main([*common, "--output-dir", str(tmp_path / "query"), "--selection", "query", "--eval-every", "1",
                        "--reuse", str(tmp_path / "final" / "runs.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert "the best QUERY-set mAP, evaluated every 1 epochs" in printed and "--reuse)" not in printed
    query = json.loads((tmp_path / "query" / "runs.jsonl").read_text())
    assert query["selection"] == "query" and query["best_epoch"] in (1, 2) and query["map"] >= final["map"] - 1e-9


@pytest.mark.parametrize("script_name, run_function", [("quality_real", "train_run"),
                                                       ("quality_unsupervised", "one_run")])
def test_a_signal_stops_the_whole_benchmark(script_name, run_function, tmp_path, monkeypatch, capsys):
    """Ctrl-C / SIGTERM stop the engine's run with utils.errors.Interrupted: the benchmark stops there with
    the signal's exit code, instead of logging the run as failed and going on with the next one."""
    import importlib
    import signal

    from utils.errors import Interrupted

    script = importlib.import_module(f"benchmarks.{script_name}")
    calls = []

    def interrupted_run(*args, **kwargs):
        calls.append(args)
        raise Interrupted("interrupted at epoch 1 step 2", signal.SIGTERM)

    monkeypatch.setattr(script, run_function, interrupted_run)
    method = "hashnet" if script_name == "quality_real" else "bihalf"
    with pytest.raises(SystemExit) as stopped:
        script.main(["--methods", method, "lsh", "--bits", "16", "--seeds", "0", "1", "--epochs", "1",
                     "--data-dir", str(tmp_path / "digits"), "--output-dir", str(tmp_path / "out"), "--threads", "2"])
    assert stopped.value.code == 143 and len(calls) == 1  # the second seed and the lsh row never started
    assert "error: interrupted at epoch 1 step 2" in capsys.readouterr().err
