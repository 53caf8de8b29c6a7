"""Every command of the ```bash blocks of README.md, docs/*.md, deploy/*/README.md and test_tipc/README.md
(issue 27): a documented command that no longer works fails here.

Each command, as dash reads its block (tests/docs_commands.py), gets the checks of the first RULES entry
that matches it, and a command no rule matches fails the test. Every `python` command is parsed with its
entry point's own parser, in this process, without running (the trainers' configs are built too: -c files
and -o keys), a launcher's training script as well; every `sh`/`bash` command's script, TIPC config and
mode must exist. Then, by rule:
  run        run here as written, in document order, in a copy of the repository where the main job ran
             (its 1-epoch form: the documented 30 epochs take minutes); exit 0, no traceback and none of
             the libraries' informational lines (LIBRARY_CHATTER); bf16 inference on a CPU without bf16:
             its one-line refusal
  elsewhere  too long or needs a home folder of photos: the named test runs it (the test must name it)
  parse      needs what CI has not (COCO, GPUs, the network, a server left running) or trains for minutes
  tool       not ours (pip, apt-get, wget, the linters): the files it names exist
The documented benchmarks that no test of tests/benchmarks/ runs also run here, in a small form (SMALL_FORMS).
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.docs_commands import ROOT, block_commands, parse_only, shell_blocks

pytestmark = [pytest.mark.slow,  # dash reads each block; the lite commands run in new processes
              # runpy warns that a module it runs was imported before (by the package or another test)
              pytest.mark.filterwarnings("ignore:.*found in sys.modules after import of package:RuntimeWarning")]

# informational output of the libraries (Paddle's passes and loggers, onnxruntime, faiss's loader, Python warnings)
LIBRARY_CHATTER = r"\[W:onnxruntime|Removing initializer|---\s{2}|-INFO: |Loading faiss|Warning: |warnings\.warn"
HOME = "/home/user"  # what `~` becomes (dash expands it; nothing is read there)
LITE_IMAGE = r"datasets/lite/images/test/(00000\.jpg|)"
RULES = [
    # run here, as written
    ("run", r"python predict\.py --bit 64 --img datasets/lite/images/test/00000\.jpg( .*)?", ""),
    ("run", r"python export_model\.py --bit 64 --pretrained output/model_best_64 --save-inference-dir output/inference"
            r"( --format onnx)?", ""),
    ("run", rf"python -m deploy\.(inference_python|onnxruntime_python)\.infer --bit 64 --model-dir output/inference "
            rf"(--precision bf16 )?--img-path {LITE_IMAGE}( .*)?", ""),
    ("run", r"python -m benchmarks\.bench_index_scale --quick", ""),
    ("run", r"bash test_tipc/prepare\.sh \S+ lite_train_lite_infer", ""),
    ("run", r"TIPC_DRY_RUN=1 bash test_tipc/\S+\.sh \S+ lite_train_lite_infer", ""),
    # run by another test
    ("elsewhere", r"python main_single_gpu\.py", "tests/test_front_door.py", "main_single_gpu.py",
     "the main job, 30 epochs (minutes); its 1-epoch form runs here and in tests/test_front_door.py"),
    ("elsewhere", r".* /home/user/Pictures/album.*", "tests/test_own_data_doc.py", "own_data.md",
     "docs/own_data.md's commands on a folder of photographs"),
    ("elsewhere", r"python -m tools\.find_duplicates .*", "tests/tools/test_find_duplicates.py", "find_duplicates",
     "needs a folder of photographs"),
    ("elsewhere", r"python quantize\.py .*--method (ptq|qat).*", "tests/test_quantize.py", "quantize",
     "quantisation (KL calibration alone: 1.5 minutes on 2 cores)"),
    ("elsewhere", r"python -m deploy\.inference_python\.infer .*--model-dir output/inference_int8 --precision int8 .*",
     "tests/test_tipc_quant.py", "int8", "needs the quantised model"),
    ("elsewhere", r"python -m tools\.make_digits_split --image-out \./datasets/digits", "tests/test_quality_real.py",
     "make_digits_split", "the digits data set (with the training after it)"),
    ("elsewhere", r"python -m paddle\.distributed\.launch --nproc_per_node 2 main_multi_gpu\.py .*",
     "tests/test_multi_process.py", "nproc_per_node", "2 training processes for 30 epochs"),
    ("elsewhere", r"python main_multi_gpu\.py --nprocs 2 .*", "tests/utils/cli/test_spawn.py", "--nprocs",
     "2 training processes for 30 epochs (1 epoch on tiny data there)"),
    ("elsewhere", r"python -m deploy\.serving( .*)?", "tests/deploy/test_serving_cli.py", "deploy.serving",
     "starts a server that runs until stopped"),
    ("elsewhere", r"(TIPC_GPU_LIST=\S+ )?bash test_tipc/test_train_inference_python\.sh "
                  r"test_tipc/configs/hashnet_(16|64)/train_infer_python\.txt lite_train_lite_infer",
     "tests/test_tipc.py", "train_infer_python.txt", "a TIPC chain (train, eval, export, 8 inference runs)"),
    ("elsewhere", r"bash test_tipc/test_ptq_inference_python\.sh test_tipc/configs/hashnet_16/"
                  r"train_(ptq|pact|amp)_infer_python\.txt lite_train_lite_infer",
     "tests/test_tipc_quant.py", "test_ptq_inference_python.sh", "a low-precision TIPC chain"),
    ("elsewhere", r"bash test_tipc/test_paddle2onnx\.sh test_tipc/configs/hashnet_64/paddle2onnx_infer_python\.txt "
                  r"lite_train_lite_infer", "tests/test_tipc_paddle2onnx.py", "test_paddle2onnx.sh", "the ONNX TIPC chain"),
    ("elsewhere", r"sh scripts/install_test_tools\.sh", "tests/test_scripts.py", "install_test_tools.sh",
     "installs Debian packages (root, network); its dry run is tested"),
    ("elsewhere", r"curl .*http://127\.0\.0\.1:8000/(search|encode|items|stats)", "tests/deploy/test_serving_api.py",
     "client.", "requests to the running service (the route is checked here)"),
    # parse only
    ("parse", r".*(/data/|/weights/)\S*.*", "needs a raw data set or weights this machine has not (COCO, ...)"),
    ("parse", r".*--pretrained-backbone imagenet.*", "downloads ImageNet weights (network)"),
    ("parse", r"python -m paddle\.distributed\.launch .*--gpus .*", "needs GPUs"),
    ("parse", r"python main_single_gpu\.py (-c configs/methods/\S+_lite\.yaml|-o train\.amp=bf16)( .*)?",
     "a lite training of 30 epochs (minutes) or a fit (ITQ: 46 s on 2 busy cores); the methods train in "
     "tests/test_methods_*.py, ITQ fits in tests/utils/training/test_folder_guard.py"),
    ("parse", r"python main_single_gpu\.py --dataset digits .*", "30 epochs on the digits (tests/test_quality_real.py)"),
    ("parse", r"python export_model\.py --bit 64 --pretrained output/itq/model_best_64 .*", "needs the ITQ fit above"),
    ("parse", r"python -m benchmarks\.\w+( --(markdown|plot|holdout|bits|epochs|seed|candidates|sizes) ?\S*( \S+)*)?",
     "a full benchmark (minutes to an hour): a small form runs here (SMALL_FORMS) or in tests/benchmarks/, "
     "except bench_multiprocess (tests/test_multi_process.py trains its two processes) and bench_reliability "
     "(60 s with --quick); tests/test_help.py parses every --help"),
    ("parse", r"(TIPC_GPU_LIST=\S+ )?bash test_tipc/\S+\.sh \S+ whole_\w+", "a whole_* mode: COCO and trained weights"),
    ("parse", r"TIPC_WRITE_RESULTS=1 bash test_tipc/\S+\.sh \S+ lite_train_lite_infer",
     "rewrites the committed expected codes (a maintainer's step after a deliberate change)"),
    # not ours
    ("tool", r"pip install (-q )?-r (?P<file>\S+)", "installs the pinned requirements"),
    ("tool", r"sudo apt-get install .*", "Debian packages (root, network)"),
    ("tool", r"wget https://\S+", "a download (network)"),
    ("tool", r"lint-imports|ruff check \.|mypy|python -m pytest -q", "CI's own steps"),
]

# the benchmarks no test of tests/benchmarks/ runs, in a small form after the run commands (issue 27: the
# documented bench_index crashed and nothing noticed); the full runs take minutes
SMALL_FORMS = [
    ["python", "-m", "benchmarks.bench_index", "--n", "20000", "--queries", "50", "--numpy-queries", "20",
     "--repeats", "1"],
    ["python", "-m", "benchmarks.bench_metrics", "--queries", "20", "--total-queries", "50", "--db", "2000",
     "--topk", "500"],
    ["python", "-m", "benchmarks.bench_encode", "--images", "32", "--repeats", "1", "--num-workers", "0"],
    ["python", "-m", "benchmarks.bench_serving", "--clients", "2", "--predictors", "1", "--requests", "10",
     "--seconds", "3", "--warmup", "1"],
]


def rule_for(command):
    for rule in RULES:
        if re.fullmatch(rule[1], command.text):
            return rule
    return None


@pytest.fixture(scope="module")
def documented(tmp_path_factory):
    """[Command] of every shell block, in document order (README first)."""
    scratch = str(tmp_path_factory.mktemp("dash"))
    blocks, untagged = shell_blocks()
    assert not untagged, f"commands in blocks not tagged bash (they would go unchecked): {untagged}"
    found = []
    for block in blocks:
        found += block_commands(block, HOME, scratch)
    return found


def test_every_documented_command_has_a_rule(documented):
    assert len(documented) > 100 and len({c.block.doc for c in documented}) >= 10
    unruled = [str(c) for c in documented if rule_for(c) is None]
    assert not unruled, "documented commands no rule of tests/test_docs_commands.py covers:\n" + "\n".join(unruled)
    problems = []
    for command in documented:
        rule = rule_for(command)
        if rule[0] == "elsewhere":
            if rule[3] not in open(os.path.join(ROOT, rule[2]), encoding="utf-8").read():
                problems.append(f"{command}: {rule[2]} does not run it (no {rule[3]!r} in it)")
        if rule[0] == "tool" and "file" in re.fullmatch(rule[1], command.text).groupdict():
            name = re.fullmatch(rule[1], command.text)["file"]
            if not os.path.isfile(os.path.join(ROOT, name)):
                problems.append(f"{command}: {name} not found")
    assert not problems, "\n".join(problems)


def service_routes():
    text = open(os.path.join(ROOT, "deploy", "serving", "app.py"), encoding="utf-8").read()
    return set(re.findall(r"@app\.(get|post)\(\"(/\w+)\"", text))


def test_requests_to_the_service_name_its_routes(documented):
    routes = service_routes()
    for command in (c for c in documented if c.argv[0] == "curl"):
        method = "post" if "-F" in command.argv else "get"
        path = re.search(r"http://[^/]+(/\w+)", command.text).group(1)
        assert (method, path) in routes, f"{command}: the service has no {method.upper()} {path}"


def tipc_modes():
    text = open(os.path.join(ROOT, "test_tipc", "common_func.sh"), encoding="utf-8").read()
    return re.search(r'^TIPC_MODES="([^"]+)"', text, re.M).group(1).split()


def test_shell_commands_name_files_that_exist(documented):
    problems = []
    for command in (c for c in documented if c.argv[0] in ("sh", "bash")):
        script, *args = command.argv[1:]
        if not os.path.isfile(os.path.join(ROOT, script)):
            problems.append(f"{command}: no script {script}")
        if script.startswith("test_tipc/"):
            if len(args) != 2 or not os.path.isfile(os.path.join(ROOT, args[0])) or args[1] not in tipc_modes():
                problems.append(f"{command}: TIPC takes CONFIG MODE (an existing config; MODE one of {tipc_modes()})")
    assert not problems, "\n".join(problems)


def check_parses(command, cwd):
    """The python command's flags parse with its own parser; a trainer's config builds; a launcher's
    training script's flags parse too."""
    parsed = parse_only(command.argv, cwd)
    if parsed.parser.prog == "__main__.py" and hasattr(parsed.namespace, "training_script"):  # paddle's launcher
        assert not parsed.extras, f"{command}: the launcher does not know {parsed.extras}"
        return check_parses(type(command)(command.block, ["python", parsed.namespace.training_script,
                                                          *parsed.namespace.training_script_args]), cwd)
    if os.path.basename(command.argv[1]) in ("main_single_gpu.py", "main_multi_gpu.py"):
        from utils.cli.flags import config_from_args

        saved = os.getcwd()
        os.chdir(cwd)
        try:
            config_from_args(parsed.namespace)  # -c loads, -o keys exist, values are in range
        finally:
            os.chdir(saved)
    return parsed


def test_every_python_command_parses_with_its_own_parser(documented, repo_copy, tmp_path):
    project = str(tmp_path / "HashNet-Paddle")
    shutil.copytree(repo_copy, project, symlinks=True)  # trainers' configs create their --output-dir
    problems = []
    for command in (c for c in documented if c.argv[0] == "python" and (rule_for(c) or ("",))[0] != "tool"):
        try:
            check_parses(command, project)
        except Exception as exc:  # an AssertionError or the library's one-line error
            problems.append(f"{command}: {type(exc).__name__}: {exc}")
    assert not problems, "\n".join(problems)


def has_bf16():
    from utils.runtime.cpuinfo import cpu_flags

    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_flags()))


def test_the_lite_commands_run_as_written(documented, repo_copy, tmp_path):
    """The `run` commands, in document order (each once), after the main job's 1-epoch form; then the
    small forms of the benchmarks no other test runs."""
    project = str(tmp_path / "HashNet-Paddle")
    shutil.copytree(repo_copy, project, symlinks=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "TIPC_DRY_RUN", "PYTHONPATH")}
    programs = {"python": sys.executable, "bash": shutil.which("bash")}

    def run(argv, extra_env=None):
        return subprocess.run([programs[argv[0]], *argv[1:]], cwd=project, env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=600)

    main_job = run(["python", "main_single_gpu.py", "--epoch", "1", "-o", "train.eval_untrained=false"])
    assert main_job.returncode == 0, main_job.stderr[-3000:]
    done = set()
    for command in documented:
        if rule_for(command)[0] != "run" or command.text in done:
            continue
        done.add(command.text)
        proc = run(command.argv, command.env)
        if "--precision bf16" in command.text and not has_bf16():  # README: CPUs with avx512_bf16 or amx_bf16
            assert proc.returncode == 2 and proc.stderr.startswith("error: --precision bf16: this CPU has no bf16"), \
                (str(command), proc.stderr[-2000:])
            continue
        check_quiet_success(str(command), proc)
    assert len(done) >= 10, done
    documented_modules = {c.argv[2] for c in documented if c.argv[:2] == ["python", "-m"]}
    for argv in SMALL_FORMS:
        assert argv[2] in documented_modules, f"{argv[2]} is not documented: drop it from SMALL_FORMS"
        check_quiet_success(" ".join(argv), run(argv))


def check_quiet_success(name, proc):
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, (name, proc.stderr[-3000:])
    chatter = [line for line in proc.stderr.splitlines() if re.search(LIBRARY_CHATTER, line)]
    assert not chatter, (name, chatter)  # what users had to read past (issue 27 item 10)
