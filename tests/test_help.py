"""`--help` of every entry point, deploy command, tool and benchmark prints its usage and exits 0 at
once, running nothing and writing nothing (issue 27 item 7: bench_reliability.py --help ran the whole
campaign); run by path, a tool or benchmark says in one line to run it as a module."""
import argparse
import contextlib
import glob
import io
import os
import runpy
import signal
import subprocess
import sys
import tempfile
import time

import pytest

# runpy warns that a module it runs was imported before (the package's own __init__ or another test did)
pytestmark = pytest.mark.filterwarnings("ignore:.*found in sys.modules after import of package:RuntimeWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ["main_single_gpu.py", "main_multi_gpu.py", "predict.py", "export_model.py", "quantize.py"]


def commands(folder):
    """The modules of `folder` that are commands (they have a __main__ block)."""
    found = []
    for path in sorted(glob.glob(os.path.join(ROOT, folder, "*.py"))):
        if '__name__ == "__main__"' in open(path, encoding="utf-8").read():
            found.append(f"{folder}.{os.path.basename(path)[:-3]}")
    return found


MODULES = ["deploy.inference_python.infer", "deploy.onnxruntime_python.infer", "deploy.serving", "scripts.run_seeds",
           "test_tipc.compare_results",
           *commands("tools"), *commands("benchmarks")]


def test_every_command_is_listed():
    assert {"benchmarks.bench_reliability", "benchmarks.bench_index", "tools.make_coco_split",
            "tools.make_folder_split"} <= set(MODULES)
    assert sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "*.py"))) == sorted(SCRIPTS)


class TookTooLong(Exception):
    pass


def run_help(monkeypatch, tmp_path, name, run):
    """Run `name --help` in this process; returns (exit code, stdout, seconds); checks its flags' help."""
    parsers = []
    parse_args = argparse.ArgumentParser.parse_args

    def recording(self, *args, **kwargs):
        parsers.append(self)
        return parse_args(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", recording)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setattr(sys, "argv", [name, "--help"])

    def alarm(*_):
        raise TookTooLong(f"{name} --help still running after 60 s: it runs more than its parser")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    out = io.StringIO()
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
            run()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert os.listdir(scratch) == [], f"{name} --help left temporary files"
    assert sorted(os.listdir(".")) == ["tmp"] or os.listdir(".") == [], f"{name} --help wrote {os.listdir('.')}"
    seconds = time.perf_counter() - start
    assert parsers, f"{name} --help printed usage without its parser"
    check_flag_help(parsers[-1], name)
    return stop.value.code, out.getvalue(), seconds


def flag_help(parser):
    """{flag: its help as --help prints it (defaults added by the parser's formatter)}."""
    formatter = parser._get_formatter()
    return {(a.option_strings or [a.dest])[0]: formatter._expand_help(a) if a.help else "" for a in parser._actions
            if a.help is not argparse.SUPPRESS}


def check_flag_help(parser, name):
    for flag, text in flag_help(parser).items():
        assert text.strip(), f"{name} {flag}: no help text"
        assert "(default: None)" not in text, f"{name} {flag}: {text}"
        assert text.lower().count("default:") <= 1, f"{name} {flag}: two defaults: {text}"


@pytest.mark.parametrize("script", SCRIPTS)
def test_entry_point_help(monkeypatch, tmp_path, script):
    monkeypatch.chdir(tmp_path)
    code, out, seconds = run_help(monkeypatch, tmp_path, script,
                                  lambda: runpy.run_path(os.path.join(ROOT, script), run_name="__main__"))
    assert code in (0, None) and out.startswith("usage:"), out[:500]
    assert seconds < 30, seconds


@pytest.mark.parametrize("module", MODULES)
def test_module_help(monkeypatch, tmp_path, module):
    monkeypatch.chdir(tmp_path)
    code, out, seconds = run_help(monkeypatch, tmp_path, module,
                                  lambda: runpy.run_module(module, run_name="__main__", alter_sys=True))
    assert code in (0, None) and out.startswith("usage:"), out[:500]
    assert seconds < 30, seconds


@pytest.mark.slow  # a new process per command (the guard ends each before any import)
@pytest.mark.parametrize("module", [m for m in MODULES if m.startswith(("tools.", "benchmarks."))])
def test_run_by_path_says_how_to_run_it(tmp_path, module):
    path = os.path.join(ROOT, *module.split(".")) + ".py"
    proc = subprocess.run([sys.executable, path, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and not proc.stdout
    assert proc.stderr == f"error: run it from the repository root as a module: python -m {module} [flags]\n"


@pytest.mark.parametrize("script", ["main_single_gpu.py", "main_multi_gpu.py"])
def test_training_help_shows_the_defaults_a_run_uses(script, monkeypatch, tmp_path):
    """The defaults --help gives are those of a run with no flag (the lite config over the built-in
    ones: 30 epochs, lr 0.04, batch 32), not the built-in 150 / 0.001 / 64 and not None."""
    from utils.cli.flags import train_parser
    from utils.config import FLAG_KEYS, build_config

    monkeypatch.chdir(tmp_path)
    cfg = build_config(None, {})
    helps = flag_help(train_parser("x"))
    shown = 0
    for dest, key in FLAG_KEYS.items():
        value = cfg
        for part in key.split("."):
            value = value[part]
        text = helps["--" + dest.replace("_", "-") if "--" + dest.replace("_", "-") in helps else "--" + dest]
        if value is None or value is False or "default" in text.replace(f"(default: {value})", ""):
            continue
        assert text.endswith(f"(default: {value})"), (dest, text, value)
        shown += 1
    assert shown >= 10
    assert "(default: 30)" in helps["--epoch"] and "(default: 0.04)" in helps["--lr"]


@pytest.mark.slow  # two new processes (the command re-runs itself as the module)
def test_the_contract_form_of_infer_runs_by_path_from_any_folder(tmp_path):
    """The interface contract gives `deploy/inference_python/infer.py --bit K ...` by path: it re-runs itself
    as the module."""
    path = os.path.join(ROOT, "deploy", "inference_python", "infer.py")
    proc = subprocess.run([sys.executable, path, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--model-dir" in proc.stdout, proc.stderr
    bad = subprocess.run([sys.executable, path, "--bit", "64", "--model-dir", str(tmp_path / "none"), "--img-path",
                          "x.jpg"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "--model-dir" in bad.stderr
