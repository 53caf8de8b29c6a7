"""benchmarks/bench_database_dir.py end to end on a small folder (marked benchmark): its rows count what
each run encoded, and the second run encoded exactly the added images."""
import re

import pytest

from benchmarks import bench_database_dir


@pytest.mark.benchmark
def test_the_second_run_encodes_only_the_added_images(tmp_path, capsys):
    bench_database_dir.main(["--images", "12", "--added", "3", "--num-workers", "0", "--threads", "1",
                             "--work-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith("CPU: ")
    rows = {m.group(1).strip(): m.groups()[1:] for m in
            re.finditer(r"^(first \(no cache\)|3 added|unchanged) +(\d+) +(\d+) +(\d+) +[\d.]+ +[\d.]+x$", out, re.M)}
    assert rows == {"first (no cache)": ("12", "12", "0"), "3 added": ("15", "3", "12"), "unchanged": ("15", "0", "15")}
    assert list(tmp_path.iterdir()) == []  # the work folder is removed
