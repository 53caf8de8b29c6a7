"""benchmarks/bench_index_scale.py: --help parses without running; --quick runs every contender on
5,000 codes, checks the exact ones against the flat scan and writes its rows and plot; the clustered
codes have the noise they are said to have."""
import json

import numpy as np
import pytest

from benchmarks import bench_index_scale


def test_help_parses_without_running(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_index_scale.main(["--help"])
    assert exc.value.code == 0 and "--quick" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--hnsw-m", "--hnsw-ef-construction"])
def test_bad_hnsw_graph_flags_are_one_error_line(flag, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_index_scale.parse_args([flag, "0"])
    assert exc.value.code == 2 and capsys.readouterr().err.splitlines()[-1].endswith(f"error: {flag} must be >= 1, got 0")


@pytest.mark.benchmark
def test_quick_runs_every_contender_and_checks_them(tmp_path, capsys):
    rows_path, png = tmp_path / "rows.json", tmp_path / "scale.png"
    assert bench_index_scale.main(["--quick", "--json", str(rows_path), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("CPU: ") and "exact backends identical to the flat scan on every query of every search: " \
        "True" in out and "load average" in out.splitlines()[-2]
    rows = json.loads(rows_path.read_text())
    assert {r["backend"] for r in rows} == {"flat", "auto", "mih", "hnsw", "ivf"}
    assert {(r["op"], r["arg"]) for r in rows} == {("topk", 1), ("topk", 10), ("topk", 100), *(("radius", r)
                                                                                               for r in range(4))}
    for r in rows:
        assert r["ms_per_query"] > 0 and r["bytes_per_code"] > 0 and (r["n"], r["bits"]) == (5000, 64)
        if r["backend"] in ("hnsw", "ivf"):
            assert 0 <= r["recall"] <= 1 and r["verdict"] is None and r["plan"].startswith("approximate")
        else:
            assert r["verdict"] == "identical" and r["recall"] is None
    assert png.stat().st_size > 1000


def test_clustered_codes_have_the_noise_they_claim(tmp_path):
    """Centres from --real-codes (here 4 random +-1 codes); each database code is its centre with each of
    the 36 bits flipped with probability 1/8: 4.5 bits from it on average."""
    rng = np.random.default_rng(0)
    centres = rng.choice([-1, 1], (4, 36))
    np.save(tmp_path / "codes.npy", centres)
    args = bench_index_scale.parse_args(["--queries", "10", "--noise", "0.125", "--real-codes",
                                         str(tmp_path / "codes.npy")])
    db, queries, near = bench_index_scale.make_codes(args, rng, 20000, 36, "clustered")
    assert db.shape == (20000, 5) and not (db[:, -1] & 0x0F).any()  # 36 bits: the padding bits stay zero
    bits = np.unpackbits(db, axis=1)[:, :36].astype(int)
    to_centre = np.abs(bits[:, None, :] - (centres[None] > 0)).sum(2).min(1)
    assert 4.3 < to_centre.mean() < 4.7 and near is queries
