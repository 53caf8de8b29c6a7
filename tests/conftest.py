import os
import shutil
import stat
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from utils.runtime import configure  # noqa: E402

configure()  # what every entry point does first: quiet paddle, MKL's AVX2 kernels on AMD

# What a user's runs put in the working tree (the main job, TIPC, predict.py): the tests must
# neither read nor change them. Every test runs in its own temporary folder (see
# `_own_working_folder`), and the guard below fails a test, and the run, that changed them.
GUARDED_FOLDERS = ("output", "datasets", "data", "test_tipc/output", "test_tipc/data")


def tree_state(root=ROOT, folders=GUARDED_FOLDERS):
    """{relative path: (kind, size, mtime_ns, inode)} of everything under the guarded folders."""
    state = {}
    for folder in folders:
        top = os.path.join(root, folder)
        if not os.path.lexists(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                except FileNotFoundError:
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)  # a folder's mtime moves with its entries, listed themselves
                state[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), 0 if is_dir else st.st_size,
                                                      0 if is_dir else st.st_mtime_ns, st.st_ino)
    return state


def tree_changes(before, after, limit=8):
    """What changed between two tree_state()s, as short phrases (at most `limit` named)."""
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    phrases = [f"created {p}" for p in created] + [f"removed {p}" for p in removed] + [f"changed {p}" for p in changed]
    if len(phrases) > limit:
        phrases = phrases[:limit] + [f"... {len(phrases) - limit} more"]
    return phrases


@pytest.fixture(scope="session", autouse=True)
def _session_working_folder(tmp_path_factory):
    """Module and session fixtures run in a temporary folder too (set up before any of them)."""
    started_in = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("session_cwd"))
    yield
    os.chdir(started_in)


@pytest.fixture(autouse=True)
def _own_working_folder(tmp_path_factory, monkeypatch):
    """Each test starts in an empty folder of its own: relative defaults (./output, ./datasets/lite/)
    land there, never in the working tree."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def _working_tree_guard():
    """Fail the test that changed the working tree's output/, datasets/, data/ or TIPC folders."""
    before = tree_state()
    yield
    changes = tree_changes(before, tree_state())
    if changes:
        pytest.fail("this test changed the working tree (tests must work in temporary folders): "
                    + "; ".join(changes), pytrace=False)


SLOW_KINDS = ("tipc", "browser", "multiprocess", "benchmark")


def pytest_collection_modifyitems(config, items):
    """A test of a slow kind (pytest.ini: tipc, browser, multiprocess, benchmark) is slow as well."""
    for item in items:
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS) and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


def pytest_sessionstart(session):
    session.config._working_tree_before = tree_state()


def pytest_sessionfinish(session, exitstatus):
    """The same guard around the whole run: module and session fixtures are covered too."""
    before = getattr(session.config, "_working_tree_before", None)
    if before is None:
        return
    changes = tree_changes(before, tree_state())
    if changes:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test run changed the working tree: " + "; ".join(changes)
        if reporter is not None:
            reporter.write_line(f"ERROR: {message}", red=True)
        else:
            print(f"ERROR: {message}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tiny_lite(tmp_path_factory):
    """A small generated lite data set shared by the end-to-end tests."""
    from utils.data.lite import generate_lite_dataset

    root = str(tmp_path_factory.mktemp("lite") / "lite")
    generate_lite_dataset(root, seed=3, num_database=48, num_test=12, num_train=32, image_size=72)
    return root


@pytest.fixture(scope="session")
def repo_copy(tmp_path_factory):
    """The repository's files in a temporary folder, without output/, datasets/, TIPC data or caches:
    for the shell scripts, which start by changing to their repository's root."""
    dest = str(tmp_path_factory.mktemp("repo") / "HashNet-Paddle")
    skipped_at_top = {".git", *(f for f in GUARDED_FOLDERS if "/" not in f)}

    def ignore(folder, names):
        rel = os.path.relpath(folder, ROOT)
        skip = {n for n in names if n in ("__pycache__", ".pytest_cache", ".hypothesis") or n.endswith(".pyc")}
        if rel == ".":
            skip |= skipped_at_top & set(names)
        elif rel == "test_tipc":
            skip |= {"data", "output"} & set(names)
        return skip

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    os.makedirs(os.path.join(dest, "output"))
    return dest
